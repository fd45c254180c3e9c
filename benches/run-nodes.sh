#!/usr/bin/env bash
# One SQLite node beside two PostgreSQL nodes, in the same run: closed-loop on-us sales from
# the load generator (100 terminals, on the same 2 cores as everything else), TPS and p99
# for each, and their ratio, RUNS times; prints every run and the medians. The switches log at
# `warn`. The PostgreSQL database is a fresh one on SERVER (the local one by default),
# dropped at the end.
#
#   bash benches/run-nodes.sh [SECONDS] [RUNS] [SERVER]
#   defaults: 10 3 postgres://postgres@127.0.0.1:5432/postgres
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
server=${3:-postgres://postgres@127.0.0.1:5432/postgres}
base=${server%/*}

# The switch as deployed (the production profile); its peers as the tests build them.
cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p terminal-fw >/dev/null 2>&1
work=$(mktemp -d)
pids=()
db=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "$db" ] && psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# The demo configuration: journal and ports changed, balance room for the whole run.
config() { # name journal-line node-id port mport
    sed -e "s#^path = .*#$2#" \
        -e "s#^node_id = 1 #node_id = $3 #" \
        -e "s#terminals = \"127.0.0.1:8583\"#terminals = \"127.0.0.1:$4\"#" \
        -e "s#metrics = \"127.0.0.1:9583\"#metrics = \"127.0.0.1:$5\"#" \
        -e "s#balance_fen = 1000000#balance_fen = 100000000000#" \
        -e "s#lines = \[\"127.0.0.1:8584\"\]#lines = [\"127.0.0.1:1\"]#" \
        switch/demo.toml > "$work/$1.toml"
}
start() { # name mport
    RUST_LOG=warn target/production/switch run --config "$work/$1.toml" 2>> "$work/$1.log" &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "$1 did not start:"; cat "$work/$1.log"; exit 1
}
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    pids=()
}
load() { # first-tid switch...
    local tid=$1; shift
    local args=()
    for a in "$@"; do args+=(--switch "$a"); done
    target/release/terminal-fw "${args[@]}" load --terminals 100 --duration "$secs" \
        --first-tid "$tid" --mix sale=100 --json 2>/dev/null
}
figures() { # json → "tps p99_ms codes"
    python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.0f %.1f %s" % (s["throughput"], s["latency_us"]["p99"]/1000, s["response_codes"]))'
}

results=()
for run in $(seq "$runs"); do
    rm -f "$work"/journal.db*
    config sqlite "path = \"$work/journal.db\"" 1 18583 19583
    start sqlite 19583
    sq=$(load $((10000001 + run * 200)) 127.0.0.1:18583 | figures)
    stop_all

    db="switch_bench_$$_$run"
    psql "$server" -qc "CREATE DATABASE $db" >/dev/null
    config pg1 "url = \"$base/$db\"" 1 18583 19583
    config pg2 "url = \"$base/$db\"" 2 18593 19593
    start pg1 19583
    start pg2 19593
    pg=$(load $((10000001 + run * 200)) 127.0.0.1:18583 127.0.0.1:18593 | figures)
    stop_all
    psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    db=""

    echo "run $run: SQLite node: $sq"
    echo "run $run: 2 PostgreSQL nodes: $pg"
    results+=("$sq|$pg")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
rows = [r.split("|") for r in sys.argv[1:]]
sq = [tuple(map(float, a.split()[:2])) for a, _ in rows]
pg = [tuple(map(float, b.split()[:2])) for _, b in rows]
med = lambda xs: statistics.median(xs)
s_tps, s_p99 = med([x[0] for x in sq]), med([x[1] for x in sq])
p_tps, p_p99 = med([x[0] for x in pg]), med([x[1] for x in pg])
print(f"medians of {len(rows)} runs: SQLite node {s_tps:.0f} tps, p99 {s_p99:.1f} ms; "
      f"2 PostgreSQL nodes {p_tps:.0f} tps, p99 {p_p99:.1f} ms; ratio {p_tps / s_tps:.2f}")
PY
