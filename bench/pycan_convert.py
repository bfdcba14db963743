"""python-can's end-to-end conversion, the reference for `vgw convert`: `can.LogReader(IN)` into `can.Logger(OUT)`
(both chosen by extension: LogReader/ASCReader/BLFReader and Logger/ASCWriter/BLFWriter), every message handed
to the writer as python-can's own `logconvert` does. Prints the frame count as JSON. Run with /usr/bin/python3.

usage: pycan_convert.py IN OUT
"""
import json
import sys

import can


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = 0
    with can.Logger(dst) as writer:
        for msg in can.LogReader(src):
            writer.on_message_received(msg)
            n += 1
    print(json.dumps({"frames": n}), flush=True)


main()
