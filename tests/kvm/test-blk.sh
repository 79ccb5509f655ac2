#!/bin/bash
# virtio-blk through the kvmloop binary: -drive errors are one line, images are locked, SIGTERM
# after a flush loses nothing.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
immutable=""
loopdev=""
cleanup() {
    [ -n "$immutable" ] && chattr -i "$immutable" 2>/dev/null
    [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
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

# Image locks: a holder stays up paused (-S, its QMP socket never used) with the image open.
# Read-write takes the image exclusively, read-only shares it with readers; a conflict is a
# one-line error at once; locking=off opts out.
hold() {
    local name=$1 opts=$2
    "$KVMLOOP" -S -qmp "unix:$tmp/$name.sock,server=on,wait=off" -kernel "$K" -serial null \
        -drive "file=$tmp/lock.img,if=virtio,format=raw$opts" 2>"$tmp/$name.err" </dev/null &
    holder=$!
    for _ in $(seq 100); do
        [ -S "$tmp/$name.sock" ] && return
        sleep 0.1
    done
    bad "lock/$name: the holder did not start: $(cat "$tmp/$name.err")"
}
release() {
    kill -TERM "$holder" 2>/dev/null
    wait "$holder"
}
# runs NAME MODE DRIVE-OPTS: the payload runs to its end on the locked image.
runs() {
    timeout 60 "$KVMLOOP" -kernel "$K" -device "$DX" -append "mode=$2" -serial "file:$tmp/$1.log" \
        -drive "file=$tmp/lock.img,if=virtio,format=raw$3" 2>"$tmp/$1.err" </dev/null
    local st=$?
    if [ "$st" -eq 1 ] && grep -q "virtio-blk: ok" "$tmp/$1.log"; then
        ok
    else
        bad "lock/$1: status $st: $(cat "$tmp/$1.err" "$tmp/$1.log")"
    fi
}
locked="-drive file=$tmp/lock.img: image is in use by another process (locked)"
img "$tmp/lock.img"
hold rw ""
expect_error lock/rw-rw "$locked" -kernel "$K" -drive "file=$tmp/lock.img,if=virtio,format=raw"
expect_error lock/rw-ro "$locked" -kernel "$K" -drive "file=$tmp/lock.img,readonly=on"
expect_error lock/rw-iothread "$locked" -kernel "$K" -object iothread,id=io0 \
    -drive "file=$tmp/lock.img,iothread=io0,cache=none"
runs rw-unlocked 0 ",locking=off"
release
hold ro ",readonly=on"
runs ro-ro 1 ",readonly=on"
expect_error lock/ro-rw "$locked" -kernel "$K" -drive "file=$tmp/lock.img"
release
runs free 0 ""
expect_error lock/bad-value "locking=maybe is not one of on, off" -kernel "$K" \
    -drive "file=$tmp/lock.img,locking=maybe"

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

# cache=none on a disk of 4096-byte sectors: the guest is told the block size, and its 4 KiB
# requests (half of them at odd addresses, through a bounce buffer) reach the disk intact.
if [ "$(id -u)" -ne 0 ] || ! command -v losetup >/dev/null; then
    echo "note: not root or no losetup: the 4096-byte sector case is skipped" >&2
else
    img "$tmp/4k.img"
    loopdev=$(losetup --sector-size 4096 -f --show "$tmp/4k.img" 2>"$tmp/losetup.err")
    if [ -z "$loopdev" ]; then
        echo "note: losetup --sector-size 4096 failed ($(head -1 "$tmp/losetup.err")):" \
            "the 4096-byte sector case is skipped" >&2
    else
        timeout 60 "$KVMLOOP" -kernel "$K" -device "$DX" -serial "file:$tmp/4k.log" \
            -drive "file=$loopdev,if=virtio,format=raw,cache=none" 2>"$tmp/4k.err" </dev/null
        st=$?
        losetup -d "$loopdev"
        loopdev=""
        if [ "$st" -ne 1 ] || ! grep -q "virtio-blk: ok" "$tmp/4k.log"; then
            bad "4k-sectors: status $st: $(cat "$tmp/4k.err" "$tmp/4k.log")"
        elif ! grep -q "virtio-blk: blk_size 4096" "$tmp/4k.log"; then
            bad "4k-sectors: block size not offered: $(grep blk_size "$tmp/4k.log")"
        elif ! cmp -s -n 32768 "$tmp/ref.img" "$tmp/4k.img"; then
            bad "4k-sectors: the image differs from the reference"
        else
            ok
        fi
    fi
fi

# sigterm NAME DRIVE-OPTS [ARGS...]: the payload flushes the pattern, says so, and keeps writing
# elsewhere; SIGTERM then ends kvmloop with status 0 and the flushed bytes are in the image. The
# disk's counters are in the -stats table and the -stats-file document, and the image is
# unlocked again.
reopens() {
    timeout 30 "$KVMLOOP" -kernel "$K" -device "$DX" -append mode=1 -serial null \
        -drive "file=$1,if=virtio,format=raw,readonly=on" 2>/dev/null </dev/null
    [ $? -eq 1 ]
}
sigterm() {
    local name=$1 opts=$2
    shift 2
    img "$tmp/$name.img"
    "$KVMLOOP" -kernel "$K" -device "$DX" -append mode=2 -serial "file:$tmp/$name.log" "$@" \
        -stats -stats-file "$tmp/$name.json" \
        -drive "file=$tmp/$name.img,if=virtio,format=raw,id=d-$name$opts" 2>"$tmp/$name.err" \
        </dev/null &
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
    elif ! grep -A2 "^disks" "$tmp/$name.err" | grep -Eq "^  d-$name +[1-9][0-9]* +0 "; then
        bad "sigterm/$name: no disk counters in -stats: $(grep -A2 "^disks" "$tmp/$name.err")"
    elif ! grep -A4 '"disks"' "$tmp/$name.json" | grep -q "\"id\" : \"d-$name\"" ||
        ! grep -q '"late_completions" : 0' "$tmp/$name.json"; then
        bad "sigterm/$name: no disk counters in -stats-file"
    elif ! reopens "$tmp/$name.img"; then
        bad "sigterm/$name: the image cannot be opened again"
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
