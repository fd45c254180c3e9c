# Sourced by the bench scripts: the demo configuration for a bench run.
#
#   demo_config WORK [-e RULE ...] > FILE
#
# Terminals on 127.0.0.1:18583, metrics on 127.0.0.1:19583, the journal at WORK/journal.db,
# the demo debit card rich enough for any run; each `-e RULE` (sed) changes more.
# `await_switch` (below) waits for a switch started on it to be ready; `start_demo_switch`
# does both; `demo_work` makes the run's directory and cleans up after it.
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

# Writes the demo configuration into WORK, starts the switch BIN on it (logging at `warn`
# to WORK/switch.log) and waits until it is ready; leaves its pid in `pid`, for the
# caller's clean-up.
#
#   start_demo_switch BIN WORK
start_demo_switch() {
    local bin=$1 work=$2
    demo_config "$work" > "$work/switch.toml"
    RUST_LOG=warn "$bin" run --config "$work/switch.toml" 2> "$work/switch.log" &
    pid=$!
    await_switch "$pid" "$work/switch.log"
}

# The run's work directory, in `work`; on exit, the switch in `pid` and the load generator
# in `gen` (each if set) are stopped and the directory removed.
#
#   demo_work
demo_work() {
    work=$(mktemp -d)
    pid=""
    gen=""
    trap demo_cleanup EXIT
}

demo_cleanup() {
    local p
    for p in "$gen" "$pid"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
