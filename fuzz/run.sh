#!/bin/sh
# Build the fuzz targets and run each for SECONDS, one process at a time.
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
status=0
for t in "$@"; do
    work=../target/fuzz-corpus/$t
    log=../target/fuzz-logs/$t.log
    mkdir -p "$work"
    if cargo fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see target/fuzz-logs/$t.log and fuzz/artifacts/$t/)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ${secs}s, ${execs:-?} executions, $cov, corpus $(ls "$work" | wc -l) inputs: $result"
done
exit $status
