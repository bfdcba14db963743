"""Reference decoder for the differential tests: decodes frames with python3-canmatrix.

Usage: canmatrix_decode.py FILE.dbc < frames, one per line: `<id> <ext 0|1> <hex data>`.
Prints one JSON object per frame: {"message": name, "signals": {name: [raw, phys, label-or-phys]}} as strings,
or {"message": null} for an ID canmatrix does not know, or {"error": text}.
Frames are looked up in a dict built once (canmatrix's own frame_by_id scans the list for every frame).
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)
import canmatrix.formats  # noqa: E402


def main():
    # canmatrix prints load problems ("error with line no") on stdout, which carries our results: divert it.
    sys.stdout = sys.stderr
    db = canmatrix.formats.loadp_flat(sys.argv[1])
    sys.stdout = sys.__stdout__
    frames = {(f.arbitration_id.id, bool(f.arbitration_id.extended)): f for f in db.frames}
    out = sys.stdout
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        fid, ext = int(parts[0]), parts[1] == "1"
        data = bytes.fromhex(parts[2]) if len(parts) > 2 else b""
        frame = frames.get((fid, ext))
        if frame is None:
            out.write('{"message":null}\n')
            continue
        try:
            decoded = frame.decode(data)
            sigs = {name: [str(v.raw_value), str(v.phys_value), str(v.named_value)] for name, v in decoded.items()}
            out.write(json.dumps({"message": frame.name, "signals": sigs}) + "\n")
        except Exception as e:  # a reference failure is reported per frame, like ours
            out.write(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}) + "\n")


main()
