#!/usr/bin/env bash
# Which pages a group commit writes. The switch runs on-us sales from TERMINALS terminals
# for SECONDS (closed loop, or open loop at RATE sales/s); then, with no more traffic, the
# journal's WAL is read back. It holds every frame written since the writer last started
# it over: for each commit in it, the pages written, named by the B-tree (table or index)
# that owns them and whether each is a leaf or an interior page (`dbstat`), per commit and
# per sale. Sales per commit is the switch's own `switch_journal_batch_size` over the run.
#
#   bash benches/wal-pages.sh [SECONDS] [TERMINALS]      defaults: 10 100
#
#   WAL file: a header, then one frame per page a commit wrote
#   ┌─────────────┬───────────────────┬──────────────┬───────────────────┬──────────┬──
#   │ header 32 B │ frame header 24 B │ page (1 KiB) │ frame header 24 B │ page     │ …
#   │ magic, page │ page number,      │              │ db size ≠ 0: the  │          │
#   │ size, salts │ db size, salts    │              │ commit's last one │          │
#   └─────────────┴───────────────────┴──────────────┴───────────────────┴──────────┴──
#
# SWITCH_BIN names the switch binary (default: the production build).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
terms=${2:-100}

if [ -z "${SWITCH_BIN:-}" ]; then
    cargo build --profile production --locked -p switch >/dev/null 2>&1
fi
cargo build --release --locked -p terminal-fw >/dev/null 2>&1
bin=${SWITCH_BIN:-target/production/switch}
command -v sqlite3 >/dev/null || { echo "wal-pages.sh needs sqlite3 (apt-get install sqlite3)"; exit 1; }

. benches/demo-config.sh
demo_work
start_demo_switch "$bin" "$work"

args=(--mix sale=100)
[ -n "${RATE:-}" ] && args+=(--rate "$RATE")
target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals "$terms" \
    --duration "$secs" --first-tid 10000001 --json "${args[@]}" > "$work/load.json" 2>/dev/null
per_commit=$(curl -sf http://127.0.0.1:19583/metrics |
    awk '/^switch_journal_batch_size_sum/ {s = $2} /^switch_journal_batch_size_count/ {n = $2}
         END {if (n > 0) printf "%.2f", s / n; else print 0}')
# The WAL as the last commit left it (nothing writes without traffic); the database's
# pages named while the switch still holds it (a read, beside its connections).
cp "$work/journal.db-wal" "$work/wal"
sqlite3 "$work/journal.db" "SELECT pageno, name || ' ' || pagetype FROM dbstat" > "$work/pages"

python3 - "$work/wal" "$work/pages" "$per_commit" "${RATE:-closed loop}" "$terms" <<'PY'
import collections, struct, sys

wal_path, pages_path, per_commit, rate, terms = sys.argv[1:6]
per_commit = float(per_commit)
wal = open(wal_path, "rb").read()
magic, _version, page_size, _seq, salt1, salt2 = struct.unpack(">6I", wal[:24])
if magic not in (0x377F0682, 0x377F0683):
    sys.exit("not a WAL file")
owner = {}
for line in open(pages_path):
    page, name = line.rstrip("\n").split("|", 1)
    owner[int(page)] = name

frame = 24 + page_size
commits, pending, pages = 0, collections.Counter(), collections.Counter()
at = 32
while at + frame <= len(wal):
    page, db_size, s1, s2 = struct.unpack(">4I", wal[at:at + 16])
    if (s1, s2) != (salt1, salt2):
        break  # a frame of the WAL before it started over
    pending[owner.get(page, "(freed since)")] += 1
    if db_size:  # a commit's last frame: the commit counts
        commits += 1
        pages.update(pending)
        pending.clear()
    at += frame

if commits == 0:
    sys.exit("no commit in the WAL")
total = sum(pages.values())
print(f"{rate}, {terms} terminals: {commits} commits in the WAL, {page_size}-byte pages, "
      f"{per_commit:.1f} requests per commit (switch_journal_batch_size)")
print(f"{'B-tree, page':40} {'pages/commit':>12} {'pages/sale':>10} {'share':>6}")
for name, n in pages.most_common():
    per = n / commits
    print(f"{name:40} {per:12.2f} {per / per_commit if per_commit else 0:10.2f} "
          f"{100 * n / total:5.1f}%")
print(f"{'all':40} {total / commits:12.2f} "
      f"{total / commits / per_commit if per_commit else 0:10.2f}")
PY
