"""The file store under load: decisions per second, lock waits, and the write-method choice.

Run: ``python3 benchmarks/bench_store_file.py [DIR]`` (about 20 s on 2 cores); the state lives in
a temporary directory under DIR (default: the system temp dir; its file system is printed).

1. Write method: the cost of persisting one ~64-byte record by writing a temp file and
   ``os.replace``-ing it onto the record (no fsync) against one in-place ``pwrite`` of a framed
   (length + CRC) record, best of several rounds, in the same directory.
2. ``FileStore.reserve`` on a limiter of 1,000/s, burst 100 (the peer figures' setting), with
   the default 100 ms lock timeout:
   * 1 process, saturated;
   * 8 processes (spawned), saturated;
   * 8 processes paced at 1,000 decisions/s in total (125/s each).
   For each: decisions/s, ``StoreUnavailableError`` count, lock-wait p99 (time spent polling a
   contended lock; 0 when it was free), and grants against the most the bucket allows.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from seawall.stores._base import LimiterSpec, StoreUnavailableError
from seawall.stores._file.files import base_name
from seawall.stores._file.records import SLOT, frame
from seawall.stores._file.store import FileStore

SPEC = LimiterSpec("bench", 0.001, 100.0)
WRITES = 3000
ROUNDS = 5
SATURATED_S = 3.0
PACED_S = 4.0
PROCS = 8


# -- 1. write method -----------------------------------------------------------------------------


def _replace_writes(directory: str, record: bytes) -> float:
    target = os.path.join(directory, "state.rec")
    start = time.perf_counter()
    for i in range(WRITES):
        tmp = f"{target}.{os.getpid()}.{i}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, record)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    return (time.perf_counter() - start) / WRITES


def _inplace_writes(directory: str, record: bytes) -> float:
    fd = os.open(os.path.join(directory, "state.tab"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(WRITES):
            os.pwrite(fd, record, 4096)
        return (time.perf_counter() - start) / WRITES
    finally:
        os.close(fd)


def write_methods(directory: str) -> tuple[float, float]:
    """Best seconds per write: (temp + replace, in-place pwrite)."""
    record = frame(SLOT, bytes(64 - 16))
    replace = min(_replace_writes(directory, record) for _ in range(ROUNDS))
    inplace = min(_inplace_writes(directory, record) for _ in range(ROUNDS))
    return replace, inplace


# -- 2. decisions -------------------------------------------------------------------------------


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def worker(path: str, start: float, seconds: float, pace: float, out: Any) -> None:
    """Reserve from the shared bucket from ``start`` for ``seconds`` at ``pace``/s (0: flat out)."""
    store = FileStore(path)
    lock = store._files.table(base_name("lim", SPEC.name)).lock
    waits: list[float] = []
    decisions = grants = unavailable = 0
    while time.time() < start:
        time.sleep(0.001)
    t0 = time.time()
    end = start + seconds
    while True:
        now = time.time()
        if now >= end:
            break
        if pace:
            due = start + decisions / pace
            if due > now:
                time.sleep(due - now)
        try:
            if store.reserve(SPEC, None, 1, 0.0).wait == 0.0:
                grants += 1
            waits.append(lock.waited)
        except StoreUnavailableError:
            unavailable += 1
        decisions += 1
    out.put((decisions, grants, unavailable, t0, time.time(), waits))


def run(path: str, procs: int, seconds: float, pace: float) -> dict[str, float]:
    """Start ``procs`` spawned workers on one bucket and sum what they report."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 1.5 + 0.25 * procs
    ps = [
        ctx.Process(target=worker, args=(path, start, seconds, pace / procs, out))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    reports = [out.get(timeout=120) for _ in ps]
    for p in ps:
        p.join()
    decisions = sum(r[0] for r in reports)
    first, last = min(r[3] for r in reports), max(r[4] for r in reports)
    waits = [w for r in reports for w in r[5]]
    return {
        "per_s": decisions / (last - first),
        "unavailable": sum(r[2] for r in reports),
        "wait_p99_ms": _p99(waits) * 1000,
        "wait_max_ms": max(waits, default=0.0) * 1000,
        "grants": sum(r[1] for r in reports),
        "allowed": SPEC.burst + (last - first) / SPEC.interval + 1,
    }


def _fs_type(path: str) -> str:
    best, fstype = "", "?"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mount = left.split()[4]
            if (path + "/").startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                best, fstype = mount, right.split()[0]
    return fstype


def main(argv: list[str]) -> int:
    where = argv[1] if len(argv) > 1 else None
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        print(f"directory: {tmp} ({_fs_type(tmp)})")
        replace, inplace = write_methods(tmp)
        print("write method (one ~64-byte record, no fsync, best of 5 x 3,000)")
        print(f"  temp file + os.replace  {replace * 1000:8.4f} ms/write")
        print(f"  in-place pwrite + CRC   {inplace * 1000:8.4f} ms/write")
        print(f"  ratio                   {replace / inplace:8.1f} x")
        print()
        rows = [
            ("1 process, saturated", run(os.path.join(tmp, "a"), 1, SATURATED_S, 0)),
            (f"{PROCS} processes, saturated", run(os.path.join(tmp, "b"), PROCS, SATURATED_S, 0)),
            (
                f"{PROCS} processes, paced 1,000/s",
                run(os.path.join(tmp, "c"), PROCS, PACED_S, 1000),
            ),
        ]
    print("FileStore.reserve, limiter 1,000/s burst 100, lock timeout 100 ms")
    print(f"{'run':30} {'decisions/s':>12} {'unavailable':>12} {'wait p99':>10} {'wait max':>10} "
          f"{'grants':>8} {'allowed':>8}")  # fmt: skip
    for label, r in rows:
        print(
            f"{label:30} {r['per_s']:12,.0f} {r['unavailable']:12,.0f} "
            f"{r['wait_p99_ms']:8.2f}ms {r['wait_max_ms']:8.2f}ms "
            f"{r['grants']:8,.0f} {r['allowed']:8,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
