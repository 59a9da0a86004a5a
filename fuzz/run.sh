#!/bin/sh
# Build the fuzz targets and run each for SECONDS, as many at a time as
# the machine has cores (FUZZ_JOBS=N to choose; each libFuzzer process is
# single-threaded).
#   sh fuzz/run.sh SECONDS TARGET...
# New inputs go to target/fuzz-corpus/TARGET (outside git); the committed
# seeds in fuzz/corpus/TARGET are read, never written. A failing input is
# saved in fuzz/artifacts/TARGET/ and ends the run with an error.
#
# Stable Rust: cargo-fuzz asks rustc for -Zsanitizer=address, which the
# stable compiler accepts only with RUSTC_BOOTSTRAP=1. Without it,
# `cargo fuzz run -s none TARGET` fuzzes without AddressSanitizer.
set -eu
secs=$1
shift
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p ../target/fuzz-logs
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# One target: its line goes to target/fuzz-logs/TARGET.result.
run_one() {
    t=$1
    work=../target/fuzz-corpus/$t
    log=../target/fuzz-logs/$t.log
    mkdir -p "$work"
    if cargo fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see target/fuzz-logs/$t.log and fuzz/artifacts/$t/)"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ${secs}s, ${execs:-?} executions, $cov, corpus $(ls "$work" | wc -l) inputs: $result" \
        >"../target/fuzz-logs/$t.result"
}

for t in "$@"; do rm -f "../target/fuzz-logs/$t.result"; done
# Lane k of `jobs` runs targets k, k+jobs, k+2*jobs, ... one after another.
k=0
while [ $k -lt "$jobs" ]; do
    (
        i=0
        for t in "$@"; do
            [ $((i % jobs)) -eq $k ] && run_one "$t"
            i=$((i + 1))
        done
    ) &
    k=$((k + 1))
done
wait

# The lines in the order asked; any failure fails the run.
status=0
for t in "$@"; do
    r=../target/fuzz-logs/$t.result
    if [ -f "$r" ]; then cat "$r"; else echo "fuzz $t: no result"; status=1; fi
    grep -q ': ok$' "$r" 2>/dev/null || status=1
    rm -f "$r"
done
exit $status
