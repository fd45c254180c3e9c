#!/usr/bin/env bash
# On-us sales from SM4 (国密) terminals beside TDES terminals, same switch, same run: the
# load generator closed loop with N terminals of each cipher in turn, ROUNDS rounds of
# SECONDS each (alternating, so both see the same machine), then the median throughput of
# each and their ratio. The switch logs at `warn`. Stops what it started, removes its files.
#
#   bash benches/run-sm4.sh [SECONDS] [ROUNDS] [TERMINALS]      defaults: 10 3 90
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
n=${3:-90}
[ "$n" -le 99 ] || { echo "at most 99 terminals (the demo's SM4 range)"; exit 2; }

# The switch as deployed (the production profile); its peers as the tests build them.
cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p terminal-fw >/dev/null 2>&1
. benches/demo-config.sh
demo_work
start_demo_switch target/production/switch "$work"

tps() { # cipher first-tid
    target/release/terminal-fw --state "$work/t-$1" --switch 127.0.0.1:18583 load \
        --algorithm "$1" --first-tid "$2" --terminals "$n" --duration "$secs" --json 2>/dev/null \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %d %d" % (d["throughput"], d["errors"], d["latency_us"]["p99"]))'
}
tdes=(); sm4=()
for r in $(seq "$rounds"); do
    read -r t e p <<<"$(tps tdes 10000001)"; tdes+=("$t"); echo "round $r tdes: $t tps, $e errors, p99 ${p} us"
    read -r t e p <<<"$(tps sm4 10003001)"; sm4+=("$t"); echo "round $r sm4:  $t tps, $e errors, p99 ${p} us"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mt=$(median "${tdes[@]}"); ms=$(median "${sm4[@]}")
echo "median: tdes $mt tps, sm4 $ms tps, sm4/tdes $(python3 -c "print(f'{$ms/$mt:.2f}')")"
