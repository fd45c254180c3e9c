#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) on the stable toolchain (RUSTC_BOOTSTRAP=1),
# keeps what it finds, and prints a line per target: executions, coverage (libFuzzer's
# edges), corpus size, findings. Long runs are for people, not CI: CI replays the committed
# corpus and crashes as tests (switch/tests/api/fuzz_corpus.rs).
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]     targets: decode pipeline issuer_framing config describe payshield
#   JOBS=2 bash fuzz/run.sh 3600 pipeline       more workers
#
# Afterwards: `bash fuzz/run.sh --minimise` shrinks each corpus in place (cargo fuzz cmin).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
all="decode pipeline issuer_framing config describe payshield"
if [ "${1:-}" = "--minimise" ]; then
    shift
    for t in ${*:-$all}; do
        cargo fuzz cmin -s none "$t" "corpus/$t" >/dev/null 2>&1
        echo "$t: $(ls "corpus/$t" | wc -l) inputs after minimising"
    done
    exit 0
fi
secs=${1:-60}
shift || true
targets=${*:-$all}
jobs=${JOBS:-1}
printf '%-16s %14s %8s %8s %s\n' target executions cov corpus findings
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log=$(mktemp)
    # -s none: the switch's own assertions are the oracle; no sanitizer build (stable).
    cargo fuzz run -s none --release "$t" "corpus/$t" -- \
        -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || true
    execs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" fuzz-*.log 2>/dev/null \
        | awk '{s += $2} END {print s + 0}')
    cov=$(grep -ho 'cov: [0-9]*' "$log" fuzz-*.log 2>/dev/null | awk '{print $2}' | sort -n | tail -1)
    found=$(ls "artifacts/$t" | wc -l)
    printf '%-16s %14s %8s %8s %s\n' "$t" "$execs" "${cov:-?}" "$(ls "corpus/$t" | wc -l)" "$found"
    rm -f "$log" fuzz-*.log
done
