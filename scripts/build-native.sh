#!/usr/bin/env bash
# Builds vgw's raw SocketCAN module (host/bus/native/can_raw.c -> build/Release/vgw_can_raw.node) with node-gyp, when
# it is missing or older than its source. Linux only (it needs <linux/can.h>); every other command runs without it.
# Node's headers: taken from the running node's own prefix when it ships them (Debian's nodejs does, /usr/include/node),
# so no download is needed; otherwise node-gyp fetches them for the running version.
set -euo pipefail
cd "$(dirname "$0")/../host/bus/native"
out=build/Release/vgw_can_raw.node
if [ -f "$out" ] && [ "$out" -nt can_raw.c ] && [ "$out" -nt binding.gyp ]; then exit 0; fi
prefix=$(dirname "$(dirname "$(node -p process.execPath)")")
args=()
[ -f "$prefix/include/node/node_api.h" ] && args+=("--nodedir=$prefix")
gyp=../../../node_modules/.bin/node-gyp
[ -x "$gyp" ] || gyp=node-gyp
echo "build-native: $gyp rebuild ${args[*]}" >&2
"$gyp" rebuild "${args[@]}" >&2
