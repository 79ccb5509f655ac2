#!/bin/bash
# The block benchmark: virtio-blk requests per second, CPU and BQL acquisitions per request, for
# kvmloop's main loop and iothread data planes beside QEMU's, on one image, in one invocation.
# Usage: tools/bench/blk.sh [OUTDIR [blk-bench options...]]
#   OUTDIR defaults to $KVMLOOP_BUILD_DIR/bench (the build directory defaults to ./build).
#   Options after OUTDIR go to blk-bench (e.g. -n 20000 -repeat 5 -qemu none -image FILE); see
#   tools/bench/README.md. Writes OUTDIR/blk.md and OUTDIR/blk.json. Threads are pinned
#   (blk-bench -pin): the vCPU on CPU 0, the VMM's other threads on the other CPUs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
out=${1:-$dir/bench}
shift || true
"$root/tools/build.sh" "$dir"
mkdir -p "$out"
"$dir/tools/bench/blk-bench" -build "$dir" -pin -json "$out/blk.json" "$@" | tee "$out/blk.md"
status=${PIPESTATUS[0]}
echo "blk.sh: results in $out/blk.md and $out/blk.json" >&2
exit "$status"
