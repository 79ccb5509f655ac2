#!/bin/bash
# Build kvmloop and run the whole CTest suite: tools/test.sh [CTEST ARGS...], e.g. -L unit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${KVMLOOP_BUILD_DIR:-$root/build}
"$root/tools/build.sh" "$dir" ${KVMLOOP_CMAKE_ARGS:-}
cd "$dir"
ctest --output-on-failure -j"$(nproc)" "$@"
