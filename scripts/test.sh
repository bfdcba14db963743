#!/usr/bin/env bash
# The one command that runs every test: type-check + build, lint, then the mocha suites
# (unit, differential against python-can/canmatrix/can-utils, firmware in the DeviceScript VM, SocketCAN in a VM kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p .
npx eslint .
npx mocha "$@"
