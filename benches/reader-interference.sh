#!/usr/bin/env bash
# What a long journal query does to the sales committed beside it. The switch runs the
# closed loop (on-us sales, 100 terminals) for SECONDS; its journal reader walks every
# approved transaction of the open batches for the `switch_open_batches` gauge at start
# and 15 s later (then a hundred times as long as that took after). Each second, from
# /proc/PID/task/TID/{stat,io}: the switch's and its journal writer's CPU, the writer's
# read system calls (pages SQLite reads back from the journal's files: pread64) and the
# sales answered. Per binary, over the seconds from the 5th on: sales/s, CPU per sale
# (switch, writer) and the writer's reads per sale; then the same for the seconds in
# which the writer read more pages than it committed sales ("re-reading") and the rest.
#
#   bash benches/reader-interference.sh [SECONDS] [RUNS]      defaults: 35 3
#
# SWITCH_BINS="A B" alternates two switch binaries in each round (default: the production
# build); the generator is built in release.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-35}
runs=${2:-3}
tck=$(getconf CLK_TCK)

cargo build --profile production --locked -p switch >/dev/null 2>&1
cargo build --release --locked -p terminal-fw >/dev/null 2>&1
bins=${SWITCH_BINS:-target/production/switch}

. benches/demo-config.sh
demo_work
demo_config "$work" > "$work/switch.toml"

thread() { # $1 name prefix: the switch's thread of that name
    grep -l "^$1" /proc/"$pid"/task/*/comm | head -1 | cut -d/ -f5
}
ticks() { awk '{print $14 + $15}' "$1"; }
sales() {
    curl -sf http://127.0.0.1:19583/metrics |
        awk '/^switch_transactions_total\{kind="sale"/ {s += $2} END {print s + 0}'
}

run() { # $1 binary: appends "label second sales switch_ticks writer_ticks reads" lines
    local label
    label=$(basename "$1")
    rm -f "$work"/journal.db*
    RUST_LOG=info "$1" run --config "$work/switch.toml" 2> "$work/switch.log" &
    pid=$!
    await_switch "$pid" "$work/switch.log"
    local w
    w=$(thread journal-writer)
    target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals 100 \
        --duration "$secs" --first-tid 10000001 --json --mix sale=100 > "$work/load.json" 2>&1 &
    local gen=$! s0 p0 w0 io0 s1 p1 w1 io1
    s0=$(sales); p0=$(ticks /proc/$pid/stat); w0=$(ticks /proc/$pid/task/$w/stat)
    io0=$(awk '/^syscr/ {print $2}' /proc/$pid/task/$w/io)
    for i in $(seq "$((secs - 1))"); do
        sleep 1
        s1=$(sales); p1=$(ticks /proc/$pid/stat); w1=$(ticks /proc/$pid/task/$w/stat)
        io1=$(awk '/^syscr/ {print $2}' /proc/$pid/task/$w/io)
        echo "$label $i $((s1 - s0)) $((p1 - p0)) $((w1 - w0)) $((io1 - io0))" >> "$work/seconds"
        s0=$s1; p0=$p1; w0=$w1; io0=$io1
    done
    wait "$gen"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pid=""
}

for round in $(seq "$runs"); do
    for b in $bins; do
        run "$b"
    done
done

echo "per binary, seconds 5 on of each run: CPU per sale, the writer's reads per sale"
awk -v tck="$tck" '
    function add(k) { n[k]++; s[k] += $3; p[k] += $4; w[k] += $5; io[k] += $6 }
    $2 >= 5 && $3 > 0 {
        add($1 " all")
        add($1 " " ($6 > $3 ? "re-reading" : "cached"))
    }
    END {
        printf "%-24s %8s %10s %15s %15s %11s\n", "binary, seconds", "seconds", "sales/s",
            "switch us/sale", "writer us/sale", "reads/sale"
        for (k in n)
            printf "%-24s %8d %10.0f %15.1f %15.1f %11.2f\n", k, n[k], s[k] / n[k],
                p[k] * 1e6 / tck / s[k], w[k] * 1e6 / tck / s[k], io[k] / s[k]
    }' "$work/seconds" | sort
