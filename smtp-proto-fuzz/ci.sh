#!/usr/bin/env bash
# Continuous integration for the fuzz targets: installs cargo-fuzz when it is
# missing, then fuzzes every target briefly on stable Rust (no sanitizer):
# 15 s each, so that with seventeen targets and the build the fuzz step takes
# about five and a half minutes.
# The corpora also replay under `cargo test --workspace`; this adds a short
# run of fresh inputs on top.
set -euo pipefail
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

exec ./run-all.sh "${FUZZ_SECONDS:-15}"
