# Shared by run-all.sh and long-run.sh; sourced, not run. Expects `here` to
# be the smtp-proto-fuzz directory.

# libFuzzer flags every run uses.
fuzz_flags=(-dict="$here/smtp.dict" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

# The corpus directories of target $1, the (untracked) work corpus first so
# that new inputs go there; creates the work corpus.
input_dirs() {
    local t="$1"
    mkdir -p "$here/target/work-corpus/$t"
    echo "$here/target/work-corpus/$t"
    echo "$here/corpus/$t"
    [ -d "$here/regressions/$t" ] && echo "$here/regressions/$t"
    return 0
}

# The number of crash, timeout and out-of-memory inputs in artifacts/$1/.
count_artifacts() {
    local dir="$here/artifacts/$1"
    [ -d "$dir" ] || {
        echo 0
        return
    }
    find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' \
        -o -name 'timeout-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | wc -l
}

# Sets execs, cov, ft and corp from the libFuzzer log $1 (final statistics
# and last status line); empty where the log lacks them.
log_stats() {
    local log="$1" last
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
}
