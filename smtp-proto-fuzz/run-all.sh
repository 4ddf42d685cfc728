#!/usr/bin/env bash
# Runs every fuzz target of smtp-proto for SECONDS each (default 60) on stable
# Rust (no sanitizer) and prints, per target, the executions, the coverage
# (libFuzzer's final cov: and ft:) and the number of crashes.
#
#   smtp-proto-fuzz/run-all.sh [SECONDS] [TARGET...]
#
# Inputs that add coverage go to smtp-proto-fuzz/target/work-corpus/<target>/
# (not tracked); crash inputs go to smtp-proto-fuzz/artifacts/<target>/.
# Seeds are read from corpus/<target>/ and regressions/<target>/.
# Exits 1 if any target crashed, 2 if a build or run failed otherwise.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
secs="${1:-60}"
shift || true
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

fuzz=(cargo fuzz)
build_flags=(--fuzz-dir "$here" -s none -a)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir "$here")
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 2
fi

echo "== building ${targets[*]}"
if ! "${fuzz[@]}" build "${build_flags[@]}"; then
    echo "build failed" >&2
    exit 2
fi

logs="$here/target/fuzz-logs"
mkdir -p "$logs"

summary=()
crashed=0
failed=0
for t in "${targets[@]}"; do
    mapfile -t dirs < <(input_dirs "$t")
    log="$logs/$t.log"
    before=$(count_artifacts "$t")
    echo "== fuzzing $t for ${secs}s (log: $log)"
    "${fuzz[@]}" run "${build_flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" "${fuzz_flags[@]}" >"$log" 2>&1
    rc=$?
    after=$(count_artifacts "$t")
    crashes=$((after - before))

    log_stats "$log"
    line=$(printf '%-24s execs=%-10s cov=%-6s ft=%-6s crashes=%s' \
        "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes")

    if [ "$crashes" -gt 0 ]; then
        crashed=1
        line+="  <- see $log"
        grep -E 'panicked at|Test unit written to|deadly signal|ERROR: libFuzzer' "$log" | head -n 8
    elif [ "$rc" -ne 0 ]; then
        failed=1
        line+="  <- exited with $rc, see $log"
        tail -n 20 "$log"
    fi
    summary+=("$line")
done

echo
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$crashed" -ne 0 ]; then
    echo "crashes found: reproduce with"
    echo "  cargo fuzz run --fuzz-dir $here -s none <target> $here/artifacts/<target>/<file>"
    echo "then fix, and keep the input in $here/regressions/<target>/ (see FUZZING.md)"
    exit 1
fi
[ "$failed" -eq 0 ] || exit 2
exit 0
