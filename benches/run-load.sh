#!/usr/bin/env bash
# The whole system under load on this machine: builds in release, starts the switch on a
# temporary journal, runs the terminal load generator closed loop (100 terminals) and open
# loop (a fixed rate), then closed loop again with a remote issuer's card, forwarded to the
# issuer simulator (a third process on the same cores), then, on a fresh switch, holds
# 10,000 idle signed-on connections and reports the switch's memory, and last has as many
# terminals dial at once (a reconnect storm). Stops everything it started and removes its files. The switch
# logs at `warn` (no line per transaction) so the figures measure the transaction path.
#
#   bash benches/run-load.sh [SECONDS] [RATE] [CONNECTIONS]      defaults: 20 5000 10000
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rate=${2:-5000}
conns=${3:-10000}

# The switch as deployed (the production profile); its peers as the tests build them.
cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p issuer-sim -p terminal-fw >/dev/null 2>&1
cargo build --release --locked -p benches --example conn_scale --example reconnect_storm >/dev/null 2>&1

work=$(mktemp -d)
pid=""
sim=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The demo configuration, on its own ports and journal, with room for the held terminals.
. benches/demo-config.sh
demo_config "$work" \
    -e "s#max_connections = 10000 #max_connections = 20000 #" \
    -e "s#max_connections_per_peer = 256 #max_connections_per_peer = 20000 #" \
    -e "s#lines = \[\"127.0.0.1:8584\"\]#lines = [\"127.0.0.1:18584\"]#" \
    > "$work/switch.toml"
# The held terminals: a range of their own (the demo's other ranges stay as they are).
cat >> "$work/switch.toml" <<'EOF'

[[terminals]]
tid_from = "10010001"
tid_to = "10099999"
mid = "898310048990001"
merchant_name = "LOAD TEST (TEST)"
mcc = "5411"
fee_category = "standard"
tmk_clear = "0123456789ABCDEFFEDCBA9876543210"
EOF
RUST_LOG=warn target/release/issuer-sim --listen 127.0.0.1:18584 2>> "$work/sim.log" &
sim=$!
start_switch() {
    RUST_LOG=warn target/production/switch run --config "$work/switch.toml" 2>> "$work/switch.log" &
    pid=$!
    for _ in $(seq 50); do
        curl -sf http://127.0.0.1:19583/readyz >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "the switch did not start:"; cat "$work/switch.log"; exit 1
}
start_switch

echo "== closed loop: 100 terminals, ${secs} s"
target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals 100 --duration "$secs" --first-tid 10000001 2>/dev/null
echo
echo "== open loop: ${rate} requests/s, 100 terminals, ${secs} s"
target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals 100 --duration "$secs" --rate "$rate" --first-tid 10000201 2>/dev/null
echo
echo "== forwarded: closed loop, 100 terminals, ${secs} s, card of the remote issuer (issuer-sim)"
target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals 100 --duration "$secs" --first-tid 10000401 \
    --pan 6217001000000000011 --pin 111111 2>/dev/null
echo
# A fresh switch for the connection check: the load runs above leave hundreds of thousands of
# unsettled transactions in its open batches, which would be counted as connection memory.
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -f "$work"/journal.db*
start_switch
echo "== connection scale: ${conns} idle signed-on terminals"
target/release/examples/conn_scale 127.0.0.1:18583 "$pid" "$conns" 10010001
echo
# A reconnect storm on a fresh switch: every terminal dials at once (as after a network blip)
# and sends an echo; all must get in (the listener's backlog, `[listen] backlog`).
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -f "$work"/journal.db*
start_switch
echo "== reconnect storm: ${conns} terminals at once"
target/release/examples/reconnect_storm 127.0.0.1:18583 "$conns" 10010001
