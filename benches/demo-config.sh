# Sourced by the bench scripts: the demo configuration for a bench run.
#
#   demo_config WORK [-e RULE ...] > FILE
#
# Terminals on 127.0.0.1:18583, metrics on 127.0.0.1:19583, the journal at WORK/journal.db,
# the demo debit card rich enough for any run; each `-e RULE` (sed) changes more.
# `await_switch` (below) waits for a switch started on it to be ready.
demo_config() {
    local work=$1
    shift
    sed -e "s#terminals = \"127.0.0.1:8583\"#terminals = \"127.0.0.1:18583\"#" \
        -e "s#metrics = \"127.0.0.1:9583\"#metrics = \"127.0.0.1:19583\"#" \
        -e "s#path = \"./switch-data/journal.db\"#path = \"$work/journal.db\"#" \
        -e "s#balance_fen = 1000000#balance_fen = 100000000000#" \
        "$@" switch/demo.toml
}

# Waits until the switch started as PID answers /readyz on the demo metrics port; prints
# LOG and fails if it does not. A switch that cannot bind its ports (another one left
# running) exits at once, and the other one's /readyz must not count as this one's: the
# process has to be running when it answers and still be running a moment later.
#
#   await_switch PID LOG
await_switch() {
    local pid=$1 log=$2 ready=""
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        curl -sf http://127.0.0.1:19583/readyz >/dev/null 2>&1 && ready=1 && break
        sleep 0.2
    done
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || ready=""
    [ -n "$ready" ] || { echo "the switch did not start:"; cat "$log"; return 1; }
}
