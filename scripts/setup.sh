#!/usr/bin/env bash
# What the demo needs on a fresh machine, and nothing more: the npm dependencies (`npm ci`, exactly the lock file) and
# the firmware's DeviceScript modules. No system package: the demo runs on Node alone. The tests need more
# (scripts/setup-test.sh). Safe to run again: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
# DeviceScript's own modules (@devicescript/core, test, net, ...) are not npm packages: `devs build` writes them into
# firmware/node_modules. Tests that compile DeviceScript programs of their own need them before anything else builds.
if [ ! -d firmware/node_modules/@devicescript/test ]; then
  echo "setup: devs build (writes firmware/node_modules/@devicescript/*)" >&2
  (cd firmware && npx devs build src/main.ts >&2)
fi
