#!/usr/bin/env bash
# Two switch nodes on one PostgreSQL database, on this machine: the demo configuration with
# only [journal] and [listen] changed. Node 1 takes terminals on 127.0.0.1:8583, node 2 on
# 127.0.0.1:8593 (metrics on 9583 and 9593). Ctrl-C stops both.
#
#   bash scripts/two-nodes.sh [postgres://user@host:port/dbname]
#
# The default database is `switch_demo` on the local server (created if missing). The nodes
# create and migrate the schema themselves and load the demo cards once.
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:-postgres://postgres@127.0.0.1:5432/switch_demo}
if [ -z "${1:-}" ]; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'switch_demo'" | grep -q 1 \
        || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE switch_demo"
fi
cargo build --release --locked -p switch
work=$(mktemp -d)
for n in 1 2; do
    port=$((8583 + (n - 1) * 10)); mport=$((9583 + (n - 1) * 10))
    sed -e "s|^path = .*|url = \"$url\"|" \
        -e "s|^node_id = 1 |node_id = $n |" \
        -e "s|^terminals = \"127.0.0.1:8583\"|terminals = \"127.0.0.1:$port\"|" \
        -e "s|^metrics = \"127.0.0.1:9583\"|metrics = \"127.0.0.1:$mport\"|" \
        switch/demo.toml > "$work/node-$n.toml"
    target/release/switch run --config "$work/node-$n.toml" 2>&1 | sed "s/^/[node $n] /" &
done
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT INT TERM
wait
