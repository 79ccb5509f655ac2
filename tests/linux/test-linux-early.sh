#!/bin/bash
# Early boot of the Debian kernel through PVH: everything kvmloop gives it (command line, e820,
# ACPI tables, CPUs, initrd) is accepted, and with -smp N all N CPUs come up. Runs on any KVM host,
# including hosts that emulate guest kernel code, where the boot never reaches userspace: the VM is
# stopped with SIGTERM once the last marker is seen.
#   test-linux-early.sh KVMLOOP GUEST_DIR NCPUS
set -u
KVMLOOP=$1
GUEST=$2
N=$3
MEM=256
# Hide what an emulating host's instruction emulator cannot run (harmless elsewhere).
APPEND="console=ttyS0 earlyprintk=ttyS0 clearcpuid=smap,xsave,cx16,popcnt mitigations=off kvmloop.nomodules"
LIMIT=${KVMLOOP_LINUX_TIMEOUT:-1500}

. "$(dirname "$0")/../lib/common.sh"
require_kvm
[ -r "$GUEST/vmlinux" ] && [ -r "$GUEST/initramfs.cpio.gz" ] || missing "no guest image in $GUEST"

tmp=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

start=$(date +%s%N)
"$KVMLOOP" -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.cpio.gz" -m $MEM -smp "$N" \
    -append "$APPEND" -serial "file:$tmp/console" -stats >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!

# Markers in boot order; the time to each goes to the log.
markers=(
    "Linux version"
    "Command line: $APPEND"
    "ACPI: RSDP"
    "smpboot: Allowing $N CPUs"
    "Memory:"
    "Brought up 1 node, $N CPU"
)
seen=0
while [ $seen -lt ${#markers[@]} ]; do
    if ! kill -0 $pid 2>/dev/null; then
        break
    fi
    if grep -qF -- "${markers[$seen]}" "$tmp/console" 2>/dev/null; then
        now=$(date +%s%N)
        printf 'marker %-40s at %6.1f s\n' "'${markers[$seen]}'" "$(((now - start) / 1000000))e-3"
        seen=$((seen + 1))
        continue
    fi
    if [ $(($(date +%s%N) - start)) -gt $((LIMIT * 1000000000)) ]; then
        bad "timed out after $LIMIT s waiting for '${markers[$seen]}'"
        break
    fi
    sleep 0.5
done
# A clean stop, as a user would do it.
kill -TERM $pid 2>/dev/null
wait $pid
st=$?
[ $seen -eq ${#markers[@]} ] || bad "stopped before '${markers[$seen]}' (status $st); last console lines:
$(tail -5 "$tmp/console"); stderr: $(errors | head -3)"
[ $st -eq 0 ] || bad "kvmloop exited with $st after SIGTERM, expected 0"

c="$tmp/console"
# The e820 map as kvmloop builds it for -m 256.
grep -q "BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable" "$c" || bad "e820 low RAM"
grep -q "BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved" "$c" ||
    bad "e820 reserved BIOS area"
grep -q "BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable" "$c" || bad "e820 RAM"
[ "$(grep -c 'BIOS-e820:' "$c")" -eq 3 ] || bad "e820 has $(grep -c 'BIOS-e820:' "$c") entries, expected 3"
for t in RSDP XSDT FACP DSDT FACS APIC; do
    grep -q "ACPI: $t 0x" "$c" || bad "ACPI table $t not found"
done
grep -q "ACPI BIOS Error\|ACPI Error" "$c" && bad "ACPI errors: $(grep 'ACPI.*Error' "$c" | head -2)"
# The LAPIC entries themselves are printed at debug level only; the kernel counts them here.
grep -q "ACPI: Using ACPI (MADT) for SMP configuration information" "$c" || bad "MADT not used"
grep -q "ACPI: LAPIC_NMI (acpi_id\[0xff\] dfl dfl lint\[0x1\])" "$c" || bad "LINT1 NMI entry"
grep -q "IOAPIC\[0\]: apic_id 0, version [0-9]*, address 0xfec00000, GSI 0-23" "$c" || bad "IOAPIC entry"
grep -q "ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)" "$c" || bad "IRQ0 override"
grep -q "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)" "$c" || bad "SCI override"
grep -q "RAMDISK: \[mem 0x" "$c" || bad "initrd not found"
grep -q "emulation failure" "$tmp/err" && bad "emulation failure: $(grep 'emulation failure' "$tmp/err")"

echo "console: $(wc -l <"$c") lines; furthest: $(grep -v '^$' "$c" | tail -1 | cut -c1-100)"
grep -A3 "emulation assists" "$tmp/err" || true
[ $fail -eq 0 ] && echo "PASS: -smp $N" || true
exit $((fail > 0))
