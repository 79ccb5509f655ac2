#!/bin/bash
# extract-vmlinux.sh on synthetic bzImages: every payload compression, and each malformed image
# refused with one line on stderr and no output file.
set -u
EXTRACT=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib/common.sh"

# A tiny x86-64 ELF with a PVH entry note, one without the note, and one for another machine.
elf() { # NAME WITH_NOTE
    {
        if [ "$2" = yes ]; then
            printf '.section .note.Xen, "a", @note\n.balign 4\n'
            printf '.long 4, 4, 18\n.asciz "Xen"\n.long 0x1000000\n'
        fi
        printf '.text\n.globl _start\n_start:\nhlt\n'
    } >"$tmp/$1.s"
    as --64 -o "$tmp/$1.o" "$tmp/$1.s" && ld -m elf_x86_64 -o "$tmp/$1.elf" "$tmp/$1.o"
}
elf pvh yes && elf nopvh no || {
    echo "FAIL: cannot assemble the test ELFs (binutils)" >&2
    exit 1
}
cp "$tmp/pvh.elf" "$tmp/arm.elf"
printf '\267\000' | dd of="$tmp/arm.elf" bs=1 seek=18 conv=notrunc status=none # EM_AARCH64

# byte VALUE / le32 VALUE: one byte, four little-endian bytes.
byte() {
    printf "\\$(printf %03o "$1")"
}
le32() {
    byte $(($1 & 255))
    byte $(($1 >> 8 & 255))
    byte $(($1 >> 16 & 255))
    byte $(($1 >> 24 & 255))
}

# put FILE OFFSET: write stdin into FILE at OFFSET.
put() {
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# compress FORMAT < DATA: the payload as the kernel build makes it, the size appended
# after every format but gzip, whose trailer already ends with it.
compress() {
    cat >"$tmp/raw"
    case $1 in
    gzip) gzip -9 -n -c "$tmp/raw" && return ;;
    xz) xz --check=crc32 -c "$tmp/raw" ;;
    zstd) zstd -q -19 -c "$tmp/raw" ;;
    lzma) xz --format=lzma -c "$tmp/raw" ;;
    lz4) lz4 -q -l -c "$tmp/raw" ;;
    bzip2) bzip2 -9 -c "$tmp/raw" ;;
    esac
    le32 "$(stat -c %s "$tmp/raw")"
}

# bzimage OUT PAYLOAD [SETUP_SECTS [VERSION [LENGTH_DELTA]]]: a setup header in front of PAYLOAD.
bzimage() {
    local out=$1 payload=$2 sects=${3:-1} version=${4:-$((0x020f))} delta=${5:-0}
    local real=$sects offset=48
    [ "$real" -ne 0 ] || real=4
    local start=$(((real + 1) * 512 + offset)) len
    len=$(stat -c %s "$payload")
    head -c "$start" /dev/zero >"$out"
    cat "$payload" >>"$out"
    head -c 16 /dev/zero >>"$out"
    byte "$sects" | put "$out" $((0x1f1))
    printf 'HdrS' | put "$out" $((0x202))
    { byte $((version & 255)) && byte $((version >> 8)); } | put "$out" $((0x206))
    le32 "$offset" | put "$out" $((0x248))
    le32 $((len + delta)) | put "$out" $((0x24c))
}

# The ELF is followed by bytes it does not describe, as the relocations are in a real payload.
cat "$tmp/pvh.elf" >"$tmp/payload-body"
head -c 100 /dev/urandom >>"$tmp/payload-body"

for fmt in gzip xz zstd lzma lz4 bzip2; do
    compress $fmt <"$tmp/payload-body" >"$tmp/$fmt.payload"
    bzimage "$tmp/$fmt.bz" "$tmp/$fmt.payload"
    rm -f "$tmp/out"
    if ! "$EXTRACT" "$tmp/$fmt.bz" "$tmp/out" 2>"$tmp/err"; then
        bad "$fmt: $(cat "$tmp/err")"
    elif ! cmp -s "$tmp/out" "$tmp/pvh.elf"; then
        bad "$fmt: the output is not the ELF alone"
    else
        ok
    fi
done

bzimage "$tmp/sects0.bz" "$tmp/xz.payload" 0
"$EXTRACT" "$tmp/sects0.bz" "$tmp/out" 2>"$tmp/err" && cmp -s "$tmp/out" "$tmp/pvh.elf" &&
    ok || bad "setup_sects 0 means 4: $(cat "$tmp/err")"

# expect_error NAME PATTERN BZIMAGE: status 1, one line matching PATTERN, no output file.
expect_error() {
    rm -f "$tmp/out"
    "$EXTRACT" "$3" "$tmp/out" 2>"$tmp/err"
    local st=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ $st -ne 1 ]; then
        bad "$1: status $st, expected 1"
    elif [ "$lines" -ne 1 ]; then
        bad "$1: $lines lines on stderr: $(cat "$tmp/err")"
    elif ! grep -q -- "$2" "$tmp/err"; then
        bad "$1: '$(cat "$tmp/err")' does not match '$2'"
    elif [ -e "$tmp/out" ] || ls "$tmp"/out.tmp.* >/dev/null 2>&1; then
        bad "$1: an output file was left behind"
    else
        ok
    fi
}

expect_error missing "cannot read" "$tmp/nonexistent"
head -c 300 /dev/zero >"$tmp/short.bz"
expect_error short "too small" "$tmp/short.bz"
cp "$tmp/xz.bz" "$tmp/nomagic.bz"
printf 'HdrX' | put "$tmp/nomagic.bz" $((0x202))
expect_error no-magic "no HdrS magic" "$tmp/nomagic.bz"
bzimage "$tmp/old.bz" "$tmp/xz.payload" 1 $((0x0206))
expect_error old-protocol "older than 2.08" "$tmp/old.bz"
bzimage "$tmp/long.bz" "$tmp/xz.payload" 1 $((0x020f)) 4096
expect_error payload-outside "outside the file" "$tmp/long.bz"
cp "$tmp/payload-body" "$tmp/plain.payload"
bzimage "$tmp/plain.bz" "$tmp/plain.payload"
expect_error unknown-compression "unknown payload compression" "$tmp/plain.bz"
{
    printf '\037\213\010\000'
    head -c 200 /dev/zero
} >"$tmp/corrupt.payload"
bzimage "$tmp/corrupt.bz" "$tmp/corrupt.payload"
expect_error corrupt "gzip could not decompress" "$tmp/corrupt.bz"
{
    xz --check=crc32 -c "$tmp/payload-body"
    le32 12345
} >"$tmp/badsize.payload"
bzimage "$tmp/badsize.bz" "$tmp/badsize.payload"
expect_error size-word "the bzImage records 12345" "$tmp/badsize.bz"
head -c 4096 /dev/urandom | base64 | compress zstd >"$tmp/text.payload"
bzimage "$tmp/text.bz" "$tmp/text.payload"
expect_error not-elf "not a little-endian ELF64" "$tmp/text.bz"
compress xz <"$tmp/arm.elf" >"$tmp/arm.payload"
bzimage "$tmp/arm.bz" "$tmp/arm.payload"
expect_error other-machine "another machine" "$tmp/arm.bz"
compress gzip <"$tmp/nopvh.elf" >"$tmp/nopvh.payload"
bzimage "$tmp/nopvh.bz" "$tmp/nopvh.payload"
expect_error no-pvh-note "no PVH entry note" "$tmp/nopvh.bz"
cp "$tmp/pvh.elf" "$tmp/cut.elf"
truncate -s 200 "$tmp/cut.elf"
compress gzip <"$tmp/cut.elf" >"$tmp/cut.payload"
bzimage "$tmp/cut.bz" "$tmp/cut.payload"
expect_error truncated-elf "outside" "$tmp/cut.bz"

"$EXTRACT" "$tmp/xz.bz" 2>/dev/null
[ $? -eq 2 ] && ok || bad "one argument: status should be 2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
