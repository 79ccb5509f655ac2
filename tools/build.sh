#!/bin/bash
# Configure and build kvmloop into a build directory: tools/build.sh [DIR [CMAKE ARGS...]].
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
"$root/tools/install-deps.sh"
werror=OFF
[ -n "${CI:-}" ] && werror=ON
cmake -S "$root" -B "$dir" -DKVMLOOP_WERROR=$werror "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
