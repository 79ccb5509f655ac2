#!/bin/bash
# Build kvmloop and the default guest, then boot it: a 2-vCPU Debian kernel with a busybox shell on
# the console (Ctrl-a x quits). On a host whose KVM has no hardware virtualization, where a stock
# kernel cannot reach userspace, say so and boot the multi-vCPU test guest instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
"$root/tools/build.sh" "$dir"
"$root/tools/guest-image.sh" "$dir/guest"

if grep -qwE 'vmx|svm' /proc/cpuinfo || [ -n "${KVMLOOP_DEMO_LINUX:-}" ]; then
    # The guest's /dev/vda: a sparse raw image, kept between runs.
    disk=$dir/guest/disk.img
    [ -e "$disk" ] || truncate -s 64M "$disk"
    echo "kvmloop: booting Debian's kernel with 2 vCPUs and $disk as /dev/vda; Ctrl-a x quits," \
        "'poweroff' ends the VM" >&2
    exec "$dir/kvmloop" -smp 2 -m 512 -kernel "$dir/guest/bzImage" \
        -initrd "$dir/guest/initramfs.cpio.gz" -append "console=ttyS0 quiet kvmloop.shell" \
        -drive "file=$disk,if=virtio,format=raw" "$@"
fi

echo "kvmloop: this host's KVM has no VMX/SVM (guest kernel code would be emulated), so a Linux" \
    "shell is out of reach here; booting the 4-vCPU test guest instead" >&2
cpus=${KVMLOOP_DEMO_SMP:-4}
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
