#!/bin/bash
# Full boots of the Debian guest to its userspace marker, on hosts with hardware virtualization.
#   test-linux-full.sh KVMLOOP GUEST_DIR CASE
# CASE: smp1 smp2 smp4 (boot to the marker, exactly N CPUs online, poweroff -> status 0),
# reboot-noreboot, panic-noreboot (status 0 under -no-reboot), reboot-once (comes back up once),
# hammer (two guest CPUs hammer the test device from userspace; the host checks the count),
# disk (a pattern written to /dev/vda and synced; the host reads the image after poweroff),
# hwrng (virtio-rng feeds /dev/hwrng), hvc (virtio-console: a line each way on hvc0),
# net (virtio-net on a tap: the guest pings the host's address on it; needs root and /dev/net/tun).
set -u
KVMLOOP=$1
GUEST=$2
CASE=$3
LIMIT=${KVMLOOP_LINUX_TIMEOUT:-300}

. "$(dirname "$0")/../lib/common.sh"
require_kvm
# On a host without VMX/SVM this is expected, also in CI: the kernel cannot reach userspace.
grep -qwE 'vmx|svm' /proc/cpuinfo ||
    skip "this host's KVM has no VMX/SVM: guest kernel code is emulated and a stock kernel never reaches userspace here (the early tests cover what runs)"
[ -r "$GUEST/bzImage" ] && [ -r "$GUEST/initramfs.cpio.gz" ] || skip "no guest image in $GUEST"

tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

# run NCPUS EXTRA_APPEND [kvmloop args...]: boot in the background, console in $tmp/console,
# kvmloop's stdin from $stdin (default /dev/null).
run() {
    local n=$1 extra=$2
    shift 2
    "$KVMLOOP" -kernel "$GUEST/bzImage" -initrd "$GUEST/initramfs.cpio.gz" -m 512 -smp "$n" \
        -append "console=ttyS0 panic=-1 $extra" -serial "file:$tmp/console" "$@" \
        >"$tmp/out" 2>"$tmp/err" <"${stdin:-/dev/null}" &
    pid=$!
}

# wait_for PATTERN COUNT: until the console has COUNT lines matching PATTERN (or kvmloop ends).
wait_for() {
    local end=$(($(date +%s) + LIMIT))
    while [ "$(grep -c -- "$1" "$tmp/console" 2>/dev/null)" -lt "$2" ]; do
        kill -0 $pid 2>/dev/null || return 1
        [ "$(date +%s)" -lt $end ] || return 1
        sleep 0.2
    done
}

# finish: wait for kvmloop to end on its own (within the limit); sets $st.
finish() {
    local end=$(($(date +%s) + LIMIT))
    while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
    kill -9 $pid 2>/dev/null
    wait $pid
    st=$?
    pid=
}

case $CASE in
smp1 | smp2 | smp4)
    n=${CASE#smp}
    run "$n" ""
    finish
    [ $st -eq 0 ] || bad "status $st after poweroff, expected 0"
    grep -q "kvmloop-guest: up [0-9.]* s, $n cpus online" "$tmp/console" ||
        bad "no marker with $n CPUs online: $(grep kvmloop-guest "$tmp/console")"
    ;;
reboot-noreboot)
    run 2 "kvmloop.script=reboot" -no-reboot
    finish
    [ $st -eq 0 ] || bad "status $st, expected 0"
    [ "$(grep -c 'Linux version' "$tmp/console")" -eq 1 ] || bad "the guest booted again"
    ;;
panic-noreboot)
    run 2 "kvmloop.script=panic" -no-reboot
    finish
    [ $st -eq 0 ] || bad "status $st, expected 0"
    grep -q "Kernel panic" "$tmp/console" || bad "no panic seen"
    ;;
reboot-once)
    run 2 "kvmloop.script=reboot"
    wait_for "kvmloop-guest: up .* 2 cpus online" 2 || bad "did not come back up after reboot"
    kill -TERM $pid
    wait $pid
    st=$?
    pid=
    [ $st -eq 0 ] || bad "status $st after SIGTERM, expected 0"
    [ "$(grep -c 'Linux version' "$tmp/console")" -ge 2 ] || bad "one boot only"
    ;;
hammer)
    run 2 "kvmloop.script=hammer" -device testdev -stats
    finish
    [ $st -eq 0 ] || bad "status $st, expected 0"
    grep -q "hammer: 2 cpus x 100000 writes done" "$tmp/console" ||
        bad "hammer did not finish: $(grep hammer "$tmp/console")"
    # Every write is one access; the program reads the counter once at the end.
    acc=$(awk '$1 == "testdev.pio" { print $2 }' "$tmp/err")
    [ "$acc" = 200001 ] || bad "testdev.pio saw $acc accesses, expected 200001"
    grep -q "hammer: counter 200000" "$tmp/console" || bad "guest read a wrong count"
    ;;
disk)
    img=$tmp/disk.img
    truncate -s 64M "$img"
    run 1 "kvmloop.script=disk" -drive "file=$img,if=virtio,format=raw"
    finish
    [ $st -eq 0 ] || bad "status $st after poweroff, expected 0"
    grep -q "kvmloop-guest: script disk exited 0" "$tmp/console" ||
        bad "the guest's disk script failed: $(grep 'disk' "$tmp/console")"
    want=$(for i in $(seq 0 15); do echo "kvmloop disk pattern $i"; done)
    got=$(dd if="$img" bs=512 skip=8 count=1 2>/dev/null | tr -d '\0')
    [ "$got" = "$want" ] || bad "sector 8 of the image holds '$(echo "$got" | head -n 2)'"
    [ "$(dd if="$img" bs=512 count=8 2>/dev/null | tr -d '\0' | wc -c)" -eq 0 ] ||
        bad "sectors 0-7 of the image were written"
    ;;
hwrng)
    run 1 "kvmloop.script=hwrng" -device virtio-rng-pci
    finish
    [ $st -eq 0 ] || bad "status $st after poweroff, expected 0"
    grep -q "hwrng: current virtio_rng" "$tmp/console" || bad "virtio-rng is not the current hwrng"
    bytes=$(grep -o "hwrng:\( [0-9a-f][0-9a-f]\)\{16\}" "$tmp/console")
    [ -n "$bytes" ] || bad "no 16 random bytes: $(grep hwrng "$tmp/console")"
    [ "$bytes" != "hwrng: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00" ] || bad "all zeros"
    ;;
hvc)
    # hvc0 writes to kvmloop's stdout ($tmp/out) and reads its stdin.
    echo "ping from the host" >"$tmp/in"
    stdin=$tmp/in run 1 "kvmloop.script=hvc" -device virtio-console-pci,chardev=stdio
    finish
    [ $st -eq 0 ] || bad "status $st after poweroff, expected 0"
    grep -q "hvc: hello from the guest" "$tmp/out" || bad "nothing from hvc0 on the host"
    grep -q "hvc: got 'ping from the host'" "$tmp/console" ||
        bad "the guest did not read the host's line: $(grep hvc "$tmp/console")"
    ;;
net)
    if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/net/tun ]; then
        [ -n "${CI:-}" ] && { echo "FAIL: CI needs root and /dev/net/tun for net" >&2; exit 1; }
        skip "a tap needs root and /dev/net/tun"
    fi
    tap=kvmloopl$(($$ % 100000))
    run 1 "kvmloop.script=net" -netdev "tap,id=n0,ifname=$tap" -device virtio-net-pci,netdev=n0
    # kvmloop creates the tap before the guest runs; the host side gets its address then.
    for _ in $(seq 100); do
        [ -d "/sys/class/net/$tap" ] && break
        sleep 0.1
    done
    ip addr add 10.213.77.1/24 dev "$tap" && ip link set "$tap" up ||
        bad "cannot configure $tap on the host"
    finish
    [ $st -eq 0 ] || bad "status $st after poweroff, expected 0"
    grep -q "net: [a-z0-9]* on virtio_net" "$tmp/console" ||
        bad "no virtio_net interface: $(grep 'net:' "$tmp/console")"
    replies=$(sed -n 's/.*net: \([0-9]*\) replies.*/\1/p' "$tmp/console")
    [ "${replies:-0}" -ge 4 ] || bad "${replies:-no} ping replies of 5: $(grep 'net:' "$tmp/console")"
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
[ $fail -eq 0 ] && echo "PASS: $CASE"
exit $((fail > 0))
