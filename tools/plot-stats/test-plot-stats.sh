#!/bin/bash
# plot-stats on a real statistics document: two vCPUs contending for the BQL at the test device.
#   test-plot-stats.sh PLOT_STATS KVMLOOP GUEST_DIR
set -u
PLOT=$1
KVMLOOP=$2
GUEST=$3
. "$(dirname "$0")/../../tests/lib/common.sh"
require_kvm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$KVMLOOP" -smp 2 -m 64 -kernel "$GUEST/smp-counter.elf" -append m=2000 \
    -device testdev,lock=bql,delay-ns=2000 -device isa-debug-exit,iobase=0xf4,iosize=0x4 \
    -stats-file "$tmp/s.json" >/dev/null 2>"$tmp/err"
[ -s "$tmp/s.json" ] || bad "no statistics document: $(cat "$tmp/err")"

for fmt in png svg; do
    "$PLOT" --format $fmt "$tmp/s.json" "$tmp/$fmt" >"$tmp/out" 2>&1 || bad "$fmt: $(cat "$tmp/out")"
    for f in wait-histogram exit-time vcpu-exits; do
        [ -s "$tmp/$fmt/$f.$fmt" ] || bad "$fmt: $f.$fmt missing"
    done
done
head -c 4 "$tmp/png/exit-time.png" | grep -q PNG || bad "exit-time.png is not a PNG"
grep -q "<svg" "$tmp/svg/wait-histogram.svg" || bad "wait-histogram.svg is not an SVG"
# Whether the two vCPUs ever collide depends on the host's scheduling: the histogram lists the
# sites that waited, or says that none did.
if grep -q '"contended" : [1-9]' "$tmp/s.json"; then
    head -1 "$tmp/png/wait-histogram.tsv" | grep -q "$(printf "\t")" || bad "no waiting site plotted"
else
    grep -q "no site waited" "$tmp/png/wait-histogram.gp" || bad "empty histogram not labelled"
fi
[ "$(grep -c '^vcpu' "$tmp/png/exit-time.tsv")" -eq 2 ] || bad "exit-time: not 2 vCPUs"

# Errors: one line, non-zero.
echo '{"schema": "other"}' >"$tmp/x.json"
"$PLOT" "$tmp/x.json" "$tmp/o" 2>"$tmp/e" && bad "foreign document accepted"
grep -q "not a kvmloop statistics document" "$tmp/e" || bad "foreign: $(cat "$tmp/e")"
echo '{' >"$tmp/y.json"
"$PLOT" "$tmp/y.json" "$tmp/o" 2>"$tmp/e" && bad "broken JSON accepted"
[ "$(wc -l <"$tmp/e")" -eq 1 ] || bad "broken JSON: $(cat "$tmp/e")"
"$PLOT" --lock nosuch "$tmp/s.json" "$tmp/o" 2>"$tmp/e" && bad "unknown lock accepted"
grep -q "no lock 'nosuch'" "$tmp/e" || bad "unknown lock: $(cat "$tmp/e")"
"$PLOT" --format gif "$tmp/s.json" "$tmp/o" 2>"$tmp/e" && bad "gif accepted"

[ $fail -eq 0 ] && echo "plot-stats: all checks passed"
exit $((fail > 0))
