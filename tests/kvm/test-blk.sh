#!/bin/bash
# virtio-blk through the kvmloop binary: -drive errors are one line, SIGTERM after a flush loses nothing.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
immutable=""
cleanup() {
    [ -n "$immutable" ] && chattr -i "$immutable" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/../lib/common.sh"
require_kvm

K="$GUEST/virtio-blk.elf"
DX="isa-debug-exit,iobase=0xf4,iosize=0x4"

img() { truncate -s 1M "$1"; }

img "$tmp/ok.img"
expect_error missing-image "cannot open $tmp/none.img: No such file" \
    -kernel "$K" -drive "file=$tmp/none.img,if=virtio,format=raw"
expect_error no-file "no image given" -kernel "$K" -drive "if=virtio"
expect_error qcow2 "format=qcow2 is not supported" -kernel "$K" -drive "file=$tmp/ok.img,format=qcow2"
expect_error ide "if=ide is not supported" -kernel "$K" -drive "file=$tmp/ok.img,if=ide"
expect_error unknown-option "unknown option 'snapshot'" -kernel "$K" -drive "file=$tmp/ok.img,snapshot=on"
expect_error unknown-iothread "there is no iothread 'io9'" -kernel "$K" -drive "file=$tmp/ok.img,iothread=io9"
expect_error bad-aio "unknown aio 'native'" -kernel "$K" -drive "file=$tmp/ok.img,aio=native"
expect_error bad-queues "num-queues=9 is outside" -kernel "$K" -drive "file=$tmp/ok.img,num-queues=9"
expect_error dup-id "id 'd' is already in use" -kernel "$K" -drive "file=$tmp/ok.img,id=d" \
    -drive "file=$tmp/ok.img,id=d"

# An image kvmloop may not write: without readonly=on an error, with it the guest runs. Root
# writes through file modes, so an immutable file stands in where chattr works.
img "$tmp/ro.img"
chmod 0444 "$tmp/ro.img"
if [ "$(id -u)" -eq 0 ]; then
    chattr +i "$tmp/ro.img" 2>/dev/null && immutable="$tmp/ro.img"
fi
if [ "$(id -u)" -ne 0 ] || [ -n "$immutable" ]; then
    expect_error unwritable "cannot open $tmp/ro.img for writing: .*(add readonly=on)" \
        -kernel "$K" -drive "file=$tmp/ro.img,if=virtio,format=raw"
    timeout 60 "$KVMLOOP" -kernel "$K" -device "$DX" -append mode=1 -serial "file:$tmp/ro.log" \
        -drive "file=$tmp/ro.img,if=virtio,format=raw,readonly=on" 2>"$tmp/err" </dev/null
    st=$?
    if [ "$st" -eq 1 ] && grep -q "virtio-blk: ok (read-only)" "$tmp/ro.log"; then
        ok
    else
        bad "readonly=on on an unwritable image: status $st, $(cat "$tmp/err" "$tmp/ro.log")"
    fi
else
    echo "note: running as root without chattr: the unwritable-image case is skipped" >&2
fi

# The reference: a clean power-off leaves the pattern in the first 32 KiB (test-kvm-virtio
# checks those bytes one by one).
img "$tmp/ref.img"
timeout 60 "$KVMLOOP" -kernel "$K" -device "$DX" -serial null \
    -drive "file=$tmp/ref.img,if=virtio,format=raw" 2>/dev/null </dev/null
st=$?
[ "$st" -eq 1 ] && ok || bad "reference run: status $st"

# sigterm NAME DRIVE-OPTS [ARGS...]: the payload flushes the pattern, says so, and keeps writing
# elsewhere; SIGTERM then ends kvmloop with status 0 and the flushed bytes are in the image.
sigterm() {
    local name=$1 opts=$2
    shift 2
    img "$tmp/$name.img"
    "$KVMLOOP" -kernel "$K" -device "$DX" -append mode=2 -serial "file:$tmp/$name.log" "$@" \
        -drive "file=$tmp/$name.img,if=virtio,format=raw$opts" 2>"$tmp/$name.err" </dev/null &
    local pid=$!
    for _ in $(seq 300); do
        grep -q "virtio-blk: flushed" "$tmp/$name.log" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q "virtio-blk: flushed" "$tmp/$name.log" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid"
        bad "sigterm/$name: the payload never flushed: $(cat "$tmp/$name.log" "$tmp/$name.err")"
        return
    fi
    sleep 0.2 # requests in flight when the signal lands
    kill -TERM "$pid"
    wait "$pid"
    local st=$?
    if [ "$st" -ne 0 ]; then
        bad "sigterm/$name: status $st, expected 0: $(cat "$tmp/$name.err")"
    elif ! cmp -s -n 32768 "$tmp/ref.img" "$tmp/$name.img"; then
        bad "sigterm/$name: the flushed sectors differ from the reference"
    elif ! grep -q "terminating on signal 15" "$tmp/$name.err"; then
        bad "sigterm/$name: no termination message: $(cat "$tmp/$name.err")"
    else
        ok
    fi
}

sigterm main-loop ""
sigterm iothread ",iothread=io0" -object iothread,id=io0
sigterm threads ",aio=threads"
sigterm cache-none ",cache=none,iothread=io0" -object iothread,id=io0

echo "blk: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
