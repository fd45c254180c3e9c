#!/usr/bin/env bash
# CPU per operation, the headline figure on a shared machine: the switch's and the load
# generator's CPU microseconds per request (user + system, every thread, from /proc/PID/stat
# over the run), beside throughput and latency, for echo (0820), on-us sale and forwarded
# sale (issuer-sim, a third process), with the switch logging at `info` (its default: one
# line per transaction, to a file) and at `warn`. RUNS rounds, alternating, then the median
# of each figure.
#
#   bash benches/cpu-per-op.sh [SECONDS] [RUNS] [TERMINALS]      defaults: 10 3 100
#
# CASES (echo onus forwarded) and LEVELS (info warn) narrow it; SWITCH_BINS="A B" (paths to
# two switch binaries) alternates them in each round instead of the levels, for a same-run
# A/B of a change (their label is the file name). RATE=N drives each case open loop at N
# requests/s instead of closed loop (the tail's figures). GEN_BINS="A B" (paths to two load
# generator binaries) alternates those likewise, for an A/B of the generator's own cost and
# of what it leaves the switch. The last column divides the
# switch's µs/op by the generator's in the same run: the generator's code does not change
# between the binaries compared, so the ratio cancels out how busy the shared machine was.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
terms=${3:-100}
tck=$(getconf CLK_TCK)

# The switch as deployed (the production profile); its peers as the tests build them.
cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p issuer-sim -p terminal-fw >/dev/null 2>&1
cases=${CASES:-echo onus forwarded}
levels=${LEVELS:-info warn}
bins=${SWITCH_BINS:-target/production/switch}
gens=${GEN_BINS:-target/release/terminal-fw}

work=$(mktemp -d)
pid=""
sim=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

. benches/demo-config.sh
demo_config "$work" -e "s#lines = \[\"127.0.0.1:8584\"\]#lines = [\"127.0.0.1:18584\"]#" \
    > "$work/switch.toml"
RUST_LOG=warn target/release/issuer-sim --listen 127.0.0.1:18584 2>> "$work/sim.log" &
sim=$!

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_switch() { # $1: log level, $2: binary
    rm -f "$work"/journal.db*
    RUST_LOG=$1 "$2" run --config "$work/switch.toml" 2> "$work/switch-$1.log" &
    pid=$!
    for _ in $(seq 50); do
        curl -sf http://127.0.0.1:19583/readyz >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "the switch did not start:"; cat "$work/switch-$1.log"; exit 1
}

# One measured run: $1 level, $2 case, $3 first TID, $4 the generator; appends a line to
# $work/results.
measure() {
    local args=(--mix sale=100)
    case $2 in
        echo) args=(--mix echo=100) ;;
        forwarded) args=(--mix sale=100 --pan 6217001000000000011 --pin 111111) ;;
    esac
    [ -n "${RATE:-}" ] && args+=(--rate "$RATE")
    local before after
    before=$(ticks "$pid")
    "$4" --switch 127.0.0.1:18583 load --terminals "$terms" \
        --duration "$secs" --first-tid "$3" --json "${args[@]}" > "$work/out.json" 2>/dev/null
    after=$(ticks "$pid")
    python3 - "$1" "$2" "$((after - before))" "$tck" "$work/out.json" >> "$work/results" <<'PY'
import json, sys
level, case, ticks, tck, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = json.load(open(path))
n = max(s["total"], 1)
switch_us = ticks * 1e6 / tck / n
gen_us = (s.get("cpu_seconds") or 0) * 1e6 / n
lat = s["latency_us"]
print(f"{case} {level} {s['throughput']:.0f} {switch_us:.1f} {gen_us:.1f} {lat['p50']} {lat['p99']} {s['errors']}")
PY
    tail -1 "$work/results"
}

echo "case level tps switch_us/op generator_us/op p50_us p99_us errors"
tid=10000001
for r in $(seq "$runs"); do
    for bin in $bins; do
        for gen in $gens; do
            for level in $levels; do
                start_switch "$level" "$bin"
                label=$level
                [ "$bins" != "target/production/switch" ] && label="$label/$(basename "$bin")"
                [ "$gens" != "target/release/terminal-fw" ] && label="$label/$(basename "$gen")"
                for case in $cases; do
                    measure "$label" "$case" "$tid" "$gen"
                    tid=$((tid + terms))
                    [ "$tid" -gt 10000800 ] && tid=10000001
                done
                kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
            done
        done
    done
done
echo
echo "medians of $runs runs:"
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r[0], r[1]), []).append(r)
print(f"{'case':<10} {'level':<5} {'tps':>8} {'switch us/op':>13} {'gen us/op':>10} {'p50 us':>8} {'p99 us':>8}  {'spread of switch us/op':<24} switch/gen")
for (case, level), rs in groups.items():
    med = lambda i: statistics.median(float(x[i]) for x in rs)
    sw = [float(x[3]) for x in rs]
    ratio = statistics.median(float(x[3]) / max(float(x[4]), 0.1) for x in rs)
    spread = f"{min(sw):.1f}-{max(sw):.1f}"
    print(f"{case:<10} {level:<5} {med(2):>8.0f} {med(3):>13.1f} {med(4):>10.1f} {med(5):>8.0f} {med(6):>8.0f}  {spread:<24} {ratio:.2f}")
PY
