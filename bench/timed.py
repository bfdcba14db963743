"""Runs a command and prints its wall time and CPU time (user + system, from the kernel's rusage of that child) as
JSON: {"wall": s, "cpu": s, "status": n}. The benchmarks time whole processes, vgw's and the reference's, this way.
stdout of the command goes to the file given with -o (or /dev/null). Run with /usr/bin/python3.

usage: timed.py [-o FILE] CMD ARG...
"""
import json
import os
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    out = os.devnull
    if args[:1] == ["-o"]:
        out, args = args[1], args[2:]
    with open(out, "wb") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(err.decode("utf8", "replace"))
    print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "status": code}))


main()
