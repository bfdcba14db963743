#!/bin/sh
# vgw diag against `vgw diag ecu` on vcan0 in a real kernel: two processes, ISO-TP frames through the kernel's vcan.
# Also the kernel's own ISO-TP (can-isotp, can-utils' isotpsend/isotprecv) reading the VIN from the simulated ECU,
# and the PIDs-per-second benchmark against it. Run by vm.test.ts, which asserts on what this leaves in $R.
#   VGW=<repo root> R=<results dir> sh in-vm.sh
set -u
. "$VGW/test/support/vm-prelude.sh"
uptime >"$R/load.txt"

echo "== the simulated ECU on vcan0"
timeout 200 vgw diag ecu -i vcan0 --config "$R/ecu.yaml" >"$R/ecu.out" 2>"$R/ecu.err" &
ECU=$!
wait_for "$R/ecu.err" "listening" 60
timeout 60 stdbuf -oL candump -L vcan0 >"$R/candump.log" 2>&1 &
CD=$!
sleep 0.5

run() { # run NAME ARGS...: vgw diag -i vcan0 ARGS, stdout/stderr/rc into $R/NAME.*
  name=$1; shift
  timeout 60 vgw diag -i vcan0 "$@" >"$R/$name.out" 2>"$R/$name.err"; echo "$?" >"$R/$name.rc"
}
# Four processes only (each takes seconds to start under TCG); the other commands run on a virtual bus in diag-cli.test.ts.
# --timeout 3000: the ECU's first answer includes compiling its code in the emulated CPU.
run obd-read --timeout 3000 obd read 0C 0D 05 42
run obd-vin --timeout 3000 obd vin
run uds-did uds read-did F190 F1A1
run uds-dtc --json uds --session 3 read-dtc 08
kill $CD 2>/dev/null

echo "== the kernel's ISO-TP (isotprecv/isotpsend) asks the simulated ECU for the VIN"
timeout 20 isotprecv -s 7E0 -d 7E8 -p CC vcan0 >"$R/isotp-vin.txt" 2>&1 &
RECV=$!
sleep 0.5
echo "09 02" | timeout 10 isotpsend -s 7E0 -d 7E8 -p CC vcan0
wait $RECV; echo "isotprecv rc=$?" >>"$R/isotp-vin.rc"

echo "== benchmark: PIDs per second against the ECU process"
timeout 120 node dist/bench/obd.js --bus vcan0 --external --seconds 2 >"$R/bench.jsonl" 2>"$R/bench.err"; echo "bench rc=$?" >>"$R/bench.err"

kill -INT $ECU; wait $ECU; echo "ecu rc=$?" >>"$R/ecu.err"
echo "== done"
