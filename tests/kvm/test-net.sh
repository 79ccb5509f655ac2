#!/bin/bash
# -netdev and virtio-net-pci through the kvmloop binary: bad input is one line, the tap's name is findable.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/../lib/common.sh"
require_kvm

K="$GUEST/virtio-net.elf"
NIC="virtio-net-pci,netdev=n0"

# Caught by the command-line parser: no tap is opened.
expect_error no-id "needs id=ID" -kernel "$K" -netdev tap -device "$NIC"
expect_error dup-id "id 'n0' is already in use" -kernel "$K" -netdev tap,id=n0 \
    -netdev tap,id=n0 -device "$NIC"
expect_error unknown-option "unknown option 'vhost'" -kernel "$K" -netdev tap,id=n0,vhost=on \
    -device "$NIC"
expect_error script "script= is not supported" -kernel "$K" \
    -netdev tap,id=n0,script=/etc/qemu-ifup -device "$NIC"
expect_error downscript "downscript= is not supported" -kernel "$K" \
    -netdev tap,id=n0,downscript=/bin/true -device "$NIC"
expect_error user "type 'user' is not supported" -kernel "$K" -netdev user,id=n0 -device "$NIC"
expect_error long-ifname "ifname must be 1 to 15" -kernel "$K" \
    -netdev tap,id=n0,ifname=a-much-too-long-name -device "$NIC"
expect_error unused "no device uses it" -kernel "$K" -netdev tap,id=n0
expect_error unknown-netdev "there is no -netdev with id 'n9'" -kernel "$K" -netdev tap,id=n0 \
    -device "$NIC" -device virtio-net-pci,netdev=n9
expect_error no-netdev "needs netdev=ID" -kernel "$K" -device virtio-net-pci
expect_error_cmd no-tun "cannot open $tmp/tun: No such file or directory (is the tun module" \
    env KVMLOOP_TUN_DEVICE="$tmp/tun" "$KVMLOOP" -kernel "$K" -netdev tap,id=n0 -device "$NIC"

if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/net/tun ]; then
    if [ -n "${CI:-}" ]; then
        bad "CI needs root and /dev/net/tun for the tap checks"
    else
        echo "net: $pass passed, $fail failed; tap checks skipped (need root and /dev/net/tun)"
        [ "$fail" -eq 0 ] && exit 77
        exit 1
    fi
else
    # As an unprivileged user /dev/net/tun (mode 0600) is out of reach.
    expect_error_cmd no-permission "cannot open /dev/net/tun: Permission denied (run as root" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$KVMLOOP" -kernel "$K" \
        -netdev tap,id=n0 -device "$NIC"
    expect_error bad-mac "mac=01:00:00:00:00:01 is not a unicast address" -kernel "$K" \
        -netdev tap,id=n0 -device "$NIC,mac=01:00:00:00:00:01"
    expect_error short-mac "mac=52:54:00:1 is not a unicast address" -kernel "$K" \
        -netdev tap,id=n0 -device "$NIC,mac=52:54:00:1"
    expect_error shared-netdev "netdev 'n0' is already used by" -kernel "$K" -netdev tap,id=n0 \
        -device "$NIC,id=a" -device "$NIC,id=b"
    expect_error bad-iothread "there is no iothread 'io9'" -kernel "$K" -netdev tap,id=n0 \
        -device "$NIC,iothread=io9"

    # With no ifname the kernel names the tap; /proc/PID/fdinfo tells which (see the user guide).
    "$KVMLOOP" -kernel "$K" -netdev tap,id=n0 -device "$NIC" -serial null \
        >"$tmp/out" 2>"$tmp/err" </dev/null &
    pid=$!
    name=""
    for _ in $(seq 100); do
        name=$(grep -h "^iff:" /proc/$pid/fdinfo/* 2>/dev/null | awk '{print $2}')
        [ -n "$name" ] && break
        sleep 0.1
    done
    if [ -z "$name" ]; then
        bad "fdinfo: no iff: line for kvmloop's tap"
    elif ! [ -d "/sys/class/net/$name" ]; then
        bad "fdinfo: '$name' is not an interface"
    else
        ok
    fi
    kill -TERM "$pid"
    wait "$pid"
    pid=""
    [ -d "/sys/class/net/$name" ] && bad "fdinfo: $name outlived kvmloop" || ok
fi

echo "net: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
