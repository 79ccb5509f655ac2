#!/bin/bash
# -qmp, -S and QMP on stdio as a user meets them: option errors, wait=on, signals, socket files.
set -u
KVMLOOP=$1
SEND=$2
GUEST=$3
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../lib/common.sh"
require_kvm

# contains NAME FILE PATTERN: FILE has a line matching the extended regex PATTERN.
contains() {
    grep -Eq -- "$3" "$2" && ok || bad "$1: no '$3' in: $(cat "$2")"
}

# wait_for FILE PATTERN: until FILE has PATTERN (10 s at most). Callers empty FILE before they
# start its writer in the background, which may not have truncated it yet.
wait_for() {
    for _ in $(seq 100); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

K="$GUEST/hello.elf"
SPIN="$GUEST/spin.elf"
DX="isa-debug-exit,iobase=0xf4,iosize=0x4"
S="$tmp/qmp.sock"

"$KVMLOOP" --help | grep -q -- "-qmp unix:PATH,server=on" && ok || bad "--help lists -qmp"

expect_error backend "unsupported backend" -kernel "$K" -qmp tcp:localhost:4444,server=on
expect_error client-mode "add server=on" -kernel "$K" -qmp "unix:$S"
expect_error wait-value "wait needs on or off, got 'maybe'" -kernel "$K" \
    -qmp "unix:$S,server=on,wait=maybe"
expect_error unknown-key "unknown option 'speed'" -kernel "$K" -qmp "unix:$S,server=on,speed=1"
expect_error same-path "already used by another -qmp" -kernel "$K" \
    -qmp "unix:$S,server=on,wait=off" -qmp "unix:$S,server,nowait"
expect_error stdio-serial "cannot use stdio by multiple character devices" -kernel "$K" \
    -qmp stdio -serial stdio
expect_error stdio-twice "cannot use stdio by multiple character devices" -kernel "$K" \
    -qmp stdio -qmp stdio
expect_error S-alone "-S: the VM would never start" -kernel "$K" -S
expect_error no-dir "cannot listen: No such file or directory" -kernel "$K" \
    -qmp "unix:$tmp/no/such/dir/q.sock,server=on,wait=off"
touch "$tmp/file"
expect_error not-a-socket "cannot listen: Address already in use" -kernel "$K" \
    -qmp "unix:$tmp/file,server=on,wait=off"
[ -f "$tmp/file" ] && ok || bad "a file that is not a socket was removed"

# QMP on stdin and stdout; the serial port is not there (default null).
mkfifo "$tmp/in"
"$KVMLOOP" -kernel "$SPIN" -smp 2 -qmp stdio <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
pid=$!
pids+=("$pid")
exec 4>"$tmp/in"
printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "query-status", "id": 1}' \
    '{"execute": "quit"}' >&4
wait "$pid"
st=$?
exec 4>&-
[ $st -eq 0 ] && ok || bad "stdio: status $st: $(cat "$tmp/err")"
contains stdio-greeting "$tmp/out" '^\{"QMP": \{"version": \{"qemu": '
contains stdio-status "$tmp/out" '^\{"return": \{"status": "running", "singlestep": false, "running": true\}, "id": 1\}'
contains stdio-shutdown "$tmp/out" '"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-qmp-quit"\}'
grep -q spinning "$tmp/out" && bad "stdio: serial output on stdout" || ok
[ "$(grep -c $'\r$' "$tmp/out")" -eq "$(wc -l <"$tmp/out")" ] && ok || bad "stdio: lines end in CRLF"

# wait=on (QEMU's default for a server): the guest runs only once a client is there (and,
# as in QEMU, at once: it may be done before the client negotiated).
: >"$tmp/err"
"$KVMLOOP" -kernel "$K" -append exit=5 -device "$DX" -serial "file:$tmp/serial" \
    -qmp "unix:$S,server=on" >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
pids+=("$pid")
wait_for "$tmp/err" "waiting for a QMP client on unix:$S" && ok || bad "wait=on: no message"
sleep 0.5
[ ! -s "$tmp/serial" ] && kill -0 "$pid" 2>/dev/null && ok || bad "wait=on: the guest ran"
echo '{"execute": "qmp_capabilities"}' | "$SEND" "$S" >"$tmp/qmp"
st=$?
wait "$pid"
kst=$?
[ $st -eq 0 ] && [ $kst -eq 11 ] && ok || bad "wait=on: qmp-send $st, kvmloop $kst"
contains wait-serial "$tmp/serial" "hello from kvmloop"
[ ! -e "$S" ] && ok || bad "wait=on: the socket file is left behind"

# A signal while waiting for the first client ends kvmloop cleanly.
: >"$tmp/err"
"$KVMLOOP" -kernel "$K" -qmp "unix:$S,server=on,wait=on" >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
pids+=("$pid")
wait_for "$tmp/err" "waiting for a QMP client" || bad "wait=on: no message"
kill -TERM "$pid"
wait "$pid"
st=$?
[ $st -eq 0 ] && [ ! -e "$S" ] && ok || bad "SIGTERM while waiting: status $st"

# SIGTERM with a client: SHUTDOWN with reason host-signal, then the end.
"$KVMLOOP" -kernel "$SPIN" -qmp "unix:$S,server=on,wait=off" >"$tmp/out" 2>"$tmp/err" \
    </dev/null &
pid=$!
pids+=("$pid")
rm -f "$tmp/in" && mkfifo "$tmp/in"
: >"$tmp/qmp"
"$SEND" "$S" <"$tmp/in" >"$tmp/qmp" &
spid=$!
pids+=("$spid")
exec 4>"$tmp/in"
echo '{"execute": "qmp_capabilities"}' >&4
wait_for "$tmp/qmp" '"return"' || bad "signal: no reply"
kill -TERM "$pid"
wait "$pid"
st=$?
wait "$spid"
sst=$?
exec 4>&-
[ $st -eq 0 ] && [ $sst -eq 0 ] && ok || bad "signal: kvmloop $st, qmp-send $sst"
contains signal-shutdown "$tmp/qmp" '"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-signal"\}'

# A socket file left by a killed run is replaced; a live server's is not.
"$KVMLOOP" -kernel "$SPIN" -qmp "unix:$S,server=on,wait=off" >/dev/null 2>&1 </dev/null &
pid=$!
pids+=("$pid")
echo '{"execute": "qmp_capabilities"}' | "$SEND" -t 2 "$S" >/dev/null 2>&1
expect_error live-server "another process is listening on this socket" -kernel "$K" \
    -qmp "unix:$S,server=on,wait=off"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
[ -S "$S" ] && ok || bad "kill -9 should leave the socket file"
"$KVMLOOP" -kernel "$SPIN" -qmp "unix:$S,server=on,wait=off" >/dev/null 2>"$tmp/err" </dev/null &
pid=$!
pids+=("$pid")
printf '%s\n' '{"execute": "qmp_capabilities"}' '{"execute": "quit"}' | "$SEND" "$S" >"$tmp/qmp"
wait "$pid"
st=$?
[ $st -eq 0 ] && ok || bad "stale socket: status $st: $(cat "$tmp/err")"
contains stale-quit "$tmp/qmp" '"reason": "host-qmp-quit"'

# The session of docs/qmp.md, as a user types it into socat.
"$KVMLOOP" -kernel "$GUEST/smp-counter.elf" -append m=100000000 -smp 2 -device testdev \
    -qmp "unix:$S,server=on,wait=off" >/dev/null 2>"$tmp/err" </dev/null &
pid=$!
pids+=("$pid")
"$SEND" "$S" >"$tmp/qmp" <<'EOF'
{ "execute": "qmp_capabilities" }
{ "execute": "query-status" }
{ "execute": "stop" }
{ "execute": "query-status" }
{ "execute": "cont" }
{ "execute": "query-cpus-fast" }
{ "execute": "x-set-lock-policy", "arguments": { "device": "testdev", "policy": "device" } }
{ "execute": "x-reset-lock-stats" }
{ "execute": "x-query-lock-stats" }
{ "execute": "system_reset" }
{ "execute": "quit" }
EOF
st=$?
wait "$pid"
kst=$?
[ $st -eq 0 ] && [ $kst -eq 0 ] && ok || bad "doc session: qmp-send $st, kvmloop $kst"
[ "$(grep -c '^{"return"' "$tmp/qmp")" -eq 11 ] && ok || bad "doc session: $(cat "$tmp/qmp")"
for ev in STOP RESUME RESET SHUTDOWN; do
    contains "doc-$ev" "$tmp/qmp" "\"event\": \"$ev\""
done
contains doc-paused "$tmp/qmp" '"status": "paused"'
contains doc-stats "$tmp/qmp" '"schema": "kvmloop-stats"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
