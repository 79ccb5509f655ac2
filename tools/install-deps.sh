#!/bin/bash
# Install the Debian packages kvmloop needs to build, test and run; quiet when all is there.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    libglib2.0-dev libevent-dev liburcu-dev liburing-dev libjson-glib-dev linux-libc-dev
    gdb time
    cpio gzip xz-utils zstd lz4 bzip2 binutils kmod
    gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
echo "kvmloop: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
