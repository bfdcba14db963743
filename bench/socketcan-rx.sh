#!/usr/bin/env bash
# Receive throughput in a real kernel: how many frames/s `vgw record` takes without loss, beside `candump -l` in the
# same VM (QEMU TCG; see scripts/vm/). Prints one table; figures go to docs/performance.md.
#   npx tsc -p . && bash bench/socketcan-rx.sh   (about 5 minutes; N=frames per run, REPS=repetitions, BURSTS="32 64 128 192")
#   VGW_VM_SMP=2 bash bench/socketcan-rx.sh     (the VM with 2 vCPUs), TOOLS="candump vgw" to leave out the addon
set -euo pipefail
cd "$(dirname "$0")/.."
R=$(mktemp -d /tmp/vgw-bench-rx-XXXXXX)
trap 'rm -rf "$R"' EXIT
printf 'export VGW=%q R=%q N=%q REPS=%q BURSTS=%q TOOLS=%q RMEM=%q\nexec sh %q\n' "$PWD" "$R" "${N:-8000}" "${REPS:-2}" "${BURSTS:-32 64 128 192}" "${TOOLS:-candump vgw addon}" "${RMEM:-}" "$PWD/bench/socketcan-rx-vm.sh" >"$R/run.sh"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bash scripts/vm/run.sh "$R/run.sh" "$R/out.txt" 1800 || { cat "$R/out.txt" >&2; exit 1; }
echo "receive throughput in the VM kernel (vcan0, cangen bursts every 1 ms; TCG, ${VGW_VM_SMP:-1} vCPU)"
echo "host load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep '^rmem_default' "$R/out.txt" || true
# reported: the drops vgw record counted and printed (the kernel's count for its socket + its own); it should equal lost.
printf '%-8s %6s %7s %9s %7s %9s %12s\n' tool burst sent received lost reported "frames/s"
grep '^RESULT' "$R/out.txt" | sort -k3,3n -k2,2 -s | while read -r _ tool c n got secs reported; do
  rate=$(awk "BEGIN { if ($secs > 0) printf \"%.0f\", ($got - 1) / $secs; else print \"-\" }")
  printf '%-8s %6s %7s %9s %7s %9s %12s\n' "$tool" "$c" "$n" "$got" "$((n - got))" "$reported" "$rate"
done
