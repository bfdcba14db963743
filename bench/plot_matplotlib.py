"""The reference for bench/plot.ts: what cantools plot does (Debian has no cantools package), built from the Python
parts Debian ships: python-can reads the candump log, canmatrix decodes the frames (a dict lookup by ID), matplotlib
(Agg, no window) draws the same signals in the same panes (one per message pattern, value-table signals as steps
with their labels on the axis) and saves the figure. Prints the phase times as JSON on stdout. Run with /usr/bin/python3.

usage: plot_matplotlib.py FILE.dbc TRACE.log OUT.png|OUT.svg MESSAGE.SIGNAL,... MESSAGE.SIGNAL,...
(each argument after OUT is one pane's comma-separated signals)
"""
import json
import logging
import sys
import time

logging.disable(logging.CRITICAL)
import can  # noqa: E402
import canmatrix.formats  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    out, sys.stdout = sys.stdout, sys.stderr  # canmatrix prints load problems on stdout
    try:
        return canmatrix.formats.loadp_flat(path)
    finally:
        sys.stdout = out


def main():
    dbc, trace, out = sys.argv[1], sys.argv[2], sys.argv[3]
    panes = [p.split(",") for p in sys.argv[4:]]
    wanted = {key for pane in panes for key in pane}
    t0 = time.perf_counter()
    db = load(dbc)
    by_id = {(f.arbitration_id.id, bool(f.arbitration_id.extended)): f for f in db.frames}
    series = {key: ([], []) for key in wanted}
    first = None
    frames = 0
    for msg in can.LogReader(trace):
        frames += 1
        if first is None:
            first = msg.timestamp
        frame = by_id.get((msg.arbitration_id, bool(msg.is_extended_id)))
        if frame is None:
            continue
        for name, value in frame.decode(bytes(msg.data)).items():
            key = frame.name + "." + name
            if key in series:
                ts, vs = series[key]
                ts.append(msg.timestamp - first)
                # Value-table signals by raw value, as vgw draws them; others physical.
                vs.append(float(value.raw_value if value.signal.values else value.phys_value))
    t1 = time.perf_counter()
    fig, axes = plt.subplots(len(panes), 1, sharex=True, figsize=(12, 2.6 * len(panes)), dpi=100, squeeze=False)
    points = 0
    for ax, pane in zip(axes[:, 0], panes):
        for key in pane:
            ts, vs = series[key]
            points += len(ts)
            message, name = key.split(".")
            signal = db.frame_by_name(message).signal_by_name(name)
            if signal.values:
                ax.step(ts, vs, where="post", label=key)
                ax.set_yticks([int(k) for k in signal.values])
                ax.set_yticklabels([f"{v} ({k})" for k, v in signal.values.items()])
            else:
                ax.plot(ts, vs, label=key + (f" [{signal.unit}]" if signal.unit else ""))
                ax.set_ylabel(signal.unit)
        ax.legend(loc="upper left")
        ax.grid(True)
    axes[-1, 0].set_xlabel("time (s) since the first frame")
    fig.tight_layout()
    fig.savefig(out)
    t2 = time.perf_counter()
    print(json.dumps({"frames": frames, "points": points, "read_decode": t1 - t0, "plot": t2 - t1}))


main()
