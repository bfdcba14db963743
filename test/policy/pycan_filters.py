"""Which probe frames pass python-can's own acceptance filtering (can_filters on a virtual bus), per case.

stdin: [{"filters": [{"can_id", "can_mask", "extended"}...], "probes": [[id, ext], ...]}, ...]
stdout: per case, the indices of the probes received through the filtered bus: one JSON list of lists.
"""
import json
import sys

import can


def passed(case, n):
    channel = "policy%d" % n
    rx = can.Bus(interface="virtual", channel=channel, can_filters=case["filters"])
    tx = can.Bus(interface="virtual", channel=channel)
    got = []
    for i, (arb, ext) in enumerate(case["probes"]):
        # one probe at a time: a virtual send is queued at once, and recv(timeout=0) returns it when the filters
        # pass it, None when they do not (a refused frame ends a zero-timeout recv)
        tx.send(can.Message(arbitration_id=arb, is_extended_id=ext, data=i.to_bytes(4, "little")))
        msg = rx.recv(timeout=0)
        if msg is not None:
            got.append(int.from_bytes(msg.data, "little"))
    tx.shutdown()
    rx.shutdown()
    return sorted(got)


json.dump([passed(case, n) for n, case in enumerate(json.load(sys.stdin))], sys.stdout)
