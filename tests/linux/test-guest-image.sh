#!/bin/bash
# tools/guest-image.sh end to end: builds the Linux guest into the build tree for the tests that
# boot it, checks what it holds, its cache, and its errors.
# Usage: test-guest-image.sh TOOL OUTDIR SCRIPTS_DIR
set -u
TOOL=$1
OUT=$2
SCRIPTS=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib/common.sh"
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

# expect_error NAME STATUS PATTERN ARGS...: exit STATUS, one line on stderr matching PATTERN.
expect_error() {
    local name=$1 want=$2 pattern=$3
    shift 3
    "$TOOL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local st=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ $st -ne "$want" ]; then
        bad "$name: status $st, expected $want: $(head -n3 "$tmp/err")"
    elif [ "$lines" -ne 1 ]; then
        bad "$name: $lines lines on stderr, expected 1: $(cat "$tmp/err")"
    elif ! grep -q -- "$pattern" "$tmp/err"; then
        bad "$name: stderr '$(cat "$tmp/err")' does not match '$pattern'"
    else
        ok
    fi
}

# build NAME ARGS...: run the tool; leaves its status in $st and its report in $tmp/out.
build() {
    local name=$1
    shift
    "$TOOL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    st=$?
    if [ $st -eq 3 ]; then
        if [ -n "${CI:-}" ]; then
            echo "FAIL: $name: the apt repositories cannot be reached and CI needs this test:" \
                "$(cat "$tmp/err")" >&2
            exit 1
        fi
        echo "SKIP: $name: the apt repositories cannot be reached: $(cat "$tmp/err")" >&2
        exit 77
    fi
    if [ $st -ne 0 ]; then
        bad "$name: status $st: $(cat "$tmp/err")"
        finish
    fi
    if [ "$(wc -l <"$tmp/out")" -ne 1 ] || ! grep -q " in $OUT\$" "$tmp/out"; then
        bad "$name: the report is not one line naming $OUT: $(cat "$tmp/out")"
    fi
}

# Usage errors need no network.
"$TOOL" --help >"$tmp/help" && grep -q kvmloop.script "$tmp/help" && ok || bad "--help"
expect_error unknown-option 2 "unknown option '--bogus'" --bogus
expect_error two-dirs 2 "unexpected argument 'b'" a b
expect_error scripts-no-arg 2 "needs a directory" --scripts
expect_error scripts-missing 1 "'$tmp/none' is not a directory" --scripts "$tmp/none" "$tmp/x"

# A change of the scripts is a change of the inputs: the image is rebuilt with them, and
# rebuilt again when they come back. The second of these builds leaves the image other tests use.
mkdir "$tmp/scripts"
cp "$SCRIPTS"/* "$tmp/scripts/"
printf '#!/bin/sh\necho extra\n' >"$tmp/scripts/extra"
build modified-scripts --scripts "$tmp/scripts" "$OUT"
gzip -dc "$OUT/initramfs.cpio.gz" | cpio -t --quiet >"$tmp/list-extra"
grep -qx scripts/extra "$tmp/list-extra" && ok || bad "scripts/extra missing from the initramfs"
build first --scripts "$SCRIPTS" "$OUT"
grep -q " built in " "$tmp/out" && ok || bad "changed scripts did not rebuild: $(cat "$tmp/out")"

# The files.
[ "$(od -An -c -j $((0x202)) -N4 "$OUT/bzImage" | tr -d ' ')" = HdrS ] && ok ||
    bad "bzImage has no HdrS magic"
readelf -h "$OUT/vmlinux" >"$tmp/elf" 2>&1
grep -q 'Class: *ELF64' "$tmp/elf" && grep -q 'Machine: *Advanced Micro Devices X86-64' "$tmp/elf" &&
    ok || bad "vmlinux is not an x86-64 ELF64: $(head -n3 "$tmp/elf")"
readelf -n -W "$OUT/vmlinux" 2>&1 | grep -q '^ *Xen .*(0x00000012)\|^ *Xen .*PHYS32_ENTRY' &&
    ok || bad "vmlinux has no PVH entry note"
kver=$(cat "$OUT/kernel-version")
case $kver in
[0-9]*.*-amd64) ok ;;
*) bad "kernel-version is '$kver'" ;;
esac
[ -s "$OUT/System.map" ] && ok || bad "System.map is missing"

gzip -dc "$OUT/initramfs.cpio.gz" | cpio -t --quiet >"$tmp/list" 2>"$tmp/err" && ok ||
    bad "initramfs.cpio.gz is not a gzip cpio archive: $(cat "$tmp/err")"
mdir=lib/modules/$kver
for f in init bin/busybox bin/sh dev/console "$mdir/modules.dep" "$mdir/load-order" \
    "$mdir/kernel/drivers/block/virtio_blk.ko" "$mdir/kernel/drivers/virtio/virtio_pci.ko" \
    scripts/hello; do
    grep -qx "$f" "$tmp/list" && ok || bad "$f missing from the initramfs"
done
grep -qx scripts/extra "$tmp/list" && bad "scripts/extra is still in the initramfs" || ok

mkdir "$tmp/root"
(cd "$tmp/root" && gzip -dc "$OUT/initramfs.cpio.gz" | cpio -id --quiet 2>/dev/null)
grep -q 'kvmloop-guest: up ' "$tmp/root/init" && ok || bad "/init lacks the marker"
"$tmp/root/bin/busybox" sh -n "$tmp/root/init" && ok || bad "/init is not valid busybox sh"
[ "$(od -An -c -N4 "$tmp/root/$mdir/kernel/drivers/block/virtio_blk.ko" | tr -d ' ')" = 177ELF ] &&
    ok || bad "virtio_blk.ko is not an uncompressed module"
# Each module comes after everything it depends on, and is in the archive.
awk -F': *' 'NR == FNR { pos[$0] = FNR; next }
    {
        if (!($1 in pos)) { print "not loaded: " $1; bad = 1 }
        n = split($2, d, " ")
        for (i = 1; i <= n; i++)
            if (!(d[i] in pos) || pos[d[i]] > pos[$1]) { print d[i] " after " $1; bad = 1 }
    }
    END { exit bad }' "$tmp/root/$mdir/load-order" "$tmp/root/$mdir/modules.dep" >"$tmp/order" &&
    ok || bad "load order: $(head -n1 "$tmp/order")"
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_console \
    virtio-rng virtio_net; do
    grep -q "/$m\.ko\$" "$tmp/root/$mdir/load-order" && ok || bad "$m.ko is not loaded"
done
while read -r m; do
    [ -f "$tmp/root/$mdir/$m" ] || bad "$m is in load-order but not in the archive"
done <"$tmp/root/$mdir/load-order"

# Same inputs: nothing to do, and fast.
stat -c '%n %i %Y %s' "$OUT"/* "$OUT/.stamp" >"$tmp/before"
t0=$(date +%s%N)
build second --scripts "$SCRIPTS" "$OUT"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q " up to date in " "$tmp/out" && ok || bad "second run rebuilt: $(cat "$tmp/out")"
[ "$ms" -lt 1000 ] && ok || bad "second run took $ms ms"
stat -c '%n %i %Y %s' "$OUT"/* "$OUT/.stamp" >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" && ok || bad "second run touched the outputs"

# Without a way to the packages the tool says so with its own status, which this test
# reports as a skip: apt pointed at a closed port on this machine.
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/apt/sources.list.d"
echo "deb [trusted=yes] http://127.0.0.1:9/debian bookworm main" >"$tmp/apt/sources.list"
cat >"$tmp/apt/apt.conf" <<EOF
Dir::Etc::sourcelist "$tmp/apt/sources.list";
Dir::Etc::sourceparts "$tmp/apt/sources.list.d";
Dir::State::lists "$tmp/apt/lists";
Dir::Cache "$tmp/apt/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Retries "0";
EOF
APT_CONFIG=$tmp/apt/apt.conf expect_error offline 3 "apt" "$tmp/offline"

finish
