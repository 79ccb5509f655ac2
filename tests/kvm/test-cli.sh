#!/bin/bash
# kvmloop's command line as a user meets it: errors are one line and non-zero, statuses are exact.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

if ! { exec 3<>/dev/kvm; } 2>/dev/null; then
    if [ -n "${CI:-}" ]; then
        echo "FAIL: /dev/kvm is not usable and CI needs these tests" >&2
        exit 1
    fi
    echo "SKIP: /dev/kvm is not usable" >&2
    exit 77
fi
exec 3>&-

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_error NAME PATTERN ARGS...: exit 1, exactly one line on stderr matching PATTERN.
expect_error() {
    local name=$1 pattern=$2
    shift 2
    timeout 30 "$KVMLOOP" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local st=$?
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ "$st" -ne 1 ]; then
        bad "$name: status $st, expected 1"
    elif [ "$lines" -ne 1 ]; then
        bad "$name: $lines lines on stderr, expected 1: $(cat "$tmp/err")"
    elif ! grep -q -- "$pattern" "$tmp/err"; then
        bad "$name: stderr '$(cat "$tmp/err")' does not match '$pattern'"
    else
        ok
    fi
}

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
    [ ! -s "$tmp/err" ] && [ "$(ls "$tmp" | grep -c 's.json.')" -eq 0 ] &&
    ok || bad "-stats-file document"
expect_status triple-fault 2 -kernel "$GUEST/triple-fault.elf" -device "$DX"
grep -q "triple fault" "$tmp/err" && grep -q "RIP=" "$tmp/err" && ok || bad "triple fault report"
expect_status smp-hello 1 -kernel "$GUEST/smp-hello.elf" -smp 4 -device "$DX"
[ "$(grep -c 'hello from vCPU' "$tmp/out")" -eq 4 ] && ok || bad "4 vCPUs greeted"

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
