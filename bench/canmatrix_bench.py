"""canmatrix side of bench/decode.ts, measured in the same run on the same input.

  canmatrix_bench.py decode FILE.dbc FRAMES.txt   frames: `<id> <ext 0|1> <hex>` per line; times the decode loop only
  canmatrix_bench.py load FILE.dbc...             times loading each DBC (best of 3)
Prints one JSON object on stdout.
"""
import json
import logging
import sys
import time

logging.disable(logging.CRITICAL)
import canmatrix.formats  # noqa: E402


def load(path):
    out, sys.stdout = sys.stdout, sys.stderr  # canmatrix prints load problems on stdout
    try:
        return canmatrix.formats.loadp_flat(path)
    finally:
        sys.stdout = out


def bench_decode(dbc, frames_path):
    db = load(dbc)
    # A dict lookup, as a careful user would write it: canmatrix's frame_by_id scans the frame list per call.
    by_id = {(f.arbitration_id.id, bool(f.arbitration_id.extended)): f for f in db.frames}
    frames = []
    with open(frames_path) as fh:
        for line in fh:
            i, e, h = line.split()
            frames.append((by_id.get((int(i), e == "1")), bytes.fromhex(h)))
    t0 = time.perf_counter()
    signals = 0
    for frame, data in frames:
        if frame is not None:
            signals += len(frame.decode(data))
    dt = time.perf_counter() - t0
    return {"frames": len(frames), "seconds": dt, "signals": signals}


def bench_load(paths):
    out = {}
    for p in paths:
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            load(p)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        out[p] = best
    return out


if sys.argv[1] == "decode":
    print(json.dumps(bench_decode(sys.argv[2], sys.argv[3])))
else:
    print(json.dumps(bench_load(sys.argv[2:])))
