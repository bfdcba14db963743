#!/usr/bin/env bash
# `npm run bench`: every benchmark in bench/, each printing its figures beside the reference tool measured in the same run.
# Pass names to run only some: `npm run bench -- decode traces`. Figures are recorded in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test.sh
npx tsc -p .
all=(decode traces replay gateway hil policy socketcan-rx ingest plot j1939 isotp obd obd-gateway)
want=("${@:-${all[@]}}")
for name in "${want[@]}"; do
  if [ -f "bench/$name.sh" ]; then
    # Shell benchmarks run in the SocketCAN VM (socketcan-rx: vgw record beside candump -l).
    echo "=== bench/$name ===" >&2
    bash "bench/$name.sh"
  elif [ -f "dist/bench/$name.js" ]; then
    echo "=== bench/$name ===" >&2
    node "dist/bench/$name.js"
  else
    echo "=== bench/$name: not built (dist/bench/$name.js missing) ===" >&2
    exit 1
  fi
done
