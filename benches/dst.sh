#!/usr/bin/env bash
# The deterministic simulation's long mode (switch/tests/api/dst.rs): SEEDS seeds of ROUNDS
# rounds each, release build, one seed per core at a time; prints what the run did. Every
# seed checks every invariant; a failure names its seed, and
#   DST_SEED=<seed> DST_ROUNDS=<rounds> cargo test -p switch --test api dst::seeds -- --nocapture
# replays it exactly.
#
#   bash benches/dst.sh [SEEDS] [ROUNDS] [FIRST_SEED]     # defaults: 20000 100 1
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-20000}
rounds=${2:-100}
first=${3:-1}
threads=$(nproc 2>/dev/null || echo 2)
DST_SEEDS=$seeds DST_ROUNDS=$rounds DST_FIRST_SEED=$first DST_THREADS=$threads \
    cargo test --release --locked -p switch --test api dst::seeds_of_the_whole_switch_keep_every_invariant \
    -- --exact --nocapture 2>&1 | grep -E '^dst:|panicked|seed [0-9]+|test result'
