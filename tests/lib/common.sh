# What the shell tests share; source it first, then set $KVMLOOP and $tmp before calling
# expect_error or errors:
#   . "$(dirname "$0")/../lib/common.sh"
# skip MESSAGE: stop as SKIP (exit 77, CTest's SKIP_RETURN_CODE).
# missing MESSAGE: stop as SKIP outside CI, as a failure under CI, which needs every test to run.
# require_kvm: missing, without a usable /dev/kvm.
# ok / bad MESSAGE: count a passed or failed check (in $pass and $fail).
# errors: $tmp/err without kvmloop's one-line warning about hosts without VMX/SVM.
# expect_error NAME PATTERN ARGS...: kvmloop on ARGS exits 1 with one line (errors) matching PATTERN.
# expect_error_cmd NAME PATTERN COMMAND...: the same for a command that runs kvmloop itself
#   (env VAR=... "$KVMLOOP" ..., setpriv ... "$KVMLOOP" ...).

pass=0
fail=0

skip() {
    echo "SKIP: $*" >&2
    exit 77
}

missing() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: $* (CI needs this test)" >&2
        exit 1
    fi
    skip "$@"
}

require_kvm() {
    { exec 3<>/dev/kvm; } 2>/dev/null || missing "/dev/kvm is not usable"
    exec 3>&-
}

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

HOST_WARNING="^kvmloop: warning: this host's KVM"
errors() { grep -v "$HOST_WARNING" "$tmp/err"; }

expect_error() {
    local name=$1 pattern=$2
    shift 2
    expect_error_cmd "$name" "$pattern" "$KVMLOOP" "$@"
}

expect_error_cmd() {
    local name=$1 pattern=$2
    shift 2
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local st=$? lines
    lines=$(errors | wc -l)
    if [ "$st" -ne 1 ]; then
        bad "$name: status $st, expected 1; stderr: $(cat "$tmp/err")"
    elif [ "$lines" -ne 1 ]; then
        bad "$name: $lines lines on stderr, expected 1: $(cat "$tmp/err")"
    elif ! errors | grep -q -- "$pattern"; then
        bad "$name: stderr '$(cat "$tmp/err")' does not match '$pattern'"
    else
        ok
    fi
}
