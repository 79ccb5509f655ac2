#!/bin/bash
# The vCPU's KVM_RUN time in -stats-file is right however few exits there are: a guest that
# spins for a second between a handful of exits spends about that second in KVM_RUN.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/../lib/common.sh"
require_kvm

# member FILE NAME: the first integer member NAME of the JSON document FILE.
member() { grep -o "\"$2\" *: *[0-9]*" "$1" | head -1 | grep -o '[0-9]*$'; }

for mode in on full; do
    "$KVMLOOP" -kernel "$GUEST/spin.elf" -serial "file:$tmp/out" -stats-collect $mode \
        -stats-file "$tmp/stats.json" 2>"$tmp/err" </dev/null &
    pid=$!
    for _ in $(seq 100); do
        grep -q spinning "$tmp/out" 2>/dev/null && break
        sleep 0.1
    done
    sleep 1
    kill -TERM $pid
    wait $pid
    st=$?
    if [ $st -ne 0 ]; then
        bad "$mode: status $st after SIGTERM: $(errors)"
        continue
    fi
    run=$(member "$tmp/stats.json" run_ns)
    interval=$(member "$tmp/stats.json" interval_ns)
    exits=$(member "$tmp/stats.json" exits_total)
    # Nearly all of the interval is KVM_RUN; sampling 1 exit in 8 of a few dozen used to give
    # either almost nothing or about 8 times the interval.
    if [ -z "$run" ] || [ -z "$interval" ] || [ "$exits" -gt 1000 ]; then
        bad "$mode: run_ns '$run', interval_ns '$interval', exits '$exits'"
    elif [ $((run * 10)) -lt $((interval * 7)) ] || [ "$run" -gt "$interval" ]; then
        bad "$mode: run_ns $run is not 70-100 % of interval_ns $interval ($exits exits)"
    else
        ok
    fi
done
echo "stats-run: $pass passed, $fail failed"
[ $fail -eq 0 ]
