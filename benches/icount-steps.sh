#!/usr/bin/env bash
# Where an on-us sale's instructions go: callgrind runs the in-process pipeline
# (`icount pipeline-sale`: one sale at a time, so every commit is a group of one) at two
# repeat counts; each function's own instructions (not its callees') are differenced,
# divided by the extra sales (set-up cancels out), and summed by the code they belong to
# (SQLite, DES, the codec, the switch's steps, the runtime, the allocator ...). Own
# instructions do not nest, so the rows add up to the total.
#
#   bash benches/icount-steps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 2; }
cargo build --release --locked -p benches --example icount >/dev/null 2>&1
bin=target/release/examples/icount
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"; echo "$work"' EXIT
lo=5; hi=105
for n in $lo $hi; do
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "$bin" pipeline-sale "$n" >/dev/null 2>&1
    callgrind_annotate --auto=no --threshold=100 "$work/cg.$n" > "$work/self.$n" 2>/dev/null
done
python3 - "$work/self.$lo" "$work/self.$hi" $((hi - lo)) <<'PY'
import re, sys
def costs(path):
    """Own instructions by file:function; PROGRAM TOTALS apart."""
    out, total = {}, 0
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if not m or "=>" in line:
            continue
        n = int(m.group(1).replace(",", ""))
        where = re.sub(r" \[[^]]*\]$", "", m.group(2))
        if where.startswith("PROGRAM TOTALS"):
            total = n
        else:
            out[where] = out.get(where, 0) + n
    return out, total
(lo, lo_total), (hi, hi_total) = costs(sys.argv[1]), costs(sys.argv[2])
extra = int(sys.argv[3])
total = (hi_total - lo_total) / extra
# The first pattern that matches a file:function names its part.
parts = [
    ("SQLite: statements, B-trees, pager, WAL (the journal)", r"sqlite3\.c:|libsqlite3"),
    ("DES rounds and key schedules (MACs, PIN)", r":des::|/des-[\d.]+/|primitives::dea|primitives/dea\.rs"),
    ("hashing: the caches' maps, digests", r"hashbrown|foldhash|sip::|sha2|/ring-|:ring::|hmac"),
    ("text: hex and number formatting, UTF-8 checks", r"hex::|BytesToHexChars|FromIterator<char>|core::fmt|fmt::format|pad_integral|as core::fmt::Display>::fmt|from_utf8"),
    ("HSM: key handling, PIN and MAC framing", r"hsm_sim::|hsm-sim/|switch::hsm|switch/src/hsm/"),
    ("rusqlite: binding, row building, statement cache", r"rusqlite"),
    ("journal: ops to rows (switch::journal)", r"switch::journal|switch/src/journal/"),
    ("codec: decode, encode, MAC data", r"codec::|codec/src/"),
    ("switch: pipeline steps, effects, log line", r"switch::|switch/src/"),
    ("tokio: tasks, channels, wake-ups", r"tokio"),
    ("malloc, free, realloc", r"malloc\.c:|:(malloc|free|realloc|cfree)$|__rdl_alloc|__rdl_dealloc|__rust_alloc|__rust_dealloc"),
    ("memcpy, memmove, memset", r"mem(cpy|move|set|cmp)|str(len|cmp)"),
    ("locks", r"pthread_mutex|parking_lot|futex|lock_api"),
]
sums = {label: 0.0 for label, _ in parts}
rest = 0.0
for where, n in hi.items():
    d = (n - lo.get(where, 0)) / extra
    for label, pat in parts:
        if re.search(pat, where):
            sums[label] += d
            break
    else:
        rest += d
print(f"{'part':<58} {'instructions/sale':>18} {'share':>7}")
for label, _ in parts:
    print(f"{label:<58} {sums[label]:>18,.0f} {100 * sums[label] / total:>6.1f} %")
print(f"{'the rest (std, libc, syscall stubs)':<58} {rest:>18,.0f} {100 * rest / total:>6.1f} %")
print(f"{'total (every thread)':<58} {total:>18,.0f} {'100 %':>7}")
PY
