"""The reference for `vgw decode --format jsonl` end to end (bench/decode.ts): python-can's LogReader reads the
candump log, canmatrix decodes each frame (dict lookup by ID, as bench/canmatrix_bench.py), and one JSON object per
frame goes to stdout with the keys vgw prints. Run with /usr/bin/python3.

usage: pycan_decode.py FILE.dbc TRACE.log
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)
import can  # noqa: E402
import canmatrix.formats  # noqa: E402


def main():
    dbc, trace = sys.argv[1], sys.argv[2]
    out, sys.stdout = sys.stdout, sys.stderr  # canmatrix prints load problems on stdout
    db = canmatrix.formats.loadp_flat(dbc)
    sys.stdout = out
    by_id = {(f.arbitration_id.id, bool(f.arbitration_id.extended)): f for f in db.frames}
    write = out.write
    for msg in can.LogReader(trace):
        frame = by_id.get((msg.arbitration_id, msg.is_extended_id))
        rec = {"t": msg.timestamp, "bus": msg.channel, "id": msg.arbitration_id, "ext": msg.is_extended_id}
        if frame is None:
            rec["message"] = None
            rec["signals"] = {}
        else:
            rec["message"] = frame.name
            rec["signals"] = {name: float(s.phys_value) for name, s in frame.decode(bytes(msg.data)).items()}
        write(json.dumps(rec))
        write("\n")
    out.flush()


main()
