"""python-can's trace readers, timed the same way bench/traces.ts times vgw's: each file read `runs` times in full,
best run reported as JSON {"file", "frames", "seconds", "fps"} per line. Run with /usr/bin/python3 (Debian's python3-can).

usage: pycan_traces.py RUNS FILE...
"""
import json
import sys
import time

import can


def read_all(path):
    n = 0
    for _ in can.LogReader(path):
        n += 1
    return n


def main():
    runs = int(sys.argv[1])
    for path in sys.argv[2:]:
        best = None
        frames = 0
        for _ in range(runs):
            t0 = time.perf_counter()
            frames = read_all(path)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        print(json.dumps({"file": path, "frames": frames, "seconds": best, "fps": frames / best}), flush=True)


main()
