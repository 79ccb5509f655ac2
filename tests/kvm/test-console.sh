#!/bin/bash
# The serial console as a user meets it: typed lines reach the guest, Ctrl-a x quits, the terminal comes back.
set -u
KVMLOOP=$1
GUEST=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A write to a FIFO whose reader died must fail the check, not kill the script.
trap '' PIPE

. "$(dirname "$0")/../lib/common.sh"
require_kvm

K="$GUEST/echo.elf"
DX="isa-debug-exit,iobase=0xf4,iosize=0x4"
# The echo payload's "quit" ends it with debug-exit 0: status (0 << 1) | 1.
QUIT_STATUS=1

# wait_for FILE PATTERN: true once FILE has a line matching PATTERN (30 s at most).
wait_for() {
    for _ in $(seq 300); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- Input on a pipe ---------------------------------------------------------

# Lines come back in order, more of them than the console buffers and the UART
# holds (the guest's one-byte receiver would overrun, exit 2, if input were not
# held back), and "quit" ends the guest. First from a file on stdin.
{
    echo "echo: ready"
    for i in $(seq 100); do echo "got: line $i of the console flow-control test, padded out"; done
    echo "got: quit"
} >"$tmp/expect"
{
    for i in $(seq 100); do echo "line $i of the console flow-control test, padded out"; done
    echo quit
} >"$tmp/input"
timeout 120 "$KVMLOOP" -kernel "$K" -device "$DX" <"$tmp/input" >"$tmp/out" 2>"$tmp/err"
st=$?
if [ $st -ne $QUIT_STATUS ]; then
    bad "pipe: status $st, expected $QUIT_STATUS; stderr: $(head -3 "$tmp/err")"
elif ! cmp -s "$tmp/out" "$tmp/expect"; then
    bad "pipe: echoes differ: $(diff "$tmp/expect" "$tmp/out" | head -5)"
elif [ -n "$(errors)" ]; then
    bad "pipe: unexpected stderr: $(errors | head -3)"
else
    ok
fi

# The same through a real pipe whose writer is fast and the reader slow.
cat "$tmp/input" | timeout 120 "$KVMLOOP" -kernel "$K" -device "$DX" >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq $QUIT_STATUS ] && cmp -s "$tmp/out" "$tmp/expect" && ok ||
    bad "pipe from cat: status $st: $(diff "$tmp/expect" "$tmp/out" | head -5)"

# Escapes, typed one step at a time into a FIFO: Ctrl-a Ctrl-a sends one
# Ctrl-a, Ctrl-a h prints the help, Ctrl-a x quits with status 0.
mkfifo "$tmp/fifo"
timeout 120 "$KVMLOOP" -kernel "$K" -device "$DX" <"$tmp/fifo" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 4>"$tmp/fifo"
printf 'one\n' >&4
wait_for "$tmp/out" "^got: one$" || bad "escapes: no echo of the first line"
printf 'x\001\001y\n' >&4
wait_for "$tmp/out" $'^got: x\001y$' && ok || bad "escapes: Ctrl-a Ctrl-a did not send one Ctrl-a"
printf '\001h' >&4
wait_for "$tmp/out" "quit kvmloop" && ok || bad "escapes: Ctrl-a h printed no help"
printf '\001x' >&4
wait $pid
st=$?
exec 4>&-
if [ $st -ne 0 ]; then
    bad "Ctrl-a x: status $st, expected 0; stderr: $(head -3 "$tmp/err")"
elif [ "$(errors)" != "kvmloop: terminated by Ctrl-a x" ]; then
    bad "Ctrl-a x: stderr '$(errors)'"
else
    ok
fi

# End of input does not stop the VM; SIGTERM still does.
timeout 120 "$KVMLOOP" -kernel "$K" -device "$DX" <"$tmp/fifo" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 4>"$tmp/fifo"
printf 'last\n' >&4
exec 4>&-
wait_for "$tmp/out" "^got: last$" || bad "eof: no echo of the last line"
sleep 1
if kill -0 $pid 2>/dev/null; then
    ok
else
    bad "eof: kvmloop exited when its input ended"
fi
kill -TERM $pid
wait $pid
st=$?
[ $st -eq 0 ] && grep -q "terminating on signal 15" "$tmp/err" && ok || bad "eof: SIGTERM: status $st"

# Only one port can read stdin: a second -serial stdio is a one-line error.
timeout 60 "$KVMLOOP" -kernel "$K" -device "$DX" -serial stdio -serial stdio </dev/null \
    >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq 1 ] && [ "$(errors)" = "kvmloop: serial1: stdin is already the input of serial0" ] &&
    ok || bad "two stdio ports: status $st, stderr '$(errors)'"

# ---- A terminal --------------------------------------------------------------

# pty_run FEEDER: run kvmloop as the foreground job on a fresh pty made by
# script(1), with FEEDER's output typed into it; record the terminal settings
# before and after, kvmloop's status and pid, and everything on the screen.
pty_run() {
    local q_tmp q_k q_kvmloop inner
    q_tmp=$(printf %q "$tmp")
    q_k=$(printf %q "$K")
    q_kvmloop=$(printf %q "$KVMLOOP")
    rm -f "$tmp"/pty.*
    inner="stty -g >$q_tmp/pty.before;"
    inner+=" sh -c 'echo \$\$ >\"\$0\"; exec \"\$@\"' $q_tmp/pty.pid"
    inner+=" $q_kvmloop -kernel $q_k -device $DX;"
    inner+=" echo \$? >$q_tmp/pty.status; stty -g >$q_tmp/pty.after"
    # The feeder keeps script's input open until the run is over.
    "$1" | timeout 120 script -qec "$inner" /dev/null >"$tmp/pty.out" 2>&1
}

pty_wait_ready() {
    wait_for "$tmp/pty.out" "echo: ready"
}

pty_wait_done() {
    for _ in $(seq 300); do
        [ -s "$tmp/pty.after" ] && return 0
        sleep 0.1
    done
}

# pty_check NAME STATUS: kvmloop ended with STATUS and the terminal settings
# are back as they were.
pty_check() {
    local st
    st=$(cat "$tmp/pty.status" 2>/dev/null)
    if [ "$st" != "$2" ]; then
        bad "$1: status '$st', expected $2; screen: $(head -c 300 "$tmp/pty.out" | cat -A)"
    elif [ ! -s "$tmp/pty.before" ] || ! cmp -s "$tmp/pty.before" "$tmp/pty.after"; then
        bad "$1: terminal settings not restored: $(cat "$tmp/pty.before") -> $(cat "$tmp/pty.after")"
    else
        ok
    fi
}

# Raw mode: Ctrl-C reaches the guest instead of interrupting kvmloop, Enter
# arrives as CR, nothing is echoed by the terminal.
feed_keys() {
    pty_wait_ready
    printf 'a\003b\r'
    wait_for "$tmp/pty.out" "^got: a" >/dev/null
    printf 'quit\r'
    pty_wait_done
}

feed_ctrl_a_x() {
    pty_wait_ready
    printf '\001x'
    pty_wait_done
}

feed_sigquit() {
    pty_wait_ready
    kill -QUIT "$(cat "$tmp/pty.pid")"
    pty_wait_done
}

if ! command -v script >/dev/null || ! command -v stty >/dev/null; then
    echo "note: script(1) or stty missing; terminal cases not run" >&2
else
    pty_run feed_keys
    pty_check "pty keys" $QUIT_STATUS
    screen=$(tr -d '\r' <"$tmp/pty.out" | grep -v "$HOST_WARNING")
    [ "$screen" = $'echo: ready\ngot: a\003b\ngot: quit' ] && ok ||
        bad "pty keys: screen '$(printf %s "$screen" | cat -A)'"

    pty_run feed_ctrl_a_x
    pty_check "pty Ctrl-a x" 0
    grep -q "kvmloop: terminated by Ctrl-a x" "$tmp/pty.out" && ok || bad "pty Ctrl-a x: no message"

    # A fatal signal that reaches no clean shutdown path still restores the terminal.
    pty_run feed_sigquit
    pty_check "pty SIGQUIT" 131
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
