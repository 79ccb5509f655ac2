#!/bin/bash
# The exit benchmark and the kick-latency benchmark: markdown, JSON and a plot in one directory.
# Usage: tools/bench/exits.sh [OUTDIR [exit-bench options...]]
#   OUTDIR defaults to $KVMLOOP_BUILD_DIR/bench (the build directory defaults to ./build).
#   Options after OUTDIR go to exit-bench (e.g. -n 20000 -repeat 3 -qemu none); see
#   tools/bench/README.md. KICKS=K and ROUNDS=R set the kick benchmark's size (1000 x 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
out=${1:-$dir/bench}
shift || true
"$root/tools/build.sh" "$dir"
mkdir -p "$out"
bin=$dir/tools/bench

status=0
{
    echo "# kvmloop exit and kick benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    "$bin/exit-bench" -build "$dir" -json "$out/exits.json" -plot-dir "$out" "$@" || status=1
    echo
    echo "## Kick latency"
    echo
    echo "Command: \`kick-latency -kicks ${KICKS:-1000} -rounds ${ROUNDS:-5}\`, load average" \
        "$(cut -d' ' -f1-3 /proc/loadavg) before."
    echo
    KVMLOOP_GUEST_DIR=$dir/tests/guest "$bin/kick-latency" -kicks "${KICKS:-1000}" \
        -rounds "${ROUNDS:-5}" -json "$out/kick.json" 2> >(grep -v 'warning: this host' >&2) ||
        status=1
} | tee "$out/results.md"

if command -v gnuplot >/dev/null; then
    gnuplot -e "dir='$out'" "$root/tools/bench/exits.gp"
    echo "exits.sh: plot in $out/exits.png" >&2
else
    echo "exits.sh: gnuplot is not installed (Debian: apt-get install gnuplot-nox): no plot" >&2
fi
echo "exits.sh: results in $out/results.md, $out/exits.json, $out/kick.json" >&2
exit $status
