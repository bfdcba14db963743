#!/bin/sh
# ISO-TP against the kernel's can-isotp module and can-utils (isotpsend, isotprecv, isotpdump), both directions, in
# one VM boot (see isotp-vm.test.ts, which prepares $R and asserts on what this script leaves there).
#   VGW=<repo root> R=<results dir> sh isotp-in-vm.sh
# Every step is bounded by `timeout`; a failing step leaves its output for the host test to report.
set -u
. "$VGW/test/support/vm-prelude.sh"
# stop PID: ends a background listener (SIGINT, as Ctrl-C) and waits for it.
stop() { kill -INT "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# The kernel's sockets need no warm-up; vgw's listeners say "listening" on stderr when they are ready.
settle() { sleep 0.3; }
T0=$(date +%s)
step() { echo "== [$(($(date +%s) - T0)) s] $*"; }

step "vgw isotp send -> kernel isotprecv (classic: the kernel grants BS 4, STmin 2 ms; a padded SF; 4095 bytes), watched by isotpdump and vgw isotp dump"
timeout 200 stdbuf -oL isotprecv -s 7E8 -d 7E0 -b 4 -m 02 -l vcan0 >"$R/k-recv-classic.txt" 2>&1 &
KR=$!
timeout 200 stdbuf -oL isotpdump -s 7E0 -d 7E8 vcan0 >"$R/isotpdump-classic.txt" 2>&1 &
KD=$!
timeout 200 vgw isotp dump -i vcan0 -s 7E0 -d 7E8 >"$R/vgw-dump-classic.txt" 2>"$R/vgw-dump-classic.err" &
VD=$!
wait_for "$R/vgw-dump-classic.err" listening 60 && settle
timeout 60 vgw isotp send -i vcan0 -s 7E0 -d 7E8 -p CC: 01 02 03 2>"$R/v-send-classic.err"; echo "rc=$?" >>"$R/v-send-classic.err"
timeout 60 vgw isotp send -i vcan0 -s 7E0 -d 7E8 -D 4095 2>>"$R/v-send-classic.err"; echo "rc=$?" >>"$R/v-send-classic.err"
sleep 0.5
stop $KR; stop $KD; stop $VD

step "kernel isotpsend -> vgw isotp recv (classic: vgw grants BS 3, STmin 0xF5 = 500 us; padded and unpadded)"
timeout 200 vgw isotp recv -i vcan0 -s 7E8 -d 7E0 -b 3 -m F5 -n 3 >"$R/v-recv-classic.txt" 2>"$R/v-recv-classic.err" &
VR=$!
timeout 200 stdbuf -oL isotpdump -s 7E0 -d 7E8 vcan0 >"$R/isotpdump-classic2.txt" 2>&1 &
KD=$!
wait_for "$R/v-recv-classic.err" listening 60 && settle
timeout 30 isotpsend -s 7E0 -d 7E8 -D 200 vcan0; echo "isotpsend rc=$?" >"$R/k-send-classic.err"
echo "11 22 33" | timeout 30 isotpsend -s 7E0 -d 7E8 -p AA: vcan0; echo "isotpsend rc=$?" >>"$R/k-send-classic.err"
timeout 30 isotpsend -s 7E0 -d 7E8 -D 1000 vcan0; echo "isotpsend rc=$?" >>"$R/k-send-classic.err"
wait $VR; echo "rc=$?" >>"$R/v-recv-classic.err"
stop $KD

step "extended addressing both ways (vgw -x 10:F1, the kernel -x F1:10); vgw pads with 0x55, the kernel checks padding length and content; 29-bit IDs"
timeout 200 stdbuf -oL isotprecv -s 7E8 -d 7E0 -x F1:10 -p :55 -P a -l vcan0 >"$R/k-recv-ext.txt" 2>&1 &
KR=$!
settle
timeout 60 vgw isotp send -i vcan0 -s 7E0 -d 7E8 -x 10:F1 -p 55: -D 100 2>"$R/v-send-ext.err"; echo "rc=$?" >>"$R/v-send-ext.err"
sleep 0.5
stop $KR
timeout 200 vgw isotp recv -i vcan0 -s 18DAF110 -d 18DA10F1 -x F1:10 -n 2 >"$R/v-recv-ext.txt" 2>"$R/v-recv-ext.err" &
VR=$!
wait_for "$R/v-recv-ext.err" listening 60 && settle
timeout 30 isotpsend -s 18DA10F1 -d 18DAF110 -x 10:F1 -D 6 vcan0; echo "isotpsend rc=$?" >"$R/k-send-ext.err"
timeout 30 isotpsend -s 18DA10F1 -d 18DAF110 -x 10:F1 -D 100 vcan0; echo "isotpsend rc=$?" >>"$R/k-send-ext.err"
wait $VR; echo "rc=$?" >>"$R/v-recv-ext.err"

step "CAN FD on vcan1 (TX_DL 64, BRS): escape SF, 12-bit and 32-bit first frames, both ways, watched by both dumps"
timeout 200 stdbuf -oL isotprecv -s 7E8 -d 7E0 -L 72:64:1 -l vcan1 >"$R/k-recv-fd.txt" 2>&1 &
KR=$!
timeout 200 stdbuf -oL isotpdump -s 7E0 -d 7E8 vcan1 >"$R/isotpdump-fd.txt" 2>&1 &
KD=$!
timeout 200 vgw isotp dump -i vcan1 -s 7E0 -d 7E8 >"$R/vgw-dump-fd.txt" 2>"$R/vgw-dump-fd.err" &
VD=$!
wait_for "$R/vgw-dump-fd.err" listening 60 && settle
for n in 60 4500; do
  timeout 60 vgw isotp send -i vcan1 -s 7E0 -d 7E8 -L 72:64:1 -D $n 2>>"$R/v-send-fd.err"; echo "rc=$?" >>"$R/v-send-fd.err"
done
sleep 0.5
stop $KR
timeout 200 vgw isotp recv -i vcan1 -s 7E8 -d 7E0 -L 72:64:1 -n 3 >"$R/v-recv-fd.txt" 2>"$R/v-recv-fd.err" &
VR=$!
wait_for "$R/v-recv-fd.err" listening 60 && settle
for n in 60 1000 4500; do
  timeout 30 isotpsend -s 7E0 -d 7E8 -L 72:64:1 -D $n vcan1; echo "isotpsend rc=$?" >>"$R/k-send-fd.err"
done
wait $VR; echo "rc=$?" >>"$R/v-recv-fd.err"
sleep 0.5
stop $KD; stop $VD

step "a malformed sequence from raw frames: vgw recv names the error and still receives the next message"
timeout 200 vgw isotp recv -i vcan0 -s 7E8 -d 7E0 -n 1 >"$R/v-recv-bad.txt" 2>"$R/v-recv-bad.err" &
VR=$!
wait_for "$R/v-recv-bad.err" listening 60 && settle
cansend vcan0 7E0#1014000102030405
sleep 0.2
cansend vcan0 7E0#2306070809101112
cansend vcan0 7E0#03AABBCC
wait $VR; echo "rc=$?" >>"$R/v-recv-bad.err"
step "done"
