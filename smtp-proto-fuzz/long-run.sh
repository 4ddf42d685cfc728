#!/usr/bin/env bash
# Runs fuzz targets until each has had CPU_SECONDS of CPU time (not wall
# time: on a shared machine a fuzzer gets less than a whole core), PARALLEL
# targets at a time, one libFuzzer process each, and prints a Markdown table
# of what each run did: CPU and wall seconds, executions, coverage (cov, ft),
# corpus size and crashes.
#
#   smtp-proto-fuzz/long-run.sh CPU_SECONDS PARALLEL [TARGET...]
#
# With no targets, every target is run. Inputs and flags are those of
# run-all.sh (work corpus in target/work-corpus/<t>/, which it continues
# from, corpus/<t>/ and regressions/<t>/ read, the dictionary, -timeout=10,
# -rss_limit_mb=2048). The table is also written to target/long-run.md and
# the logs to target/fuzz-logs/<t>.long.log.
# Exits 1 if any target crashed, 2 if a build or run failed otherwise.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
cpu_secs="${1:-}"
parallel="${2:-}"
case "$cpu_secs$parallel" in
'' | *[!0-9]*)
    echo "usage: $0 CPU_SECONDS PARALLEL [TARGET...]" >&2
    exit 2
    ;;
esac
shift 2
[ "$parallel" -ge 1 ] || parallel=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$here")
fi

echo "== building ${targets[*]}"
cargo fuzz build --fuzz-dir "$here" -s none -a || {
    echo "build failed" >&2
    exit 2
}
triple="$(rustc -vV | sed -n 's/^host: //p')"
bindir="$here/target/$triple/release"

logs="$here/target/fuzz-logs"
rows="$here/target/long-run.rows"
mkdir -p "$logs"
: >"$rows"
tick="$(getconf CLK_TCK)"

# CPU seconds used so far by process $1 (user + system), or nothing once it
# has exited.
cpu_of() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    # Fields after the command name, which is in parentheses.
    set -- ${stat##*) }
    echo $(((${12} + ${13}) / tick))
}

run_one() {
    local t="$1" log="$logs/$1.long.log"
    mkdir -p "$here/artifacts/$t"
    local dirs
    mapfile -t dirs < <(input_dirs "$t")
    local before started start_s
    before=$(count_artifacts "$t")
    started="$(date -u '+%Y-%m-%d %H:%M')"
    start_s=$(date +%s)
    # The wall-time cap is a safety net only: the CPU budget stops the run.
    "$bindir/$t" "${dirs[@]}" "${fuzz_flags[@]}" \
        -artifact_prefix="$here/artifacts/$t/" -max_total_time=$((cpu_secs * 6)) >"$log" 2>&1 &
    local pid=$! used=0 stopped=0
    while kill -0 "$pid" 2>/dev/null; do
        used="$(cpu_of "$pid")"
        if [ -n "$used" ] && [ "$used" -ge "$cpu_secs" ]; then
            kill -INT "$pid" 2>/dev/null
            stopped=1
            break
        fi
        sleep 2
    done
    wait "$pid"
    local rc=$?
    local wall=$(($(date +%s) - start_s))
    local after crashes
    after=$(count_artifacts "$t")
    crashes=$((after - before))
    local execs cov ft corp
    log_stats "$log"
    local note=""
    if [ "$crashes" -gt 0 ]; then
        note=" (crash: see $log)"
    elif [ "$stopped" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 72 ]; }; then
        # 72 is libFuzzer's exit code after the interrupt sent above.
        note=" (stopped on its own, exit $rc; see $log)"
    fi
    printf '| `%s` | %s | %s | %s | %s | %s | %s | %s%s | %s |\n' \
        "$t" "${used:-?}" "$wall" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
        "$crashes" "$note" "$started" >>"$rows"
    echo "== $t done: ${used:-?} CPU s, $wall s wall, crashes=$crashes"
}

for t in "${targets[@]}"; do
    [ -x "$bindir/$t" ] || {
        echo "no fuzz binary for $t in $bindir" >&2
        exit 2
    }
done

running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$parallel" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "== fuzzing $t for $cpu_secs CPU seconds"
    run_one "$t" &
    running=$((running + 1))
done
wait

{
    echo "| target | CPU s | wall s | executions | cov | ft | corpus | crashes | started (UTC) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    cat "$rows"
} | tee "$here/target/long-run.md"

grep -q '(crash: see' "$rows" && exit 1
grep -q '(stopped on its own' "$rows" && exit 2
exit 0
