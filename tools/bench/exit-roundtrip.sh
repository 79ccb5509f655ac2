#!/bin/bash
# Exit round trip through kvmloop per lock policy and vCPU count, statistics on and off (smp-counter).
# Usage: tools/bench/exit-roundtrip.sh [M]   (M counter writes per vCPU per region, default 20000)
# Environment:
#   STATS="on off"  the -stats-collect modes to run (on, full, off); the last table compares the
#                   first with the last
#   REPEAT=N        runs per row, alternating between the modes so that a change in host load
#                   hits all alike; a row shows the run with the median wall time
#   LOCKS="bql device none", CPUS="1 2"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
"$root/tools/build.sh" "$dir"
m=${1:-20000}
k="$dir/tests/guest/smp-counter.elf"
repeat=${REPEAT:-1}
rows=$(mktemp)
runs=$(mktemp)
trap 'rm -f "$rows" "$runs"' EXIT

# run LOCK N STATS: prints "wall user sys" of one run
run() {
    { /usr/bin/env time -f '%e %U %S' "$dir/kvmloop" -smp "$2" -m 64 -kernel "$k" \
        -append "m=$m" -device "testdev,lock=$1" -stats-collect "$3" \
        -device isa-debug-exit,iobase=0xf4,iosize=0x4 >/dev/null; } 2>&1 | tail -1 || true
}

printf '| lock | vCPUs | stats | exits | wall s | exits/s | wall ns/exit | kvmloop user ns/exit | sys ns/exit |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for lock in ${LOCKS:-bql device none}; do
    for n in ${CPUS:-1 2}; do
        : >"$runs"
        for _ in $(seq "$repeat"); do
            for stats in ${STATS:-on off}; do
                echo "$stats $(run "$lock" "$n" "$stats")" >>"$runs"
            done
        done
        exits=$((2 * m * n))
        for stats in ${STATS:-on off}; do
            read -r wall user sys < <(awk -v s="$stats" '$1 == s { print $2, $3, $4 }' "$runs" |
                sort -n | sed -n "$(((repeat + 1) / 2))p")
            cpu=$(awk -v s="$stats" '$1 == s { print $3 + $4 }' "$runs" | sort -n |
                sed -n "$(((repeat + 1) / 2))p")
            echo "$lock $n $stats $wall $cpu" >>"$rows"
            awk -v l="$lock" -v n="$n" -v st="$stats" -v e=$exits -v w="$wall" -v u="$user" \
                -v s="$sys" 'BEGIN {
                printf "| %s | %d | %s | %d | %.2f | %.0f | %.0f | %.0f | %.0f |\n",
                    l, n, st, e, w, e / w, w * 1e9 / e, u * 1e9 / e, s * 1e9 / e }'
        done
    done
done

# With two settings run: the cost of collecting, as a share of the wall time and of the
# process's CPU time (user + system, which a busy host disturbs less than wall time).
first=$(echo ${STATS:-on off} | cut -d' ' -f1)
last=$(echo ${STATS:-on off} | awk '{ print $NF }')
if [ "$first" != "$last" ]; then
    printf '\n| lock | vCPUs | wall %s / %s (median of %d) | cost, wall | cost, CPU |\n' \
        "$first" "$last" "$repeat"
    printf '|---|---|---|---|---|\n'
    awk -v a="$first" -v b="$last" '{ w[$1 " " $2 " " $3] = $4; c[$1 " " $2 " " $3] = $5
            k[$1 " " $2] = 1 }
        END { for (x in k) if ((x " " a) in w && (x " " b) in w) {
            split(x, p, " "); wa = w[x " " a]; wb = w[x " " b]; ca = c[x " " a]; cb = c[x " " b]
            printf "| %s | %s | %.2f / %.2f s | %+.1f %% | %+.1f %% |\n", p[1], p[2], wa, wb,
                (wa - wb) * 100 / wb, (ca - cb) * 100 / cb } }' "$rows" | sort
fi
