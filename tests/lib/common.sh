# What the shell tests share; source it after setting $tmp:
#   . "$(dirname "$0")/../lib/common.sh"
# require_kvm: exit 77 (CTest SKIP) without a usable /dev/kvm, or fail under CI.
# ok / bad MESSAGE: count a passed or failed check (in $pass and $fail).
# errors: $tmp/err without kvmloop's one-line warning about hosts without VMX/SVM.

pass=0
fail=0

require_kvm() {
    if ! { exec 3<>/dev/kvm; } 2>/dev/null; then
        if [ -n "${CI:-}" ]; then
            echo "FAIL: /dev/kvm is not usable and CI needs these tests" >&2
            exit 1
        fi
        echo "SKIP: /dev/kvm is not usable" >&2
        exit 77
    fi
    exec 3>&-
}

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

HOST_WARNING="^kvmloop: warning: this host's KVM"
errors() { grep -v "$HOST_WARNING" "$tmp/err"; }
