"""python-can's player on its virtual bus, measured the way bench/replay.ts measures vgw: each frame's send time
(the virtual bus stamps time.time() on send) against the trace schedule, anchored at the most on-time of the first
100 frames.
Usage: /usr/bin/python3 bench/replay_pycan.py TRACE.log  -> one JSON line on stdout."""
import json
import sys
import time

import can


def main(path):
    frames = list(can.LogReader(path))
    tx = can.Bus(interface="virtual", channel="bench", receive_own_messages=False)
    rx = can.Bus(interface="virtual", channel="bench")
    started = time.perf_counter()
    for msg in can.MessageSync(frames, timestamps=True):
        tx.send(msg)
    wall = time.perf_counter() - started
    got = []
    while True:
        m = rx.recv(timeout=0)
        if m is None:
            break
        got.append(m.timestamp)
    # Anchored at the most on-time of the first 100 frames, exactly as bench/replay.ts does for vgw.
    offsets = [got[i] - frames[i].timestamp for i in range(len(got))]
    anchor = min(offsets[:100])
    late = [o - anchor for o in offsets]
    tx.shutdown()
    rx.shutdown()
    s = sorted(late)
    q = lambda p: s[min(len(s) - 1, max(0, int(p * len(s) + 0.999999) - 1))]
    print(json.dumps({"frames": len(got), "p50": q(0.5), "p99": q(0.99), "max": s[-1], "drift": late[-1],
                      "wall": wall, "late1ms": sum(1 for x in late if x > 0.001)}))


if __name__ == "__main__":
    main(sys.argv[1])
