# Sourced by the bench scripts: the demo configuration for a bench run.
#
#   demo_config WORK [-e RULE ...] > FILE
#
# Terminals on 127.0.0.1:18583, metrics on 127.0.0.1:19583, the journal at WORK/journal.db,
# the demo debit card rich enough for any run; each `-e RULE` (sed) changes more.
demo_config() {
    local work=$1
    shift
    sed -e "s#terminals = \"127.0.0.1:8583\"#terminals = \"127.0.0.1:18583\"#" \
        -e "s#metrics = \"127.0.0.1:9583\"#metrics = \"127.0.0.1:19583\"#" \
        -e "s#path = \"./switch-data/journal.db\"#path = \"$work/journal.db\"#" \
        -e "s#balance_fen = 1000000#balance_fen = 100000000000#" \
        "$@" switch/demo.toml
}
