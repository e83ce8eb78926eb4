#!/usr/bin/env python3
"""Runs QMP commands (JSON objects, one per argument) on a QEMU socket and prints each result.

`--wait-migration` instead polls `query-migrate` until the migration completes (exit 0) or
fails (exit 1). Used by bench/boot.sh to save and restore warm snapshots by hand, the way
banger-vmm's qemu::snapshot does.
"""
import json
import socket
import sys
import time


def session(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())

    def call(cmd):
        f.write(json.dumps(cmd) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" not in r:
                return r

    call({"execute": "qmp_capabilities"})
    return call


def main():
    path, rest = sys.argv[1], sys.argv[2:]
    call = session(path)
    if rest == ["--wait-migration"]:
        deadline = time.time() + 60
        while time.time() < deadline:
            status = call({"execute": "query-migrate"}).get("return", {}).get("status")
            if status == "completed":
                return 0
            if status in ("failed", "cancelled"):
                return 1
            time.sleep(0.02)
        return 1
    for arg in rest:
        r = call(json.loads(arg))
        if "error" in r:
            print(r["error"], file=sys.stderr)
            return 1
    return 0


sys.exit(main())
