#!/usr/bin/env bash
# The one command that runs every test: type-check + build, lint, then the mocha suites
# (unit, differential against python-can/canmatrix/can-utils, firmware in the DeviceScript VM, SocketCAN in a VM kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test.sh
npx tsc -p .
npx eslint .
# The DeviceScript devtools server has fixed ports (8081-8083): the lock makes concurrent test runs and demos take turns.
exec flock /tmp/vgw-devtools.lock npx mocha "$@"
