#!/usr/bin/env bash
# Takes docs/status-page.png: the demo switch on spare ports under a little load (sales, and
# a lost card's declines), its status page in headless Chromium.
#
#   bash scripts/status-screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --locked -p switch -p terminal-fw
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
sed -e "s#^path = .*#path = \"$work/journal.db\"#" \
    -e 's#127.0.0.1:8583#127.0.0.1:38583#; s#127.0.0.1:9583#127.0.0.1:39583#' \
    switch/demo.toml > "$work/switch.toml"
RUST_LOG=warn target/release/switch run --config "$work/switch.toml" 2>"$work/switch.log" &
for _ in $(seq 100); do curl -sf http://127.0.0.1:39583/readyz >/dev/null && break; sleep 0.1; done
load() { target/release/terminal-fw --switch 127.0.0.1:38583 load --json "$@" >/dev/null 2>&1; }
load --terminals 4 --duration 12 --rate 300 --first-tid 10000101 --mix sale=90,balance=10 &
sleep 2
load --terminals 1 --duration 1 --rate 5 --first-tid 10000201 --pan 6222021000000000033
sleep 3
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,900 \
    --virtual-time-budget=5000 --screenshot="$PWD/docs/status-page.png" \
    http://127.0.0.1:39583/ 2>/dev/null
echo "docs/status-page.png"
