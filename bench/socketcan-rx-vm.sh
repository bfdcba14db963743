#!/bin/sh
# Runs inside the test VM (see socketcan-rx.sh): cangen sends bursts of C frames every 1 ms on vcan0, and a receiver
# takes them; candump -l alone, then vgw record alone, then the socketcan addon alone with a counting listener (the
# ceiling of any Node receiver, bench/socketcan-rx-addon.ts), for each burst size, REPS times (TCG timing varies).
# TOOLS chooses the receivers, RMEM sets the default socket receive buffer. One result line per run:
#   tool burst sent received seconds reported
# seconds: from the first to the last frame, by the kernel timestamps; reported: the frames `vgw record` says the kernel
# dropped for its socket (SO_MEMINFO) plus those it dropped itself, to check against sent - received (- for the others).
set -u
cd "$VGW" || exit 1
N=${N:-8000}
REPS=${REPS:-2}
# RMEM: the kernel's default socket receive buffer in bytes, for every socket opened after (the addon cannot set
# SO_RCVBUF itself; candump could, with -r).
[ -n "${RMEM:-}" ] && echo "$RMEM" >/proc/sys/net/core/rmem_default && echo "rmem_default $(cat /proc/sys/net/core/rmem_default)"
for rep in $(seq 1 "$REPS"); do
for C in ${BURSTS:-1 4 16 64}; do
  for tool in ${TOOLS:-candump vgw addon}; do
    rm -rf "$R/rx.log" "$R/rx.err" "$R/cd"
    if [ $tool = candump ]; then
      # candump -l: its own log file (fully buffered; -L on stdout flushes after every frame), named by the date.
      mkdir "$R/cd"
      (cd "$R/cd" && exec candump -l -n $N vcan0 2>"$R/rx.err") &
      P=$!
      sleep 1
    elif [ $tool = addon ]; then
      node dist/bench/socketcan-rx-addon.js vcan0 $N 2>"$R/rx.err" &
      P=$!
      n=0; while ! grep -q listening "$R/rx.err" 2>/dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
      sleep 0.5
    else
      VGW_LOG=debug node bin/vgw record -i vcan0 -o "$R/rx.log" -n $N --timeout 120 2>"$R/rx.err" &
      P=$!
      n=0; while ! grep -q listening "$R/rx.err" 2>/dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
      sleep 0.5
    fi
    cangen vcan0 -g 1 -c $C -n $N -I i -L 8 -D i -p 100
    # candump stops at N frames; when some were lost it would wait forever: give it 5 s after the sender is done.
    n=0; while kill -0 $P 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -INT $P 2>/dev/null; wait $P 2>/dev/null
    [ $tool = candump ] && cat "$R"/cd/candump-*.log >"$R/rx.log"
    if [ $tool = addon ]; then
      set -- $(sed -n 's/^addon: \([0-9]*\) frames, first \([0-9.]*\) last \([0-9.]*\)$/\1 \2 \3/p' "$R/rx.err")
      got=${1:-0} first=${2:-0} last=${3:-0}
    else
      got=$(grep -c . "$R/rx.log" 2>/dev/null || echo 0)
      first=$(head -1 "$R/rx.log" | sed 's/^(\([0-9.]*\)).*/\1/')
      last=$(tail -1 "$R/rx.log" | sed 's/^(\([0-9.]*\)).*/\1/')
    fi
    secs=$(awk "BEGIN { print $last - $first }")
    reported=-
    if [ $tool = vgw ]; then
      reported=$(sed -n 's/.*dropped: \([0-9]*\) by vgw.*, \([0-9]*\) by the kernel (socket buffer full).*/\1 \2/p' "$R/rx.err" | awk '{ print $1 + $2 }')
    fi
    echo "RESULT $tool $C $N $got $secs ${reported:-?}"
  done
done
done
