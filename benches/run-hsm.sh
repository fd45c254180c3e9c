#!/usr/bin/env bash
# The in-process HSM beside a network HSM (hsm-sim serve, payShield host protocol), in the
# same run: closed-loop on-us sales from the load generator (100 terminals, on the same
# 2 cores as everything else), TPS and p99 for each and their ratio, RUNS times, medians.
# Then the commands per second `hsm-sim serve` answers for CA and DC with 1, 4 and 16
# connections (payShield 10K is sold in tiers of 60, 250 and 2,500 calls per second).
#
#   bash benches/run-hsm.sh [SECONDS] [RUNS]
#   defaults: 10 3
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}

# The switch as deployed (the production profile); its peers as the tests build them.
cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p terminal-fw -p hsm-sim >/dev/null 2>&1
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

config() { # source name
    sed -e "s#^path = .*#path = \"$work/$2.db\"#" \
        -e "s#terminals = \"127.0.0.1:8583\"#terminals = \"127.0.0.1:18583\"#" \
        -e "s#metrics = \"127.0.0.1:9583\"#metrics = \"127.0.0.1:19583\"#" \
        -e "s#balance_fen = 1000000#balance_fen = 100000000000#" \
        -e "s#lines = \[\"127.0.0.1:8584\"\]#lines = [\"127.0.0.1:1\"]#" \
        -e "s#remote = \[\"127.0.0.1:1500\"\]#remote = [\"127.0.0.1:11500\"]#" \
        "$1" > "$work/$2.toml"
}
start_switch() { # name
    RUST_LOG=warn target/production/switch run --config "$work/$1.toml" 2>> "$work/$1.log" &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:19583/readyz" >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "$1 did not start:"; cat "$work/$1.log"; exit 1
}
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    pids=()
}
load() { # first-tid
    target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals 100 --duration "$secs" \
        --first-tid "$1" --mix sale=100 --json 2>/dev/null
}
figures() {
    python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.0f %.1f %s" % (s["throughput"], s["latency_us"]["p99"]/1000, s["response_codes"]))'
}

config switch/demo.toml local
config switch/demo-payshield.toml network
results=()
for run in $(seq "$runs"); do
    rm -f "$work"/*.db*
    start_switch local
    lo=$(load $((10000001 + run * 200)) | figures)
    stop_all

    target/release/hsm-sim serve --listen 127.0.0.1:11500 --variant-lmk test >/dev/null 2>&1 &
    pids+=($!)
    sleep 0.3
    start_switch network
    ne=$(load $((10000001 + run * 200)) | figures)
    stop_all
    echo "run $run: in-process HSM: $lo"
    echo "run $run: network HSM:    $ne"
    results+=("$lo|$ne")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rows = [r.split("|") for r in sys.argv[1:]]
lo = [tuple(map(float, a.split()[:2])) for a, _ in rows]
ne = [tuple(map(float, b.split()[:2])) for _, b in rows]
med = lambda xs: statistics.median(xs)
l_tps, l_p99 = med([x[0] for x in lo]), med([x[1] for x in lo])
n_tps, n_p99 = med([x[0] for x in ne]), med([x[1] for x in ne])
print(f"medians of {len(rows)} runs: in-process HSM {l_tps:.0f} tps, p99 {l_p99:.1f} ms; "
      f"network HSM {n_tps:.0f} tps, p99 {n_p99:.1f} ms; ratio {n_tps / l_tps:.2f}")
PY

target/release/hsm-sim serve --listen 127.0.0.1:11500 --variant-lmk test >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
for c in ca dc; do
    for n in 1 4 16; do
        target/release/hsm-sim load --hsm 127.0.0.1:11500 --command "$c" --connections "$n" --duration 3
    done
done
