#!/bin/bash
# Exit round trip through kvmloop per lock policy and vCPU count, with the smp-counter payload.
# Usage: tools/bench/exit-roundtrip.sh [M]   (M counter writes per vCPU per region, default 20000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
"$root/tools/build.sh" "$dir"
m=${1:-20000}
k="$dir/tests/guest/smp-counter.elf"

printf '| lock | vCPUs | exits | wall s | exits/s | wall ns/exit | kvmloop user ns/exit | sys ns/exit |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for lock in bql device none; do
    for n in 1 2; do
        exits=$((2 * m * n))
        out=$( { /usr/bin/env time -f '%e %U %S' "$dir/kvmloop" -smp $n -m 64 -kernel "$k" \
            -append "m=$m" -device "testdev,lock=$lock" \
            -device isa-debug-exit,iobase=0xf4,iosize=0x4 >/dev/null; } 2>&1 | tail -1) || true
        read -r wall user sys <<<"$out"
        awk -v l=$lock -v n=$n -v e=$exits -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN {
            printf "| %s | %d | %d | %.2f | %.0f | %.0f | %.0f | %.0f |\n",
                l, n, e, w, e / w, w * 1e9 / e, u * 1e9 / e, s * 1e9 / e }'
    done
done
