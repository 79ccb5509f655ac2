#!/bin/bash
# Extract the uncompressed vmlinux ELF from a bzImage and check that it can be booted through PVH.
#
# Usage: extract-vmlinux.sh BZIMAGE OUTPUT
#
# The layout is the x86 boot protocol's (Documentation/arch/x86/boot.rst): the setup header
# sits in the first sectors; setup_sects (0x1f1) counts the real-mode sectors after the boot
# sector, 0 meaning 4; the protected-mode code starts at (setup_sects + 1) * 512; payload_offset
# (0x248) and payload_length (0x24c), protocol 2.08 and later, place the compressed kernel
# relative to that start. The payload's last four bytes hold the uncompressed size: the gzip
# trailer's ISIZE, or a word the kernel build appends after the other formats.
set -euo pipefail

prog=extract-vmlinux
die() {
    echo "$prog: $*" >&2
    exit 1
}

if [ $# -ne 2 ]; then
    echo "usage: $prog BZIMAGE OUTPUT" >&2
    exit 2
fi
bz=$1
out=$2
[ -f "$bz" ] && [ -r "$bz" ] || die "cannot read '$bz'"
for t in od dd stat readelf truncate; do
    command -v "$t" >/dev/null || die "$t not found: run tools/install-deps.sh"
done

# le FILE OFFSET NBYTES: the little-endian unsigned integer at OFFSET; fails past the end.
le() {
    local b v=0 i=0
    for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do
        v=$((v | (b << (8 * i))))
        i=$((i + 1))
    done
    [ "$i" -eq "$3" ] || return 1
    echo "$v"
}

# hex FILE OFFSET NBYTES: the bytes at OFFSET as one lowercase hex string.
hex() {
    od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

size=$(stat -c %s "$bz")
[ "$size" -ge 592 ] || die "'$bz' is too small for a bzImage ($size bytes)"
[ "$(hex "$bz" 0x202 4)" = "48647253" ] || die "'$bz' has no HdrS magic at 0x202: not a bzImage"
version=$(le "$bz" 0x206 2)
if [ "$version" -lt $((0x208)) ]; then
    die "'$bz' uses boot protocol $((version >> 8)).$((version & 0xff)), older than 2.08 (no payload fields)"
fi
setup_sects=$(le "$bz" 0x1f1 1)
[ "$setup_sects" -ne 0 ] || setup_sects=4
payload_offset=$(le "$bz" 0x248 4)
payload_length=$(le "$bz" 0x24c 4)
start=$(((setup_sects + 1) * 512 + payload_offset))
if [ "$payload_length" -lt 8 ] || [ $((start + payload_length)) -gt "$size" ]; then
    die "'$bz': payload of $payload_length bytes at $start lies outside the file ($size bytes)"
fi

magic=$(hex "$bz" "$start" 6)
strip=4
case $magic in
1f8b*) name=gzip decompress=(gzip -dc) strip=0 ;;
fd377a585a00) name=xz decompress=(xz -dc) ;;
28b52ffd*) name=zstd decompress=(zstd -dcq) ;;
5d0000*) name=lzma decompress=(xz -dc --format=lzma) ;;
02214c18*) name=lz4 decompress=(lz4 -dcq) ;;
425a68*) name=bzip2 decompress=(bzip2 -dc) ;;
*) die "'$bz': unknown payload compression (magic ${magic:0:8})" ;;
esac
command -v "${decompress[0]}" >/dev/null ||
    die "${decompress[0]} not found for the $name payload: run tools/install-deps.sh"

tmp=$out.tmp.$$
trap 'rm -f "$tmp" "$tmp.err"' EXIT
if ! dd if="$bz" bs=64K iflag=skip_bytes,count_bytes skip="$start" \
    count=$((payload_length - strip)) status=none |
    "${decompress[@]}" >"$tmp" 2>"$tmp.err"; then
    die "'$bz': $name could not decompress the payload: $(head -n1 "$tmp.err")"
fi

recorded=$(le "$bz" $((start + payload_length - 4)) 4)
got=$(stat -c %s "$tmp")
if [ "$got" -ne "$recorded" ]; then
    die "'$bz': the payload decompressed to $got bytes, the bzImage records $recorded"
fi

# ELF64, little-endian, e_machine EM_X86_64 (62).
[ "$got" -ge 64 ] && [ "$(hex "$tmp" 0 6)" = "7f454c460201" ] ||
    die "'$bz': the payload is not a little-endian ELF64 file"
[ "$(le "$tmp" 0x12 2)" -eq 62 ] || die "'$bz': the payload is an ELF for another machine"

# The decompressor's relocation table follows the ELF when the kernel is built with
# RANDOMIZE_BASE; the ELF ends with its section header table or its last segment.
phoff=$(le "$tmp" 0x20 8)
shoff=$(le "$tmp" 0x28 8)
phentsize=$(le "$tmp" 0x36 2)
phnum=$(le "$tmp" 0x38 2)
shentsize=$(le "$tmp" 0x3a 2)
shnum=$(le "$tmp" 0x3c 2)
end=$((shoff + shnum * shentsize))
for ((i = 0; i < phnum; i++)); do
    ph=$((phoff + i * phentsize))
    p_offset=$(le "$tmp" $((ph + 8)) 8) && p_filesz=$(le "$tmp" $((ph + 32)) 8) ||
        die "'$bz': program header $i lies outside the ELF"
    if [ "$p_offset" -lt 0 ] || [ "$p_filesz" -lt 0 ] ||
        [ $((p_offset + p_filesz)) -gt "$got" ]; then
        die "'$bz': segment $i lies outside the ELF"
    fi
    [ $((p_offset + p_filesz)) -le "$end" ] || end=$((p_offset + p_filesz))
done
if [ "$shoff" -lt 0 ] || [ "$end" -lt 64 ] || [ "$end" -gt "$got" ]; then
    die "'$bz': the ELF headers point outside the payload"
fi
truncate -s "$end" "$tmp"

if ! notes=$(readelf -n -W "$tmp" 2>"$tmp.err") || [ -s "$tmp.err" ]; then
    die "'$bz': readelf rejects the ELF: $(head -n1 "$tmp.err")"
fi
# XEN_ELFNOTE_PHYS32_ENTRY (18): the 32-bit entry point of the PVH boot protocol.
if ! awk '$1 == "Xen" && /\(0x00000012\)|PHYS32_ENTRY/ { found = 1 } END { exit !found }' \
    <<<"$notes"; then
    die "'$bz': the kernel has no PVH entry note (Xen note type 18): built without CONFIG_PVH"
fi
mv -f "$tmp" "$out"
