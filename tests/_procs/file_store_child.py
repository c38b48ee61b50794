"""A process sharing a FileStore with others: driven by tests/test_store_file_procs.py.

Usage:

* ``file_store_child.py limiter DIR START SECONDS``: from wall time START, reserve one token at
  a time from the shared limiter (50/s, burst 10) for SECONDS; print a JSON line with the
  grants, the store-unavailable count, the first attempt and the last grant (wall times).
* ``file_store_child.py bulkhead DIR START SECONDS COUNTER``: hold slots of the shared bulkhead
  of 3; while holding, count holders in the flock-protected COUNTER file; print the holds and
  the highest count seen.
* ``file_store_child.py hold DIR``: hold the only slot of a bulkhead of 1, print ``held``, and
  wait for stdin to close.
* ``file_store_child.py lock PATH``: flock PATH exclusively, print ``locked``, and wait for
  stdin to close.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import sys
import time

from file_store_common import MP_LIMITER, MP_POOL, SOLO

from seawall.stores._base import StoreUnavailableError
from seawall.stores._file.store import FileStore


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def wait_until(start: float) -> None:
    while time.time() < start:
        time.sleep(0.005)


def limiter(path: str, start: float, seconds: float) -> None:
    store = FileStore(path, timeout=1.0)
    wait_until(start)
    grants = unavailable = 0
    first = time.time()
    last = first
    while time.time() < start + seconds:
        try:
            if store.reserve(MP_LIMITER, None, 1, 0.0).wait == 0.0:
                grants += 1
                last = time.time()
        except StoreUnavailableError:
            unavailable += 1
    say(json.dumps({"grants": grants, "unavailable": unavailable, "first": first, "last": last}))


def _bump(counter_fd: int, delta: int) -> int:
    fcntl.flock(counter_fd, fcntl.LOCK_EX)
    try:
        (value,) = struct.unpack("<q", os.pread(counter_fd, 8, 0).ljust(8, b"\0"))
        value += delta
        os.pwrite(counter_fd, struct.pack("<q", value), 0)
        return int(value)
    finally:
        fcntl.flock(counter_fd, fcntl.LOCK_UN)


def bulkhead(path: str, start: float, seconds: float, counter: str) -> None:
    store = FileStore(path, timeout=1.0)
    counter_fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    wait_until(start)
    holds = highest = 0
    while time.time() < start + seconds:
        hold = store.try_hold(MP_POOL)
        if hold is None:
            time.sleep(0.001)
            continue
        holds += 1
        highest = max(highest, _bump(counter_fd, +1))
        time.sleep(0.003)
        _bump(counter_fd, -1)
        hold.release()
    say(json.dumps({"holds": holds, "highest": highest}))


def hold(path: str) -> None:
    store = FileStore(path)
    held = store.try_hold(SOLO)
    say("held" if held is not None else "busy")
    sys.stdin.read()


def lock(path: str) -> None:
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    say("locked")
    sys.stdin.read()


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "limiter":
        limiter(argv[2], float(argv[3]), float(argv[4]))
    elif mode == "bulkhead":
        bulkhead(argv[2], float(argv[3]), float(argv[4]), argv[5])
    elif mode == "hold":
        hold(argv[2])
    else:
        lock(argv[2])


if __name__ == "__main__":
    main(sys.argv)
