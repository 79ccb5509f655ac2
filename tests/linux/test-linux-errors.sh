#!/bin/bash
# Bad Linux boot input with the real Debian kernel: each a one-line error and status 1.
#   test-linux-errors.sh KVMLOOP GUEST_DIR
set -u
KVMLOOP=$1
GUEST=$2
. "$(dirname "$0")/../lib/common.sh"
require_kvm
[ -r "$GUEST/vmlinux" ] && [ -r "$GUEST/bzImage" ] || missing "no guest image in $GUEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The kernel does not fit: it is loaded at 16 MiB.
expect_error pvh-small-ram "give more memory with -m" -m 8 -kernel "$GUEST/vmlinux"
expect_error bzimage-small-ram "give more memory with -m" -m 16 -kernel "$GUEST/bzImage"
# An initrd larger than the RAM left above the kernel.
head -c $((120 << 20)) /dev/zero >"$tmp/big.img"
expect_error pvh-initrd-too-big "does not fit" -m 128 -kernel "$GUEST/vmlinux" -initrd "$tmp/big.img"
expect_error bzimage-initrd-too-big "does not fit" -m 128 -kernel "$GUEST/bzImage" \
    -initrd "$tmp/big.img"
# Cut-off kernels.
head -c 100000 "$GUEST/bzImage" >"$tmp/bz-cut"
expect_error bzimage-truncated "truncated" -kernel "$tmp/bz-cut"
head -c 3000000 "$GUEST/vmlinux" >"$tmp/vmlinux-cut"
expect_error vmlinux-truncated "truncated ELF" -kernel "$tmp/vmlinux-cut"
# A command line longer than the kernel takes.
expect_error cmdline-too-long "takes at most" -kernel "$GUEST/bzImage" -append "$(head -c 5000 /dev/zero | tr '\0' x)"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
