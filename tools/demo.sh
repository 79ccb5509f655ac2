#!/bin/bash
# Build kvmloop and boot the default guest: a test guest that greets from every vCPU and exits.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
"$root/tools/build.sh" "$dir"
cpus=${KVMLOOP_DEMO_SMP:-4}
echo "kvmloop: booting $cpus vCPUs (tests/guest/smp-hello.c) ..." >&2
set +e
"$dir/kvmloop" -smp "$cpus" -m 64 -kernel "$dir/tests/guest/smp-hello.elf" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x4 -stats "$@"
status=$?
set -e
# The guest writes 0 to isa-debug-exit when every vCPU has reported: (0 << 1) | 1.
if [ $status -eq 1 ]; then
    echo "kvmloop: the guest finished on all $cpus vCPUs" >&2
    exit 0
fi
echo "kvmloop: the guest failed (status $status)" >&2
exit $status
