"""Reference reader for the differential trace tests: reads each trace given on the command line with python-can
(Debian's python3-can) and prints one JSON object per message, one file after another, each file introduced by
{"file": path} and closed by {"end": count} or {"error": text}. Run with /usr/bin/python3.

ASC is read with relative_timestamp=False so times are absolute (header date, local time), as vgw reads them.
"""
import gzip
import json
import sys

import can


def reader(path):
    plain = path[:-3] if path.endswith(".gz") else path
    if plain.endswith(".asc"):
        f = gzip.open(path, "rt") if path.endswith(".gz") else path
        return can.ASCReader(f, relative_timestamp=False)
    return can.LogReader(path)


def main():
    for path in sys.argv[1:]:
        print(json.dumps({"file": path}))
        n = 0
        try:
            for m in reader(path):
                print(json.dumps({
                    "t": m.timestamp,
                    "id": m.arbitration_id,
                    "ext": m.is_extended_id,
                    "rtr": m.is_remote_frame,
                    "fd": m.is_fd,
                    "brs": m.bitrate_switch,
                    "esi": m.error_state_indicator,
                    "err": m.is_error_frame,
                    "dlc": m.dlc,
                    "data": bytes(m.data or b"").hex().upper(),
                    "channel": m.channel,
                }))
                n += 1
            print(json.dumps({"end": n}))
        except Exception as e:  # the reference failing is a result too: the test decides what it means
            print(json.dumps({"error": f"{type(e).__name__}: {e}", "after": n}))
        sys.stdout.flush()


main()
