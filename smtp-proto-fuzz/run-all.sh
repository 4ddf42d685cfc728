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

work="$here/target/work-corpus"
logs="$here/target/fuzz-logs"
mkdir -p "$logs"

count_artifacts() {
    local dir="$here/artifacts/$1"
    [ -d "$dir" ] || {
        echo 0
        return
    }
    find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' \
        -o -name 'timeout-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | wc -l
}

summary=()
crashed=0
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    dirs=("$work/$t" "$here/corpus/$t")
    [ -d "$here/regressions/$t" ] && dirs+=("$here/regressions/$t")
    log="$logs/$t.log"
    before=$(count_artifacts "$t")
    echo "== fuzzing $t for ${secs}s (log: $log)"
    "${fuzz[@]}" run "${build_flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" \
        -dict="$here/smtp.dict" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    after=$(count_artifacts "$t")
    crashes=$((after - before))

    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
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
