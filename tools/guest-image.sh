#!/bin/bash
# Build the Linux guest that kvmloop boots from Debian's kernel and busybox packages (--help).
set -euo pipefail

prog=guest-image
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
files=$here/guest-image
PATH=$PATH:/usr/sbin:/sbin # depmod

# The drivers a guest on kvmloop's virtio-pci devices needs; modules.dep adds what they use.
MODULES=(virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
    virtio_blk virtio_console virtio-rng virtio_net)
OUTPUTS=(bzImage vmlinux initramfs.cpio.gz System.map kernel-version)

usage() {
    cat <<EOF
usage: tools/guest-image.sh [--scripts DIR] [OUTDIR]

Builds a Linux guest for kvmloop from the Debian packages linux-image-amd64 (the kernel it
depends on) and busybox-static, fetched with apt-get download and never installed.

OUTDIR (default: build/guest in the source tree) receives
  bzImage            the kernel as packaged (Linux boot protocol)
  vmlinux            the uncompressed ELF inside it (PVH boot)
  initramfs.cpio.gz  busybox, the virtio modules and an /init that prints
                     "kvmloop-guest: up UPTIME s, N cpus online" and powers off
  System.map         as packaged (Debian 12 ships a placeholder there and the real
                     one in the kernel's -dbg package)
  kernel-version     the kernel release (uname -r)
and keeps the downloaded packages in OUTDIR/cache. A run whose inputs (package versions,
these tool files, the scripts) have not changed does nothing.

The kernel command line steers /init: kvmloop.script=NAME runs /scripts/NAME,
kvmloop.shell starts a shell on the console, kvmloop.nomodules loads no modules.

  --scripts DIR   copy every file of DIR into the initramfs's /scripts, for the kernel
                  command-line option kvmloop.script=NAME
  -h, --help      show this help

Exit status: 0 built or up to date, 1 error, 2 bad usage, 3 the packages cannot be had
from the apt repositories.
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 1
}
usage_error() {
    echo "$prog: $* (see --help)" >&2
    exit 2
}
unreachable() {
    echo "$prog: $*" >&2
    exit 3
}

out=
scripts=
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --scripts)
        [ $# -ge 2 ] || usage_error "--scripts needs a directory"
        scripts=$2
        shift 2
        ;;
    --scripts=*)
        scripts=${1#*=}
        shift
        ;;
    --)
        shift
        break
        ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$out" ] || usage_error "unexpected argument '$1'"
        out=$1
        shift
        ;;
    esac
done
if [ $# -gt 0 ]; then
    [ -z "$out" ] && [ $# -eq 1 ] || usage_error "unexpected argument '${*: -1}'"
    out=$1
fi
out=${out:-$root/build/guest}
[ -n "$out" ] || usage_error "empty output directory"

for t in apt-get apt-cache apt-config dpkg-deb depmod cpio gzip sha256sum flock; do
    command -v "$t" >/dev/null || die "$t not found: run tools/install-deps.sh"
done

script_files=()
if [ -n "$scripts" ]; then
    [ -d "$scripts" ] || die "--scripts: '$scripts' is not a directory"
    while IFS= read -r -d '' f; do
        [ -f "$f" ] && [ -r "$f" ] || die "--scripts: '$f' is not a readable regular file"
        script_files+=("$f")
    done < <(find "$scripts" -mindepth 1 -maxdepth 1 -print0 | LC_ALL=C sort -z)
fi

mkdir -p "$out" 2>/dev/null || die "cannot create the output directory '$out'"
out=$(cd "$out" && pwd)
cache=$out/cache
mkdir -p "$cache"

# One run at a time per output directory; a second one waits and then finds the cache.
exec 9>"$out/.lock"
flock 9
rm -rf "$out"/.build.* # left by a run that was killed

# ---- What the image is made of ------------------------------------------------------------

# The tool's own files and the scripts, by content.
tool_hash=$(cd "$here" && sha256sum guest-image.sh guest-image/* | sha256sum | cut -c1-16)
scripts_hash=none
if [ ${#script_files[@]} -gt 0 ]; then
    scripts_hash=$(for f in "${script_files[@]}"; do
        printf '%s ' "${f##*/}"
        sha256sum <"$f"
    done | sha256sum | cut -c1-16)
fi

# apt's view of the repositories changes only with these files; while they stay the same, so
# do the package versions, and asking apt (seconds) can be skipped.
apt_state() {
    local lists etc status
    eval "$(apt-config shell lists Dir::State::lists/d etc Dir::Etc/d status Dir::State::status/f)"
    { find "$lists" "$etc" "$status" -maxdepth 2 -type f -printf '%p %s %T@\n' 2>/dev/null ||
        true; } | LC_ALL=C sort | sha256sum | cut -c1-16
}

outputs_present() {
    local f
    for f in "${OUTPUTS[@]}"; do
        [ -s "$out/$f" ] || return 1
    done
}

# report STATE: the one line that says where the guest is.
report() {
    echo "$prog: Linux $(cat "$out/kernel-version") guest $1 in $out"
}

apt_opts=(-qq)
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)

# resolve: the candidate versions of the packages, into kernel_package, kernel_version and
# busybox_version; empty where apt has no candidate.
resolve() {
    local text depends
    text=$(apt-cache show --no-all-versions linux-image-amd64 busybox-static 2>/dev/null) || true
    depends=$(awk '/^Package: / { p = $2 }
        p == "linux-image-amd64" && sub(/^Depends: /, "") { print; exit }' <<<"$text")
    busybox_version=$(awk '/^Package: / { p = $2 }
        p == "busybox-static" && /^Version: / { print $2; exit }' <<<"$text")
    [ -n "$depends" ] || return 0
    # The first linux-image-ABI-FLAVOUR package, usually pinned to one version: "(= 6.1.x-y)".
    depends=$(tr ',|' '\n\n' <<<"$depends" | grep -m1 '^ *linux-image-[0-9]' || true)
    [ -n "$depends" ] || die "linux-image-amd64 depends on no linux-image-ABI-amd64 package"
    kernel_package=$(awk '{ print $1 }' <<<"$depends")
    kernel_version=$(sed -n 's/.*(= *\([^ )]*\)).*/\1/p' <<<"$depends")
    if [ -z "$kernel_version" ]; then
        text=$(apt-cache show --no-all-versions "$kernel_package" 2>/dev/null) || true
        kernel_version=$(sed -n '/^Version: /{s///p;q}' <<<"$text")
    fi
}

# .stamp holds the inputs of the outputs in place, one per line, the state of apt first.
scripts_inputs="tool=$tool_hash scripts=$scripts_hash"
apt_now=$(apt_state)
packages=
[ "$(sed -n 1p "$out/.stamp" 2>/dev/null)" != "apt=$apt_now" ] || packages=$(sed -n 2p "$out/.stamp")
if ! [[ $packages =~ ^kernel=[^=\ ]+=[^=\ ]+\ busybox=[^=\ ]+$ ]]; then
    kernel_package=
    kernel_version=
    busybox_version=
    resolve
    if [ -z "$kernel_version" ] || [ -z "$busybox_version" ]; then
        [ "$(id -u)" -eq 0 ] ||
            unreachable "apt has no candidate for linux-image-amd64 or busybox-static: run apt-get update as root"
        apt-get "${apt_opts[@]}" update >/dev/null 2>"$out/.apt-errors" ||
            unreachable "apt-get update failed: $(tail -n1 "$out/.apt-errors")"
        rm -f "$out/.apt-errors"
        resolve
        [ -n "$kernel_version" ] && [ -n "$busybox_version" ] ||
            unreachable "apt has no candidate for linux-image-amd64 or busybox-static after apt-get update: are the Debian repositories reachable?"
        apt_now=$(apt_state)
    fi
    packages="kernel=$kernel_package=$kernel_version busybox=$busybox_version"
fi
read -r kernel_package kernel_version busybox_version < <(
    sed 's/^kernel=\([^=]*\)=\([^ ]*\) busybox=\(.*\)$/\1 \2 \3/' <<<"$packages")

# write_stamp: record the inputs of the outputs now in place.
write_stamp() {
    printf 'apt=%s\n%s\n%s\n' "$apt_now" "$packages" "$scripts_inputs" >"$out/.stamp.new"
    mv -f "$out/.stamp.new" "$out/.stamp"
}

if outputs_present && [ "$(sed -n '2,$p' "$out/.stamp" 2>/dev/null)" = "$packages
$scripts_inputs" ]; then
    [ "$(sed -n 1p "$out/.stamp")" = "apt=$apt_now" ] || write_stamp
    report "up to date"
    exit 0
fi
rm -f "$out/.stamp"

# ---- Packages ------------------------------------------------------------------------------

# fetch PACKAGE VERSION: the path of the cached .deb, downloaded unless it is already there.
fetch() {
    local deb=$cache/${1}_${2//:/%3a}.deb dl
    if [ -f "$deb" ] && [ "$(dpkg-deb -f "$deb" Version 2>/dev/null)" = "$2" ]; then
        echo "$deb"
        return
    fi
    dl=$(mktemp -d "$cache/download.XXXXXX")
    if ! (cd "$dl" && apt-get "${apt_opts[@]}" download "$1=$2" >/dev/null 2>"$dl/errors"); then
        local why
        why=$(tail -n1 "$dl/errors")
        rm -rf "$dl"
        unreachable "apt-get download $1=$2 failed: $why"
    fi
    mv -f "$dl"/*.deb "$deb"
    rm -rf "$dl"
    echo "$deb"
}

kernel_deb=$(fetch "$kernel_package" "$kernel_version")
busybox_deb=$(fetch busybox-static "$busybox_version")

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work" "$cache"/download.*' EXIT
unpack() { # DEB DIR
    dpkg-deb -x "$1" "$2" 2>"$work/dpkg.err" || die "cannot unpack ${1##*/}: $(head -n1 "$work/dpkg.err")"
}

# ---- Kernel --------------------------------------------------------------------------------

# Everything taken from the kernel package is kept in cache/kernel, so that a change of the
# scripts or of busybox does not unpack it again: the outputs bzImage, vmlinux, System.map and
# kernel-version, and modules/, the initramfs's lib/modules.
kdir=$cache/kernel
kernel_inputs="kernel=$kernel_package=$kernel_version tool=$tool_hash"
if [ "$(cat "$kdir/.stamp" 2>/dev/null)" != "$kernel_inputs" ]; then
    rm -rf "$kdir"
    kpkg=$work/kernel
    unpack "$kernel_deb" "$kpkg"
    shopt -s nullglob
    vmlinuz=("$kpkg"/boot/vmlinuz-*)
    shopt -u nullglob
    [ ${#vmlinuz[@]} -eq 1 ] || die "$kernel_package has ${#vmlinuz[@]} boot/vmlinuz-* files, expected 1"
    release=${vmlinuz[0]##*/vmlinuz-}
    moddir=lib/modules/$release
    [ -d "$kpkg/$moddir" ] || die "$kernel_package has no $moddir"
    [ -f "$kpkg/boot/System.map-$release" ] || die "$kernel_package has no boot/System.map-$release"

    knew=$work/kernel-cache
    mkdir -p "$knew/modules/$moddir"
    cp "${vmlinuz[0]}" "$knew/bzImage"
    cp "$kpkg/boot/System.map-$release" "$knew/System.map"
    echo "$release" >"$knew/kernel-version"
    "$files/extract-vmlinux.sh" "$knew/bzImage" "$knew/vmlinux"

    # The package leaves modules.dep to its postinst; depmod writes it as an installed
    # system has it.
    depmod -b "$kpkg" "$release" 2>"$work/depmod.err" ||
        die "depmod failed for $release: $(head -n1 "$work/depmod.err")"

    # The load order, each module after what it depends on, and the modules.dep lines of
    # exactly those modules. A wanted module that the kernel has built in needs nothing.
    awk -v want="${MODULES[*]}" -v builtin_list="$kpkg/$moddir/modules.builtin" \
        -v order="$knew/modules/$moddir/load-order" -v deps="$knew/modules/$moddir/modules.dep" '
        function name(path,    n) {
            n = path
            sub(/.*\//, "", n)
            sub(/\.ko(\.[a-z]+)?$/, "", n)
            gsub(/-/, "_", n)
            return n
        }
        function visit(path,    d, i, n) {
            if (path in seen)
                return
            seen[path] = 1
            if (!(path in dep)) {
                print path " is in modules.dep only as a dependency" > "/dev/stderr"
                failed = 1
                return
            }
            n = split(dep[path], d, " ")
            for (i = n; i >= 1; i--)
                visit(d[i])
            print path > order
            print path ":" dep[path] > deps
        }
        FILENAME == builtin_list { builtin[name($0)] = 1; next }
        {
            path = $1
            sub(/:$/, "", path)
            dep[path] = ""
            for (i = 2; i <= NF; i++)
                dep[path] = dep[path] " " $i
            module[name(path)] = path
        }
        END {
            n = split(want, w, " ")
            for (i = 1; i <= n; i++) {
                m = w[i]
                gsub(/-/, "_", m)
                if (m in module)
                    visit(module[m])
                else if (!(m in builtin)) {
                    print "module " w[i] " is neither in modules.dep nor built in" > "/dev/stderr"
                    failed = 1
                }
            }
            exit failed
        }' "$kpkg/$moddir/modules.builtin" "$kpkg/$moddir/modules.dep" 2>"$work/modules.err" ||
        die "$release: $(head -n1 "$work/modules.err")"

    while read -r m; do
        case $m in
        *.ko) ;;
        *) die "$release: module $m is compressed; only plain .ko files are supported" ;;
        esac
        mkdir -p "$knew/modules/$moddir/${m%/*}"
        cp "$kpkg/$moddir/$m" "$knew/modules/$moddir/$m"
    done <"$knew/modules/$moddir/load-order"

    echo "$kernel_inputs" >"$knew/.stamp"
    rm -rf "$kpkg"
    mv "$knew" "$kdir"
fi

# ---- Initramfs -----------------------------------------------------------------------------

ird=$work/initramfs
mkdir -p "$ird"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,root,etc,mnt,var,scripts,tmp}
chmod 1777 "$ird/tmp"
cp -R "$kdir/modules/lib" "$ird/"

unpack "$busybox_deb" "$work/busybox"
busybox=$work/busybox/bin/busybox
[ -x "$busybox" ] || die "busybox-static has no bin/busybox"
cp "$busybox" "$ird/bin/busybox"
applets=$("$busybox" --list-full) || die "cannot run busybox to list its applets"
grep -qx bin/sh <<<"$applets" || die "busybox has no sh applet"

install -m 0755 "$files/init" "$ird/init"
for f in "${script_files[@]}"; do
    install -m 0755 "$f" "$ird/scripts/"
done

# newc_entry NAME MODE NLINK [RDEVMAJOR RDEVMINOR [DATA]]: one cpio newc entry (header, name,
# data), each part padded to a multiple of four bytes. Written here rather than by cpio when
# cpio would need root (mknod) or hundreds of processes (a symbolic link per applet).
newc_entry() {
    local data=${6:-}
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
        0 "$2" 0 0 "$3" 0 ${#data} 0 0 "${4:-0}" "${5:-0}" $((${#1} + 1)) 0 "$1"
    zeros $(((4 - (110 + ${#1} + 1) % 4) % 4))
    printf '%s' "$data"
    zeros $(((4 - ${#data} % 4) % 4))
}
zeros() {
    case $1 in
    1) printf '\0' ;;
    2) printf '\0\0' ;;
    3) printf '\0\0\0' ;;
    esac
}

# The archive opens with /dev/console, which the kernel opens for /init, and the applet links,
# each after its directory; the tree built above follows in the same archive.
mkdir "$work/out"
{
    newc_entry dev $((0040755)) 2
    newc_entry dev/console $((0020600)) 1 5 1
    for d in $(awk -F/ '{
            for (i = 1; i < NF; i++) {
                p = i > 1 ? p "/" $i : $i
                if (!seen[p]++)
                    print p
            }
        }' <<<"$applets"); do
        newc_entry "$d" $((0040755)) 2
    done
    while read -r a; do
        [ "$a" = bin/busybox ] || newc_entry "$a" $((0120777)) 1 0 0 /bin/busybox
    done <<<"$applets"
    (cd "$ird" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --reproducible --quiet)
} | gzip -9 -n >"$work/out/initramfs.cpio.gz"

# ---- Publish -------------------------------------------------------------------------------

for f in bzImage vmlinux System.map kernel-version; do
    cp -p "$kdir/$f" "$work/out/$f"
done
for f in "${OUTPUTS[@]}"; do
    mv -f "$work/out/$f" "$out/$f"
done
for deb in "$cache"/*.deb; do
    [ "$deb" = "$kernel_deb" ] || [ "$deb" = "$busybox_deb" ] || rm -f "$deb"
done
write_stamp
report built
