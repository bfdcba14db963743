#!/usr/bin/env bash
# Installs what vgw's demo and tests need on a fresh machine: npm dependencies, and Debian packages when running as root
# (otherwise prints the exact command to run). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(build-essential python3-can python3-canmatrix can-utils mosquitto qemu-system-x86 busybox-static tmux cpio chromium)
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
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install" >&2
  npm install --no-audit --no-fund >&2
fi
# The raw SocketCAN module (C, node-gyp): npm install's prepare step builds it but only warns when it cannot; here a
# failure stops, because the SocketCAN tests need it.
bash scripts/build-native.sh

# DeviceScript's own modules (@devicescript/core, test, net, ...) are not npm packages: `devs build` writes them into
# firmware/node_modules. Tests that compile DeviceScript programs of their own need them before anything else builds.
if [ ! -d firmware/node_modules/@devicescript/test ]; then
  echo "setup: devs build (writes firmware/node_modules/@devicescript/*)" >&2
  (cd firmware && npx devs build src/main.ts >&2)
fi
