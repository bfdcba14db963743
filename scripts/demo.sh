#!/usr/bin/env bash
# The README's main job in one command: installs what is missing (scripts/setup.sh), builds, then runs `vgw demo`:
# the gateway firmware in the DeviceScript simulator, an in-process MQTT broker, the bundled candump trace replayed
# in real time, live output and a summary. Arguments go to `vgw demo` (e.g. npm run demo -- --speed 4).
# The simulator's devtools server uses fixed ports: `vgw demo` takes /tmp/vgw-devtools.lock itself (and says so when it
# has to wait), so concurrent demos and tests take turns.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# tsc emits even when it reports type errors; the demo runs on what was emitted.
npx tsc -p . >/dev/null || echo "demo: tsc reported type errors (run npx tsc -p . to see them); running what was built" >&2
[ -f dist/cli/main.js ] || { echo "demo: dist/cli/main.js is missing: the build failed" >&2; exit 1; }
exec node dist/cli/main.js demo "$@"
