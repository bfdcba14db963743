"""Reference writer for the differential trace tests: reads frames as JSON lines on stdin (vgw's .jsonl fields) and
writes them with python-can's writer for the file name given (python-can picks it by extension). Channels: a bus
"N" (the Vector/PEAK 1-based number vgw uses) is handed to python-can as the 0-based int N-1, which its writers
turn back into channel N. Run with /usr/bin/python3.
"""
import json
import sys

import can


def main():
    path = sys.argv[1]
    with can.Logger(path) as writer:
        for line in sys.stdin:
            o = json.loads(line)
            bus = o.get("bus")
            channel = int(bus) - 1 if bus is not None and bus.isdigit() else bus
            data = bytes.fromhex(o.get("data", ""))
            writer.on_message_received(can.Message(
                timestamp=o.get("t", 0.0),
                arbitration_id=0 if o.get("err") else o["id"],
                is_extended_id=o.get("ext", False),
                is_remote_frame=o.get("rtr", False),
                is_fd=o.get("fd", False),
                bitrate_switch=o.get("brs", False),
                error_state_indicator=o.get("esi", False),
                is_error_frame=o.get("err", False),
                dlc=o.get("dlc", 0) if o.get("rtr") else len(data),
                data=None if o.get("rtr") else data,
                channel=channel,
            ))


main()
