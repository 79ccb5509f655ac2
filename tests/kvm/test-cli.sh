#!/bin/bash
# kvmloop's command line as a user meets it: errors are one line and non-zero, statuses are exact.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/../lib/common.sh"
require_kvm

# expect_status NAME STATUS ARGS...
expect_status() {
    local name=$1 want=$2
    shift 2
    timeout 60 "$KVMLOOP" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local st=$?
    if [ "$st" -ne "$want" ]; then
        bad "$name: status $st, expected $want; stderr: $(head -3 "$tmp/err")"
    else
        ok
    fi
}

K="$GUEST/hello.elf"
DX="isa-debug-exit,iobase=0xf4,iosize=0x4"

"$KVMLOOP" --help >"$tmp/help" && grep -q -- "-smp N" "$tmp/help" && grep -q testdev "$tmp/help" \
    && grep -q -- "-stats-file FILE.json" "$tmp/help" && grep -q -- "-stats-collect on|full|off" "$tmp/help" \
    && ok || bad "--help"
"$KVMLOOP" -version | grep -q '^kvmloop ' && ok || bad "-version"

expect_error unknown-option "unknown option '-bogus'" -bogus
expect_error missing-arg "needs an argument" -kernel
expect_error no-kernel "no kernel given"
expect_error smp-zero "-smp: '0'" -smp 0 -kernel "$K"
expect_error smp-junk "-smp: 'x'" -smp x -kernel "$K"
expect_error m-zero "-m: 0 is outside" -m 0 -kernel "$K"
expect_error m-huge "-m: 5T is outside" -m 5T -kernel "$K"
expect_error m-junk "-m: 'lots'" -m lots -kernel "$K"
expect_error machine "unknown machine type 'q35'" -machine q35 -kernel "$K"
expect_error accel "unknown accelerator 'tcg'" -accel tcg -kernel "$K"
expect_error kernel-missing "kernel '/nonexistent': No such file" -kernel /nonexistent
expect_error smp-topology "do not make 2 sockets" -smp 4,sockets=2,cores=3 -kernel "$K"
expect_error smp-param "unknown parameter 'nodes'" -smp 4,nodes=2 -kernel "$K"
expect_error smp-maxcpus "hotplug is not supported" -smp 2,maxcpus=4 -kernel "$K"
expect_error cpu-model "unknown CPU model 'pentium'" -cpu pentium -kernel "$K"
expect_error cpu-feature "unknown CPU feature 'warp'" -cpu host,+warp -kernel "$K"
expect_error accel-option "unknown option 'fast=on'" -accel kvm,fast=on -kernel "$K"
# A bzImage header that promises more code than the file has.
head -c 1024 /dev/zero >"$tmp/bz"
printf '\x01' | dd of="$tmp/bz" bs=1 seek=$((0x1f1)) conv=notrunc status=none
printf '\x00\x10' | dd of="$tmp/bz" bs=1 seek=$((0x1f5)) conv=notrunc status=none
printf '\x55\xaa' | dd of="$tmp/bz" bs=1 seek=$((0x1fe)) conv=notrunc status=none
printf 'HdrS\x0f\x02' | dd of="$tmp/bz" bs=1 seek=$((0x202)) conv=notrunc status=none
printf '\x01' | dd of="$tmp/bz" bs=1 seek=$((0x211)) conv=notrunc status=none
printf '\x00\x00\x20\x00' | dd of="$tmp/bz" bs=1 seek=$((0x230)) conv=notrunc status=none
printf '\x01\x00' | dd of="$tmp/bz" bs=1 seek=$((0x236)) conv=notrunc status=none
expect_error bzimage-truncated "truncated" -kernel "$tmp/bz"
# An ELF that is neither PVH nor multiboot: this shell, say.
expect_error elf-no-note "an ELF without a PVH entry note" -kernel /bin/sh
expect_error initrd-missing "'/nonexistent': No such file" -kernel "$K" -initrd /nonexistent
printf 'not an elf at all' >"$tmp/junk"
expect_error kernel-not-elf "no multiboot header" -kernel "$tmp/junk"
expect_error device-unknown "unknown device 'nic'" -kernel "$K" -device nic
expect_error device-prop "has no property 'color'" -kernel "$K" -device testdev,color=red
expect_error device-lock "invalid lock 'spin'" -kernel "$K" -device testdev,lock=spin
expect_error device-number "needs a number" -kernel "$K" -device testdev,iobase=abc
expect_error device-overlap "overlaps" -kernel "$K" -device testdev -device testdev,id=t2
expect_error device-internal "part of the machine" -kernel "$K" -device fw_cfg
expect_error serial-bad "unknown -serial backend" -kernel "$K" -serial tcp:1
expect_error serial-file "cannot open" -kernel "$K" -serial file:/nonexistent/dir/out
expect_error object-type "unknown object type 'memory-backend-ram'" -kernel "$K" \
    -object memory-backend-ram,id=m0
expect_error object-no-id "an iothread needs id=NAME" -kernel "$K" -object iothread
expect_error object-loop "unknown loop 'epoll'" -kernel "$K" -object iothread,id=io0,loop=epoll
expect_error object-prop "has no property 'poll-max-ns'" -kernel "$K" \
    -object iothread,id=io0,poll-max-ns=0
expect_error object-kv "expected key=value, got 'io0'" -kernel "$K" -object iothread,io0
expect_error object-twice "property 'id' given twice" -kernel "$K" -object iothread,id=a,id=b
expect_error object-dup "id 'io0' is already in use" -kernel "$K" -object iothread,id=io0 \
    -object iothread,id=io0,loop=libevent
expect_error object-bad-id "iothread id '0io' is invalid" -kernel "$K" -object iothread,id=0io
expect_error testdev-iothread "there is no iothread 'io1'" -kernel "$K" -object iothread,id=io0 \
    -device testdev,ioeventfd=on,iothread=io1
expect_error testdev-iothread-off "iothread needs ioeventfd=on" -kernel "$K" \
    -object iothread,id=io0 -device testdev,iothread=io0
expect_error testdev-data-off "doorbell-data needs ioeventfd=on" -kernel "$K" \
    -device testdev,doorbell-data=1
expect_error testdev-data-wide "doorbell-data must fit" -kernel "$K" \
    -device testdev,ioeventfd=on,doorbell-data=0x100000000
expect_error testdev-ioeventfd "property 'ioeventfd' needs on or off" -kernel "$K" \
    -device testdev,ioeventfd=maybe
expect_error testdev-irq "irq must be an ISA IRQ from 0 to 15" -kernel "$K" \
    -device testdev,ioeventfd=on,irq=16
expect_error testdev-doorbell-overlap "overlaps" -kernel "$K" -device testdev,ioeventfd=on \
    -device testdev,id=t2,iobase=0x710,mmio=0xfe100000
expect_error stats-collect "-stats-collect: 'maybe' is not on, full or off" -kernel "$K" \
    -stats-collect maybe
expect_error stats-file-empty "-stats-file: the file name is empty" -kernel "$K" -stats-file ""
expect_error stats-file-dir "cannot write statistics to '/nonexistent/dir/s.json'" -kernel "$K" \
    -stats-file /nonexistent/dir/s.json
KVMLOOP_KVM_DEVICE=/nonexistent expect_error kvm-missing "cannot open /nonexistent" -kernel "$K"

expect_status debug-exit 7 -kernel "$K" -append exit=3 -device "$DX"
grep -q "hello from kvmloop" "$tmp/out" && ok || bad "hello output on stdout"
expect_status serial-file 1 -kernel "$K" -device "$DX" -serial "file:$tmp/serial.txt"
grep -q "hello from kvmloop" "$tmp/serial.txt" && ok || bad "hello output in the serial file"
expect_status stats 1 -kernel "$K" -device "$DX" -stats
grep -q "^BQL: " "$tmp/err" && grep -q "exit io:serial0.serial" "$tmp/err" &&
    grep -q "^  serial0.serial  *io  *bql" "$tmp/err" && grep -q "collection on" "$tmp/err" &&
    ok || bad "-stats report"
expect_status stats-off 1 -kernel "$K" -device "$DX" -stats -stats-collect off
grep -q "collection off" "$tmp/err" && grep -q "^BQL: 0 acquisitions" "$tmp/err" &&
    ok || bad "-stats-collect off"
expect_status stats-full 1 -kernel "$K" -device "$DX" -stats -stats-collect full
grep -q "collection full" "$tmp/err" && ok || bad "-stats-collect full"
expect_status stats-file 1 -kernel "$K" -device "$DX" -stats-file "$tmp/s.json"
grep -q '"schema" : "kvmloop-stats"' "$tmp/s.json" && grep -q '"exit io:serial0.serial"' "$tmp/s.json" &&
    [ -z "$(errors)" ] && [ "$(ls "$tmp" | grep -c 's.json.')" -eq 0 ] &&
    ok || bad "-stats-file document"
expect_status triple-fault 2 -kernel "$GUEST/triple-fault.elf" -device "$DX"
grep -q "triple fault" "$tmp/err" && grep -q "RIP=" "$tmp/err" && ok || bad "triple fault report"
expect_status smp-hello 1 -kernel "$GUEST/smp-hello.elf" -smp 4 -device "$DX"
[ "$(grep -c 'hello from vCPU' "$tmp/out")" -eq 4 ] && ok || bad "4 vCPUs greeted"
# Topology: APIC IDs follow sockets/cores/threads (3 cores need 2 bits).
# The guest prints APIC IDs: 2 sockets x 3 cores are 0-2 and 4-6.
expect_status smp-topology 1 -kernel "$GUEST/smp-hello.elf" -smp 6,sockets=2,cores=3 -device "$DX"
[ "$(grep -c 'hello from vCPU' "$tmp/out")" -eq 6 ] && grep -q "vCPU 6 of 6" "$tmp/out" \
    && ! grep -q "vCPU 3 of" "$tmp/out" && ok || bad "APIC IDs of 2 sockets x 3 cores"
expect_status cpu-base 1 -kernel "$GUEST/smp-hello.elf" -smp 2 -cpu base,-sse3 -device "$DX"

# Doorbells served by an iothread: the guest's counts are exact and no
# matched write shows up as an access to the doorbell regions.
expect_status doorbell-iothread 1 -kernel "$GUEST/doorbell.elf" -smp 2 -device "$DX" \
    -object iothread,id=io0,loop=libevent -device testdev,ioeventfd=on,iothread=io0 \
    -append n=300 -stats
grep -q "doorbell: done" "$tmp/out" && grep -Eq "testdev\.doorbell-pio +io +[a-z]+ +0 " "$tmp/err" \
    && grep -Eq "testdev\.doorbell-mmio +memory +[a-z]+ +0 " "$tmp/err" && ok ||
    bad "doorbell through io0"
expect_status doorbell-exit 1 -kernel "$GUEST/doorbell.elf" -device "$DX" -device testdev \
    -append n=300 -stats
grep -Eq "testdev\.doorbell-pio +300 " "$tmp/err" && ok || bad "doorbell through exits"
expect_status iothread-idle 1 -kernel "$K" -device "$DX" -object iothread,id=io0 \
    -object iothread,id=io1,loop=libevent

# A reset (i8042 0xFE, the ACPI reset register) reboots: the kernel is loaded again and every
# vCPU comes back; under -no-reboot it ends the run with status 0.
for how in kbd acpi; do
    arg=; [ $how = acpi ] && arg=acpi=1
    expect_status "reset-$how" 1 -kernel "$GUEST/reset.elf" -append "$arg" -smp 4 -device "$DX"
    grep -q "boot 1: 4 vCPUs up" "$tmp/out" && grep -q "boot 2: 4 vCPUs up" "$tmp/out" && ok ||
        bad "reset-$how: $(cat "$tmp/out")"
    expect_status "no-reboot-$how" 0 -no-reboot -kernel "$GUEST/reset.elf" -append "$arg" -smp 2 \
        -device "$DX"
    grep -q "boot 2" "$tmp/out" && bad "no-reboot-$how: booted twice" || ok
done

# SIGTERM stops a running guest cleanly, as in QEMU.
"$KVMLOOP" -kernel "$GUEST/spin.elf" -smp 2 >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
for _ in $(seq 100); do grep -q spinning "$tmp/out" && break; sleep 0.1; done
kill -TERM $pid
wait $pid
st=$?
[ $st -eq 0 ] && grep -q "terminating on signal 15" "$tmp/err" && ok || bad "SIGTERM: status $st"

# SIGUSR1: a snapshot while the guest runs, as tables on stderr or into -stats-file. The
# output files go first: a "spinning" left from the run above would send the signal too early.
rm -f "$tmp/out" "$tmp/err"
"$KVMLOOP" -kernel "$GUEST/spin.elf" -smp 2 >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
for _ in $(seq 100); do grep -qs spinning "$tmp/out" && break; sleep 0.1; done
kill -USR1 $pid
for _ in $(seq 100); do grep -q "kvmloop statistics" "$tmp/err" && break; sleep 0.1; done
kill -TERM $pid
wait $pid
st=$?
[ $st -eq 0 ] && grep -q "exit io:serial0.serial" "$tmp/err" && ok ||
    bad "SIGUSR1 to stderr: status $st; stderr: $(head -3 "$tmp/err")"

rm -f "$tmp/s.json" "$tmp/out" "$tmp/err"
"$KVMLOOP" -kernel "$GUEST/spin.elf" -smp 2 -stats-file "$tmp/s.json" >"$tmp/out" 2>"$tmp/err" \
    </dev/null &
pid=$!
for _ in $(seq 100); do grep -qs spinning "$tmp/out" && break; sleep 0.1; done
grep -q '"exits_total" : 0' "$tmp/s.json" && ok ||
    bad "-stats-file written at start-up; stderr: $(head -3 "$tmp/err")"
kill -USR1 $pid
for _ in $(seq 100); do grep -q '"exit io:serial0.serial"' "$tmp/s.json" && break; sleep 0.1; done
grep -q '"exit io:serial0.serial"' "$tmp/s.json" && ok ||
    bad "SIGUSR1 snapshot in -stats-file; stderr: $(head -3 "$tmp/err")"
kill -TERM $pid
wait $pid
st=$?
[ $st -eq 0 ] && [ "$(grep -c 'kvmloop statistics' "$tmp/err")" -eq 0 ] && ok ||
    bad "SIGUSR1 with -stats-file: status $st"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
