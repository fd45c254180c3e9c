#!/usr/bin/env bash
# Where the open loop's tail comes from. The switch runs on-us sales from TERMINALS
# terminals at RATE sales/s for SECONDS; for the middle of the run, `perf` records the
# journal's file system calls (tracepoints: no sampling, no stopping the threads), and the
# script sets them against the requests' own figures:
#
#   generator     p50, p99, p99.9 of the round trip
#   the switch    requests answered within 1 / 2.5 / 5 ms, and their wait for a group
#                 commit within the same (switch_request_duration_seconds,
#                 switch_journal_commit_duration_seconds)
#   the writer    each commit: its WAL writes, then one fdatasync of the WAL
#                 ┌── statements, one pwrite (journal-wal) ──┬── fdatasync (WAL) ──┐ ─▶ replies
#                 the syncs' spread, the writes' spread, and the commits that also copied
#                 the WAL into the database (its own checkpoint at the WAL's mark, then
#                 the WAL starts over): how many, how long
#   checkpointer  every 100 ms: copy the WAL's pages into the database, and fdatasync it
#                 once all of the WAL is copied; how often the writer's WAL sync was slow
#                 while one of those syncs ran, and how often otherwise
#
#   bash benches/commit-tail.sh [SECONDS] [RATE] [TERMINALS]      defaults: 12 5000 100
#
# Needs `perf` with access to the syscall tracepoints (root, or
# kernel.perf_event_paranoid ≤ -1). SWITCH_BIN names the switch binary (default: the
# production build). SLOW_MS (default 1) is what counts as a slow sync.
# CHECKPOINTER_IONICE (e.g. "-c3") sets the checkpointer thread's I/O class by `ionice`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-12}
rate=${2:-5000}
terms=${3:-100}
slow_ms=${SLOW_MS:-1}
[ "$secs" -ge 6 ] || { echo "SECONDS must be at least 6 (3 s either side of the trace)"; exit 2; }
command -v perf >/dev/null || { echo "commit-tail.sh needs perf (apt-get install linux-perf)"; exit 2; }

if [ -z "${SWITCH_BIN:-}" ]; then
    cargo build --profile production --locked -p switch >/dev/null 2>&1
fi
cargo build --release --locked -p terminal-fw >/dev/null 2>&1
bin=${SWITCH_BIN:-target/production/switch}

. benches/demo-config.sh
demo_work
start_demo_switch "$bin" "$work"
if [ -n "${CHECKPOINTER_IONICE:-}" ]; then
    for t in /proc/"$pid"/task/*; do
        case $(cat "$t/comm") in
            journal-checkpo*) ionice $CHECKPOINTER_IONICE -p "${t##*/}" ;;
        esac
    done
fi

# Which descriptor is the database and which its WAL (the writer's, the checkpointer's).
fds() {
    for f in /proc/"$pid"/fd/*; do
        case $(readlink "$f") in
            "$work/journal.db") echo "db ${f##*/}" ;;
            "$work/journal.db-wal") echo "wal ${f##*/}" ;;
        esac
    done
}

curl -sf http://127.0.0.1:19583/metrics > "$work/before"
target/release/terminal-fw --switch 127.0.0.1:18583 load --terminals "$terms" \
    --duration "$secs" --first-tid 10000001 --json --mix sale=100 --rate "$rate" \
    > "$work/load.json" 2>/dev/null &
gen=$!
sleep 3
fds > "$work/fds"
events=syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync,syscalls:sys_enter_fsync
events=$events,syscalls:sys_exit_fsync,syscalls:sys_enter_pwrite64
if ! perf record -q -e "$events" -p "$pid" -o "$work/perf.data" -- sleep $((secs - 5)) \
    > "$work/perf.log" 2>&1; then
    echo "perf could not record the tracepoints:"; cat "$work/perf.log"; exit 1
fi
wait "$gen"
gen=""
curl -sf http://127.0.0.1:19583/metrics > "$work/after"
perf script -i "$work/perf.data" -F comm,tid,time,event,trace > "$work/events" 2>/dev/null

python3 - "$work" "$rate" "$terms" "$slow_ms" <<'PY'
import json, re, sys

work, rate, terms, slow_ms = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
fd_of = {}
for line in open(f"{work}/fds"):
    what, fd = line.split()
    fd_of[int(fd)] = what


def spread(values):
    """p50 / p90 / p99 / p99.9 / max, in ms."""
    v = sorted(values)
    if not v:
        return "none"
    at = lambda q: v[min(len(v) - 1, int(len(v) * q))]
    return (f"p50 {at(0.5):.3f}  p90 {at(0.9):.3f}  p99 {at(0.99):.3f}  "
            f"p99.9 {at(0.999):.3f}  max {v[-1]:.3f} ms")


def over_run(pattern):
    """The change over the run of the metric lines matching `pattern`, by its first group
    (summed over the other labels)."""
    out = {}
    for when, sign in (("before", -1), ("after", 1)):
        for line in open(f"{work}/{when}"):
            m = re.match(pattern, line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + sign * float(line.split(" # ")[0].split()[-1])
    return out


def buckets(name):
    """A histogram's change over the run: {le: count}."""
    return over_run(name + r'_bucket\{(?:[^}]*,)?le="([^"]+)"')


def metric(name):
    """A counter's or sum's change over the run."""
    return over_run(f"({name})[ {{]").get(name, 0.0)


load = json.load(open(f"{work}/load.json"))
lat = load["latency_us"]
print(f"on-us sales at {rate}/s from {terms} terminals: {load['total']} answered; "
      f"round trip p50 {lat['p50'] / 1e3:.2f}  p99 {lat['p99'] / 1e3:.2f}  "
      f"p99.9 {lat['p99.9'] / 1e3:.2f}  max {lat['max'] / 1e3:.2f} ms")
for label, name in (("requests answered", "switch_request_duration_seconds"),
                    ("their group commit's wait", "switch_journal_commit_duration_seconds")):
    b = buckets(name)
    total = b.get("+Inf", 0)
    if total:
        within = "  ".join(f"≤ {float(le) * 1e3:g} ms {100 * b[le] / total:.2f} %"
                           for le in ("0.001", "0.0025", "0.005") if le in b)
        print(f"  {label}: {within}")

# Events: "comm tid [cpu]? time: event: args".
line_re = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+syscalls:sys_(\w+):?\s*(.*)$")
threads = {}
for line in open(f"{work}/events"):
    m = line_re.match(line)
    if not m:
        continue
    comm, tid, t, ev, args = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4), m.group(5)
    fd = re.search(r"fd: 0x([0-9a-f]+)", args)
    threads.setdefault(tid, [comm, []])[1].append((t, ev, int(fd.group(1), 16) if fd else None))


def syncs(events):
    """(start, end, file, pwrites since the last sync) for each sync."""
    out, start, target, writes = [], None, None, 0
    for t, ev, fd in events:
        if ev == "enter_pwrite64":
            writes += 1
        elif ev in ("enter_fdatasync", "enter_fsync"):
            start, target = t, fd_of.get(fd, "other")
        elif ev in ("exit_fdatasync", "exit_fsync") and start is not None:
            out.append((start, t, target, writes))
            start, writes = None, 0
    return out


writer = [e for c, e in threads.values() if c.startswith("journal-writer")]
ckpt = [e for c, e in threads.values() if c.startswith("journal-checkpo")]
if not writer:
    sys.exit("no journal-writer thread in the trace")
w = syncs(writer[0])
span = writer[0][-1][0] - writer[0][0][0]
wal = [s for s in w if s[2] == "wal" and s[3] > 0]
db = [s for s in w if s[2] == "db"]
is_slow = lambda s: (s[1] - s[0]) * 1e3 > slow_ms
groups = metric("switch_journal_batch_size_count")
per_commit = metric("switch_journal_batch_size_sum") / groups if groups else 0
print(f"the writer, {span:.1f} s traced: {len(wal)} commits ({len(wal) / span:,.0f}/s; "
      f"{per_commit:.1f} requests a commit over the run)")
print(f"  WAL fdatasync  {spread([(b - a) * 1e3 for a, b, _, _ in wal])}")
slow = [s for s in wal if is_slow(s)]
print(f"  WAL syncs over {slow_ms:g} ms: {len(slow)} ({100 * len(slow) / max(len(wal), 1):.2f} %)")
# From the end of one sync to the start of the next: the next commit's statements and
# writes, and any wait for its first request, so only the top of the spread says much.
gaps = [(w[i + 1][0] - w[i][1]) * 1e3 for i in range(len(w) - 1)]
print(f"  between syncs  {spread(gaps)}")
copies = [(b - a) * 1e3 for a, b, _, _ in db]
print(f"  its own checkpoints (the WAL at its mark: copy, sync the database, start over): "
      f"{len(db)}, {len(db) / span:.1f}/s; database sync {spread(copies)}")
if ckpt:
    c = [s for s in syncs(ckpt[0]) if s[2] == "db"]
    writes = sum(1 for _, ev, fd in ckpt[0] if ev == "enter_pwrite64")
    busy = sum(b - a for a, b, _, _ in c)
    print(f"the checkpointer: {len(c)} database syncs ({len(c) / span:.1f}/s, "
          f"{writes / max(len(c), 1):.0f} page writes each), syncing {100 * busy / span:.1f} % of the time")
    print(f"  database fdatasync {spread([(b - a) * 1e3 for a, b, _, _ in c])}")
    over = lambda s: any(s[0] < b and a < s[1] for a, b, _, _ in c)
    beside = [s for s in wal if over(s)]
    alone = [s for s in wal if not over(s)]
    share = lambda group: 100 * sum(1 for s in group if is_slow(s)) / max(len(group), 1)
    print(f"  WAL syncs beside one of its syncs: {len(beside)}, slow {share(beside):.1f} %; "
          f"the others: {len(alone)}, slow {share(alone):.2f} %")
PY
