#!/usr/bin/env bash
# kill -9 under load: nothing a terminal was told is lost, nothing is applied twice.
#
# Builds in release, starts the switch on a temporary journal, runs the load generator
# (sales of 0.01 on the demo debit card) recording every approval its terminals are told,
# and kills the switch with SIGKILL at random moments, restarting it each time. Then it
# stops everything and checks the journal:
#   - every approval a terminal saw is in the journal, approved, once (RRNs are unique);
#   - the card's balance moved by exactly the sales the journal holds as standing;
#   - the settlement report's gross for the day equals the journal's sales.
# It prints a table and exits non-zero when an invariant fails. Approvals journalled but
# never seen by a terminal are the ones in flight at a kill (a real terminal reverses them).
#
#   bash benches/chaos.sh [KILLS] [SECONDS_BETWEEN] [TERMINALS]    defaults: 7 5 50
#   SEED=42 bash benches/chaos.sh                                   the same kill times again
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-7}
gap=${2:-5}
terminals=${3:-50}
seed=${SEED:-$$}
RANDOM=$seed

cargo build --release --locked -p switch -p terminal-fw >/dev/null 2>&1

work=$(mktemp -d)
pid=""
load=""
cleanup() {
    [ -n "$load" ] && kill "$load" 2>/dev/null && wait "$load" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The demo configuration on its own ports and journal; the debit card rich enough.
sed -e "s#terminals = \"127.0.0.1:8583\"#terminals = \"127.0.0.1:28583\"#" \
    -e "s#metrics = \"127.0.0.1:9583\"#metrics = \"127.0.0.1:29583\"#" \
    -e "s#path = \"./switch-data/journal.db\"#path = \"$work/journal.db\"#" \
    -e "s#balance_fen = 1000000#balance_fen = 100000000000#" \
    -e "s#lines = \[\"127.0.0.1:8584\"\]#lines = [\"127.0.0.1:9\"]#" \
    switch/demo.toml > "$work/switch.toml"

restarts=()
start_switch() {
    local began
    began=$(date +%s.%N)
    RUST_LOG=warn target/release/switch run --config "$work/switch.toml" 2>> "$work/switch.log" &
    pid=$!
    for _ in $(seq 150); do
        if curl -sf http://127.0.0.1:29583/readyz >/dev/null 2>&1; then
            restarts+=("$(echo "$(date +%s.%N) - $began" | bc)")
            return
        fi
        sleep 0.1
    done
    echo "the switch did not start:"; tail -20 "$work/switch.log"; exit 1
}

start_switch
duration=$(( kills * gap + gap + 2 ))
target/release/terminal-fw --switch 127.0.0.1:28583 load --terminals "$terminals" \
    --duration "$duration" --record "$work/approved.csv" --json > "$work/load.json" 2>/dev/null &
load=$!

for k in $(seq "$kills"); do
    # Somewhere between half and one and a half gaps from now.
    sleep "$(echo "scale=2; $gap / 2 + ($RANDOM % (100 * $gap)) / 100" | bc)"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    start_switch
done
wait "$load" || true
load=""
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
unsettled=$(sqlite3 "$work/journal.db" "SELECT COUNT(*) FROM transactions WHERE (tid, batch) NOT IN (SELECT tid, batch FROM batches)" 2>/dev/null || echo "?")
# One more restart, timed, with everything above unsettled.
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
start_switch
rss_after_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
kill -TERM "$pid"; wait "$pid" || true
pid=""

python3 - "$work" "$seed" "$kills" "${restarts[*]}" "$rss_kb" "$rss_after_kb" "$unsettled" <<'PY'
import csv, json, sqlite3, subprocess, sys
work, seed, kills, restarts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
rss_kb, rss_after_kb, unsettled = sys.argv[5], sys.argv[6], sys.argv[7]
db = sqlite3.connect(f"{work}/journal.db")
seen = {}
with open(f"{work}/approved.csv") as f:
    for tid, rrn, amount, auth in csv.reader(f):
        seen[rrn] = (tid, int(amount), auth)
rows = {r[0]: r for r in db.execute(
    "SELECT rrn, response_code, auth_code, amount_fen, voided, reversed, pan_hash, local_date "
    "FROM transactions WHERE kind = 'sale'")}
missing = [r for r in seen if r not in rows or rows[r][1] != "00"]
wrong_auth = [r for r in seen if r in rows and (rows[r][2] or "") != seen[r][2]]
standing = [r for r in rows.values() if r[1] == "00" and not r[4] and not r[5]]
unseen = [r for r in standing if r[0] not in seen]
pan_hash = standing[0][6] if standing else None
opening = 100000000000
balance = db.execute("SELECT balance_fen FROM accounts WHERE pan_hash = ?", (pan_hash,)).fetchone()[0] \
    if pan_hash else opening
moved = opening - balance
journal_sum = sum(r[3] for r in standing)
day = standing[0][7] if standing else ""
report = subprocess.run(
    ["target/release/switch", "report", "settlement", "--date", day, "--format", "csv",
     "--journal", f"{work}/journal.db"], capture_output=True, text=True).stdout
gross = sum(round(float(l.split(",")[3]) * 100) for l in report.splitlines()[1:]
            if l and not l.startswith("total"))
day_sum = sum(r[3] for r in standing if r[7] == day)
load = json.load(open(f"{work}/load.json"))
checks = [
    ("approvals seen by terminals", len(seen), "", True),
    ("  of them missing or not approved in the journal", len(missing), "must be 0", not missing),
    ("  of them with another auth code in the journal", len(wrong_auth), "must be 0", not wrong_auth),
    ("approvals in the journal", len(standing), "", True),
    ("  journalled, never seen (in flight at a kill)", len(unseen), "", True),
    ("card balance moved, fen", moved, f"journal sales {journal_sum}", moved == journal_sum),
    (f"settlement report gross {day}, fen", gross, f"journal {day_sum}", gross == day_sum),
]
print(f"seed {seed}, {kills} kills, restart to ready (s): " + " ".join(f"{float(x):.2f}" for x in restarts))
print(f"unsettled transactions {unsettled}: RSS {int(rss_kb) // 1024} MiB before the last kill, "
      f"{int(rss_after_kb) // 1024} MiB after the restart ({float(restarts[-1]):.2f} s to ready)")
print(f"load: {load['total']} answered, {load['errors']} errors (kills), codes {load['response_codes']}")
print(f"{'check':52} {'value':>12}  {'expected':24} result")
ok = True
for name, value, expect, good in checks:
    ok &= good
    print(f"{name:52} {value:>12}  {expect:24} {'ok' if good else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
