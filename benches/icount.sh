#!/usr/bin/env bash
# Instructions per operation, from callgrind: each case runs at two repeat counts and the
# difference is divided by the extra repeats, so set-up cost cancels out. Instruction
# counts do not move with the machine's load, unlike wall-clock time.
#
#   bash benches/icount.sh            # all cases
#   bash benches/icount.sh cup-decode # one case
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 2; }
cargo build --release --locked -p benches --example icount >/dev/null 2>&1
bin=target/release/examples/icount
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(cup-decode cup-encode ascii-decode ascii-decode-i8583 ascii-decode-iso8583-codec log-line-tracing log-line-switch pipeline-sale)
lo=10; hi=2010
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-30s %12s\n' case instructions/op
for c in "${cases[@]}"; do
    l=$lo; h=$hi
    # The whole pipeline is heavier and slow under callgrind: fewer repeats.
    [ "$c" = pipeline-sale ] && { l=5; h=105; }
    a=$(ir "$c" $l); b=$(ir "$c" $h)
    printf '%-30s %12d\n' "$c" $(( (b - a) / (h - l) ))
done
