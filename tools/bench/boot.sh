#!/bin/bash
# Boot-time benchmark: from process start to the first guest instruction (kvmloop's -stats) and
# to the kernel banner on the serial port, and the resident memory beyond guest RAM, for the
# Debian kernel through PVH (vmlinux) and, where the host has VMX/SVM, the bzImage; kvmloop
# beside QEMU with the same kernel in the same run when QEMU is installed. Median of RUNS runs.
#   tools/bench/boot.sh [RUNS]            (default 5; prints a markdown table)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
runs=${1:-5}
mem=256
"$root/tools/build.sh" "$dir" >/dev/null
"$root/tools/guest-image.sh" "$dir/guest" >/dev/null
G=$dir/guest
APPEND="console=ttyS0 earlyprintk=ttyS0 clearcpuid=smap,xsave,cx16,popcnt mitigations=off"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# rss_beyond_guest PID: resident KiB outside the largest mapping (the guest RAM).
rss_beyond_guest() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0 } /^Size:/ { size = $2 } /^Rss:/ {
            total += $2; if (size > big) { big = size; bigrss = $2 } }
         END { print total - bigrss }' "/proc/$1/smaps" 2>/dev/null || echo 0
}

# one VMM KERNEL: start, wait for the banner, note the times and memory, stop.
one() {
    local vmm=$1 kernel=$2 start pid banner=
    rm -f "$tmp/console" "$tmp/err"
    start=$(now_ms)
    if [ "$vmm" = kvmloop ]; then
        "$dir/kvmloop" -m $mem -kernel "$kernel" -append "$APPEND" -serial "file:$tmp/console" \
            -stats 2>"$tmp/err" </dev/null &
    else
        qemu-system-x86_64 -accel kvm -cpu host -m $mem -kernel "$kernel" -append "$APPEND" \
            -display none -monitor none -serial "file:$tmp/console" -no-reboot 2>"$tmp/err" \
            </dev/null &
    fi
    pid=$!
    while [ $(($(now_ms) - start)) -lt 120000 ]; do
        if grep -q "Linux version" "$tmp/console" 2>/dev/null; then
            banner=$(($(now_ms) - start))
            break
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.01
    done
    local rss
    rss=$(rss_beyond_guest $pid)
    kill -TERM $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    local entry
    entry=$(sed -n 's/^boot: first guest entry \([0-9.]*\) ms.*/\1/p' "$tmp/err")
    echo "${banner:-NA} ${entry:-NA} $rss"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else print a[int((NR + 1) / 2)] }'; }

row() {
    local vmm=$1 name=$2 kernel=$3
    : >"$tmp/rows"
    for _ in $(seq "$runs"); do one "$vmm" "$kernel" >>"$tmp/rows"; done
    printf '| %s | %s | %s | %s | %s |\n' "$vmm" "$name" \
        "$(awk '{ print $2 }' "$tmp/rows" | grep -v NA | median)" \
        "$(awk '{ print $1 }' "$tmp/rows" | grep -v NA | median)" \
        "$(awk '{ print int($3 / 1024) }' "$tmp/rows" | median)"
}

echo "boot benchmark: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $runs runs, median"
echo
echo "| VMM | kernel | first guest entry (ms) | kernel banner (ms) | RSS beyond guest RAM (MiB) |"
echo "|---|---|---|---|---|"
row kvmloop "vmlinux (PVH)" "$G/vmlinux"
command -v qemu-system-x86_64 >/dev/null && row qemu "vmlinux (PVH)" "$G/vmlinux"
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
    row kvmloop bzImage "$G/bzImage"
    command -v qemu-system-x86_64 >/dev/null && row qemu bzImage "$G/bzImage"
else
    echo
    echo "(bzImage rows left out: this host has no VMX/SVM and the kernel's decompressor runs for minutes in the instruction emulator)"
fi
