#!/bin/bash
# Bad Linux boot input with the real Debian kernel: each a one-line error and status 1.
#   test-linux-errors.sh KVMLOOP GUEST_DIR
set -u
KVMLOOP=$1
GUEST=$2
skip() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: $* (CI needs this test)" >&2
        exit 1
    fi
    echo "SKIP: $*" >&2
    exit 77
}
{ exec 3<>/dev/kvm; } 2>/dev/null || skip "/dev/kvm is not usable"
exec 3>&-
[ -r "$GUEST/vmlinux" ] && [ -r "$GUEST/bzImage" ] || skip "no guest image in $GUEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

expect_error() {
    local name=$1 pattern=$2
    shift 2
    timeout 60 "$KVMLOOP" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local st=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ $st -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$pattern" "$tmp/err"; then
        fail=$((fail + 1))
        echo "FAIL: $name: status $st, stderr: $(cat "$tmp/err")" >&2
    else
        pass=$((pass + 1))
    fi
}

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
