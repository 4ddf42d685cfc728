#!/usr/bin/env bash
# The interop suite: real SMTP clients against smtp-proto's example server,
# smtp-proto's example client against real servers, and adversarial raw
# socket clients. Everything on 127.0.0.1; every peer is stopped at the end.
#
# Usage: bash tests/interop/run.sh [--only SUBSTRING ...]   (as root)
#        INTEROP_PROFILE=dev bash tests/interop/run.sh       (debug examples)
# Steps: install.sh (idempotent), release build of the examples, suite.py.
# Prints `PASS name` / `FAIL name: reason` per case and ends with
# `N passed, M failed`; exit status non-zero if anything failed.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: run as root (exim and smtp-sink need it)" >&2
    exit 1
fi

started=$(date +%s)
install_log="$(mktemp -t smtp-interop-install.XXXXXX)"
if ! bash "$HERE/install.sh" >"$install_log" 2>&1; then
    tail -n 30 "$install_log" >&2
    echo "run.sh: install.sh failed (log: $install_log)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
rm -f "$install_log"

# The examples of both adapters: serve, send (tokio) and serve-blocking,
# send-blocking; the suite runs every server and client it finds. And the
# core's examples, for `bounce` (the DSN writer, parsed by Python's email).
build_log="$(mktemp -t smtp-interop-build.XXXXXX)"
cd "$REPO" || exit 1
# INTEROP_PROFILE=dev uses the debug examples that `cargo test --workspace`
# has already built (CI); the default is a release build.
profile="${INTEROP_PROFILE:-release}"
case "$profile" in
    release) profile_dir=release ;;
    dev) profile_dir=debug ;;
    *) echo "run.sh: INTEROP_PROFILE is release or dev" >&2; exit 1 ;;
esac
if ! cargo build --profile "$profile" --quiet -p smtp-proto@0.1.0 -p smtp-proto-tokio -p smtp-proto-blocking --examples \
    >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "run.sh: cargo build failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
rm -f "$build_log"
echo "build and install: $(($(date +%s) - started))s"

# 1,000 concurrent sessions need a file descriptor each on both ends.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# suite.py stops every peer it started; this trap is the backstop when the
# suite itself is killed.
suite_pid=""
cleanup() {
    if [ -n "$suite_pid" ] && kill -0 "$suite_pid" 2>/dev/null; then
        echo "run.sh: stopping the suite" >&2
        kill -TERM "$suite_pid" 2>/dev/null
        wait "$suite_pid" 2>/dev/null
    fi
    suite_pid=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
INTEROP_EXAMPLES="${CARGO_TARGET_DIR:-$REPO/target}/$profile_dir/examples" \
    timeout --signal=TERM 900 python3 "$HERE/suite.py" "$@" &
suite_pid=$!
wait "$suite_pid"
rc=$?
suite_pid=""
echo "run.sh: $(($(date +%s) - started))s in all" >&2
exit "$rc"
