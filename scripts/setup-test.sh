#!/usr/bin/env bash
# What the tests need beyond the demo's setup: the Debian packages (reference tools, brokers, the Linux VM for
# SocketCAN, Chromium for the report screenshot) when running as root (otherwise it prints the exact command to run),
# and the raw SocketCAN module built strictly. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(build-essential python3-can python3-canmatrix can-utils mosquitto qemu-system-x86 busybox-static tmux cpio chromium postgresql nats-server fonts-dejavu-core python3-matplotlib)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "setup: missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
  fi
fi
bash scripts/setup.sh
# The raw SocketCAN module (C, node-gyp): npm's prepare step builds it but only warns when it cannot (the tool then
# falls back to the socketcan package); here a failure stops, because the SocketCAN tests need it.
bash scripts/build-native.sh
