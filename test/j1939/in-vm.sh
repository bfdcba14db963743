#!/bin/sh
# The J1939 cross-checks against the kernel's can-j1939 stack, in one VM boot (see vm.test.ts, which writes the payloads
# into $R and asserts on what this script leaves there). Needs: vcan0, the can-j1939 module, can-utils (candump,
# j1939cat), node.
#   VGW=<repo root> R=<results dir> sh in-vm.sh
# Every step is bounded by `timeout`; a failing step leaves its output for the host test to report.
set -u
. "$VGW/test/support/vm-prelude.sh"
# wait_size FILE BYTES SECONDS: until FILE holds BYTES bytes (a j1939cat receiver got every message).
wait_size() {
  n=0
  while [ "$(wc -c <"$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
    n=$((n + 1)); [ $n -gt $(($3 * 10)) ] && { echo "wait_size: $1 has $(wc -c <"$1") of $2 bytes after $3 s" >&2; return 1; }
    sleep 0.1
  done
}
export VGW_LOG=debug

echo "== the kernel sends (j1939cat: BAM to FF, RTS/CTS and ETP to 0x90); candump logs; vgw dump --j1939 watches live"
# -r: the kernel sends ETP packets in bursts of up to 255; with the default socket buffer candump lost some under TCG.
timeout 120 stdbuf -oL candump -r 4194304 -L vcan0 >"$R/k.log" 2>"$R/k-candump.err" &
CD=$!
timeout 120 j1939cat -r vcan0:0x90 >"$R/k-rx.out" 2>"$R/k-rx.err" &
RX=$!
timeout 120 j1939cat -r -B vcan0:0x92 >"$R/k-bamrx.out" 2>"$R/k-bamrx.err" &
RXB=$!
# --rcvbuf: as candump above, the ETP bursts overflow the default socket buffer under TCG
timeout 120 vgw dump -i vcan0 --rcvbuf 4194304 --j1939 --format jsonl >"$R/k-dump.jsonl" 2>"$R/k-dump.err" &
DUMP=$!
wait_for "$R/k-dump.err" "listening" 60
sleep 0.5
timeout 60 j1939cat -B -i "$R/k-bam.bin" vcan0:0x80 :0xff,0x0FEEC 2>"$R/k-bam.err"; echo "k-bam rc=$?"
timeout 60 j1939cat -i "$R/k-rts.bin" vcan0:0x80 :0x90,0x12300 2>"$R/k-rts.err"; echo "k-rts rc=$?"
timeout 60 j1939cat -i "$R/k-etp.bin" vcan0:0x80 :0x90,0x12300 2>"$R/k-etp.err"; echo "k-etp rc=$?"
# j1939cat returns when the kernel has queued the message: the transfers end when the kernel's receivers have it all.
wait_size "$R/k-rx.out" $(($(wc -c <"$R/k-rts.bin") + $(wc -c <"$R/k-etp.bin"))) 60
wait_size "$R/k-bamrx.out" "$(wc -c <"$R/k-bam.bin")" 60
sleep 0.5
kill -INT $DUMP; wait $DUMP; echo "k-dump rc=$?" >>"$R/k-dump.err"
kill $CD $RX $RXB; wait $CD $RX $RXB 2>/dev/null
timeout 120 vgw decode --j1939 --format jsonl "$R/k.log" >"$R/k-decode.jsonl" 2>"$R/k-decode.err"; echo "k-decode rc=$?" >>"$R/k-decode.err"

echo "== vgw sends (vgw j1939 send: RTS/CTS and ETP to 0x90, BAM to FF); j1939cat receives; vgw record --j1939 watches"
timeout 120 j1939cat -r vcan0:0x90 >"$R/v-rts.out" 2>"$R/v-rts.err" &
RX=$!
timeout 120 j1939cat -r -B vcan0:0x91 >"$R/v-bam.out" 2>"$R/v-bam.err" &
RXB=$!
timeout 120 vgw record -i vcan0 -o "$R/v.log" --j1939 >"$R/v-record.txt" 2>"$R/v-record.err" &
REC=$!
wait_for "$R/v-record.err" "listening" 60
timeout 60 vgw j1939 send -i vcan0 --pgn 0x12300 --source 0x81 --dest 0x90 --file "$R/v-rts.bin" 2>"$R/v-send-rts.err"; echo "v-send-rts rc=$?" >>"$R/v-send-rts.err"
timeout 60 vgw j1939 send -i vcan0 --pgn 0x12300 --source 0x81 --dest 0x90 --file "$R/v-etp.bin" 2>"$R/v-send-etp.err"; echo "v-send-etp rc=$?" >>"$R/v-send-etp.err"
timeout 60 vgw j1939 send -i vcan0 --pgn 0xFEEC --source 0x81 --gap 20 --file "$R/v-bam.bin" 2>"$R/v-send-bam.err"; echo "v-send-bam rc=$?" >>"$R/v-send-bam.err"
wait_size "$R/v-rts.out" $(($(wc -c <"$R/v-rts.bin") + $(wc -c <"$R/v-etp.bin"))) 30
wait_size "$R/v-bam.out" "$(wc -c <"$R/v-bam.bin")" 30
sleep 0.5
kill -INT $REC; wait $REC; echo "v-record rc=$?" >>"$R/v-record.err"
kill $RX $RXB; wait $RX $RXB 2>/dev/null
echo "== done"
