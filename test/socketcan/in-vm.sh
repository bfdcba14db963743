#!/bin/sh
# The SocketCAN checks that need a real kernel, batched into one VM boot (see vm.test.ts, which prepares $R and
# asserts on what this script leaves there). Needs: vcan0 (classic), vcan1 (FD, mtu 72), can-utils, tmux, node.
#   VGW=<repo root> R=<results dir> sh in-vm.sh
# Every step is bounded by `timeout`; a failing step leaves its output for the host test to report.
set -u
. "$VGW/test/support/vm-prelude.sh"
export VGW_LOG=debug
ip link add dev vcan2 type vcan   # left down on purpose: the "interface down" check

echo "== library checks"
timeout 120 node dist/test/socketcan/vm-bus-checks.js "$R/bus-checks.json"; echo "bus-checks rc=$?"

echo "== library checks of the bus over the socketcan package (VGW_SOCKETCAN=addon)"
VGW_SOCKETCAN=addon timeout 120 node dist/test/socketcan/vm-bus-checks.js "$R/bus-checks-addon.json"; echo "bus-checks-addon rc=$?"

echo "== vgw as where its SocketCAN module did not build: dump and send over the socketcan package, said once"
NO_NATIVE="--require $VGW/dist/test/socketcan/without-native.js"
NODE_OPTIONS="$NO_NATIVE" timeout 120 vgw dump -i vcan0,vcan1 -n 7 --timeout 100 >"$R/fb-dump.txt" 2>"$R/fb-dump.err" &
DUMP=$!
timeout 120 stdbuf -oL candump -n 7 vcan0 vcan1 >"$R/fb-candump.txt" 2>&1 &
CD=$!
wait_for "$R/fb-dump.err" "listening" 40 && sleep 0.5
for f in 123#DEADBEEF 12345678#11 123#R3 7FF# 0AB#01.02.03; do cansend vcan0 $f; done
cansend vcan1 1234ABCD##1$(printf 'EE%.0s' $(seq 1 64))
cansend vcan1 321##0$(printf '5A%.0s' $(seq 1 12))
wait $DUMP; echo "fb-dump rc=$?" >>"$R/fb-dump.err"
wait $CD
timeout 180 stdbuf -oL candump -L -n 4 vcan0 vcan1 >"$R/fb-send-candump.txt" 2>&1 &
CD=$!
sleep 1.5
NODE_OPTIONS="$NO_NATIVE" timeout 60 vgw send -i vcan0 123#DEADBEEF 12345678#1122 7FF#R5 2>"$R/fb-send.err"; echo "fb-send rc=$?" >>"$R/fb-send.err"
NODE_OPTIONS="$NO_NATIVE" timeout 60 vgw send -i vcan1 1ABCDEF0##1$(printf '5A%.0s' $(seq 1 16)) 2>>"$R/fb-send.err"; echo "fb-send rc=$?" >>"$R/fb-send.err"
wait $CD

echo "== cansend -> vgw dump, beside candump (text must be identical)"
timeout 120 vgw dump -i vcan0,vcan1 -n 9 --timeout 100 >"$R/dump.txt" 2>"$R/dump.err" &
DUMP=$!
timeout 120 stdbuf -oL candump -n 9 vcan0 vcan1 >"$R/candump.txt" 2>&1 &
CD=$!
wait_for "$R/dump.err" "listening" 40 && sleep 0.5
for f in 123#DEADBEEF 7FF# 123#R3 12345678#11 0AB#01.02.03 00000001#R; do cansend vcan0 $f; done
cansend vcan1 123##1001122334455667788AABBCCDD
cansend vcan1 1234ABCD##0$(printf 'EE%.0s' $(seq 1 64))
cansend vcan0 321#C0FFEE
wait $DUMP; echo "dump rc=$?" >>"$R/dump.err"
wait $CD

echo "== vgw dump with kernel filters, beside candump with the same filters"
FILTERS=123:7FF,12345678:9FFFFFFF,200~7F0
# 7 of the 8 frames pass: the inverted filter lets everything but 0x200-0x20F through.
timeout 120 vgw dump -i vcan0 --filter $FILTERS -n 7 --timeout 100 >"$R/fdump.txt" 2>"$R/fdump.err" &
DUMP=$!
timeout 120 stdbuf -oL candump -n 7 vcan0,$FILTERS >"$R/fcandump.txt" 2>&1 &
CD=$!
wait_for "$R/fdump.err" "listening" 40 && sleep 0.5
for f in 123#01 124#02 00000123#03 12345678#04 02345678#05 205#06 300#07 00000300#08; do cansend vcan0 $f; done
wait $DUMP; echo "fdump rc=$?" >>"$R/fdump.err"
wait $CD

echo "== error frames (a socket can send them on vcan) -> vgw dump, decoded and counted"
timeout 120 vgw dump -i vcan0 -n 3 --timeout 100 >"$R/edump.txt" 2>"$R/edump.err" &
DUMP=$!
wait_for "$R/edump.err" "listening" 40 && sleep 0.5
timeout 60 vgw send -i vcan0 20000044#0020000000000000 2000000C#0010000000000000 123#00 2>>"$R/edump.err"
wait $DUMP; echo "edump rc=$?" >>"$R/edump.err"

echo "== vgw send -> candump -L"
timeout 180 stdbuf -oL candump -L -n 6 vcan0 vcan1 >"$R/send-candump.txt" 2>&1 &
CD=$!
sleep 1.5
timeout 60 vgw send -i vcan0 123#DEADBEEF 12345678#1122 7FF#R5 000# 2>"$R/send.err"; echo "send rc=$?" >>"$R/send.err"
timeout 60 vgw send -i vcan1 1ABCDEF0##1$(printf '5A%.0s' $(seq 1 16)) 2>>"$R/send.err"
timeout 60 vgw send -i vcan0 --period 20 -n 1 456#AA 2>>"$R/send.err"
wait $CD

echo "== vgw record beside candump -L (same frames, same kernel timestamps)"
timeout 180 vgw record -i vcan0,vcan1 -o "$R/rec.log" -n 400 --timeout 160 2>"$R/rec.err" &
REC=$!
timeout 180 stdbuf -oL candump -L -n 400 vcan0 vcan1 >"$R/rec-candump.log" 2>&1 &
CD=$!
wait_for "$R/rec.err" "listening" 40 && sleep 0.5
timeout 60 cangen vcan0 -g 1 -n 100 -p 100
timeout 60 cangen vcan0 -g 1 -n 50 -e -p 100
timeout 60 cangen vcan0 -g 1 -n 50 -R -p 100
timeout 60 cangen vcan1 -g 1 -n 200 -f -b -p 100
wait $REC; echo "record rc=$?" >>"$R/rec.err"
wait $CD

echo "== vgw replay -> candump -L (content, order, timing)"
timeout 120 stdbuf -oL candump -L -n "$(wc -l <"$R/replay-in.log")" vcan0 >"$R/replay-candump.log" 2>&1 &
CD=$!
sleep 1.5
timeout 100 vgw replay "$R/replay-in.log" -i vcan0 --no-progress 2>"$R/replay.err"; echo "replay rc=$?" >>"$R/replay.err"
timeout 10 sh -c "while kill -0 $CD 2>/dev/null; do sleep 0.1; done"; kill $CD 2>/dev/null

echo "== canplayer -> vgw record"
timeout 120 vgw record -i vcan0 -o "$R/player-rec.log" -n "$(wc -l <"$R/player-in.log")" --timeout 100 2>"$R/player-rec.err" &
REC=$!
wait_for "$R/player-rec.err" "listening" 40 && sleep 0.5
timeout 30 canplayer -I "$R/player-in.log"
wait $REC; echo "player-rec rc=$?" >>"$R/player-rec.err"

echo "== a flood (cangen without gaps): every frame is either in vgw record's file or in its count of kernel drops"
timeout 120 vgw record -i vcan0 -o "$R/flood.log" --timeout 100 2>"$R/flood.err" &
REC=$!
wait_for "$R/flood.err" "listening" 40 && sleep 0.5
timeout 60 cangen vcan0 -g 0 -n 20000 -I i -L 8 -D i -p 100
# Every thread of the recording with its nice value (the field after the command name's closing parenthesis + 16).
for t in /proc/$(pgrep -f "node .*flood.log" | head -1)/task/*; do
  echo "$(cat "$t/comm") $(sed 's/.*) //' "$t/stat" | cut -d' ' -f17)"
done >"$R/flood-threads.txt"
sleep 2
kill -INT $REC; wait $REC; echo "flood rc=$?" >>"$R/flood.err"

echo "== the same flood with --rcvbuf 8M: the bigger socket buffer takes what the default one dropped"
timeout 120 vgw record -i vcan0 -o "$R/flood-big.log" --rcvbuf 8M --timeout 100 2>"$R/flood-big.err" &
REC=$!
wait_for "$R/flood-big.err" "listening" 40 && sleep 0.5
timeout 60 cangen vcan0 -g 0 -n 20000 -I i -L 8 -D i -p 100
sleep 2
kill -INT $REC; wait $REC; echo "flood-big rc=$?" >>"$R/flood-big.err"

echo "== vgw stats on a 10 ms cyclic frame"
timeout 120 vgw stats -i vcan0 -n 100 --timeout 100 --format json >"$R/stats.json" 2>"$R/stats.err" &
ST=$!
wait_for "$R/stats.err" "listening" 40 && sleep 0.3
timeout 30 cangen vcan0 -g 10 -n 100 -I 2A0 -L 8 -D i
wait $ST; echo "stats rc=$?" >>"$R/stats.err"

echo "== CLI errors: interface down, missing, FD on classic"
vgw dump -i vcan2 -n 1 >/dev/null 2>"$R/err-down.txt"; echo "rc=$?" >>"$R/err-down.txt"
vgw dump -i can7 -n 1 >/dev/null 2>"$R/err-missing.txt"; echo "rc=$?" >>"$R/err-missing.txt"
vgw send -i vcan0 123##1$(printf '00%.0s' $(seq 1 12)) 2>"$R/err-fd.txt"; echo "rc=$?" >>"$R/err-fd.txt"
vgw dump -i vcan0 --filter 12Z:7FF 2>"$R/err-usage.txt"; echo "rc=$?" >>"$R/err-usage.txt"

echo "== vgw monitor in tmux: keys sent, screen captured"
export TERM=xterm-256color
# tmux needs a Unix socket, which 9p cannot hold: the VM's init mounts a tmpfs on /dev/shm.
[ -d /dev/shm ] && export TMUX_TMPDIR=/dev/shm
tmux new-session -d -s mon -x 120 -y 30 "VGW_LOG=debug node $VGW/bin/vgw monitor -i vcan0 --dbc $VGW/test/fixtures/dbc/motohawk.dbc 2>$R/mon.err"
# wait_screen PATTERN SECONDS: until the monitor's screen shows PATTERN (the emulated CPU makes every step slow).
wait_screen() {
  n=0
  while ! tmux capture-pane -p -t mon 2>/dev/null | grep -q "$1"; do
    n=$((n + 1)); [ $n -gt $(($2 * 5)) ] && { echo "wait_screen: '$1' not on screen after $2 s" >&2; return 1; }
    sleep 0.2
  done
}
wait_for "$R/mon.err" "listening" 90 && wait_screen "vgw monitor" 30
cansend vcan0 1F0#A5E0000000000000
cansend vcan0 100#0102
cansend vcan0 1F0#A5E0010000000000
cansend vcan0 0AA#FF
wait_screen "4 frames" 30
tmux capture-pane -p -e -t mon >"$R/mon-1.txt"
tmux send-keys -t mon s
wait_screen "sort: name" 30
tmux capture-pane -p -t mon >"$R/mon-2.txt"
tmux send-keys -t mon f 1 F 0 Enter
wait_screen "filter: 1F0" 30 && sleep 0.5
tmux capture-pane -p -t mon >"$R/mon-3.txt"
tmux resize-window -t mon -x 70 -y 12
wait_screen "^q quit" 30
tmux capture-pane -p -t mon >"$R/mon-4.txt"
tmux send-keys -t mon p
wait_screen "PAUSED" 30
cansend vcan0 1F0#00
sleep 2
tmux capture-pane -p -t mon >"$R/mon-5.txt"
if tmux has-session -t mon 2>/dev/null; then
  tmux send-keys -t mon q
  n=0; while tmux has-session -t mon 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  if tmux has-session -t mon 2>/dev/null; then echo "monitor did not quit" >"$R/mon-exit.txt"; tmux kill-server; else echo "quit" >"$R/mon-exit.txt"; fi
else
  echo "the monitor session was gone before q was sent" >"$R/mon-exit.txt"
fi
echo "== done"
