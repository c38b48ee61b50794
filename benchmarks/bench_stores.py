"""Every store side by side, through the policy users hold: ``RateLimiter.try_acquire``.

Run: ``python3 benchmarks/bench_stores.py`` (starts its own redis-server on a free port).

For each store (none, i.e. in-process; memory; file; redis) it measures decisions per second
with 1 process and with 8 processes, each process calling ``try_acquire`` on one shared
limiter for a fixed time. The limiter never refuses (the rate is far above what any store
serves), so the figure is the cost of a decision, not of the policy. ``limits``' Redis storage
(moving and fixed window ``hit``) runs in the same session as the peer. Degraded decisions
(the store did not answer within its timeout) are counted: any at all is a finding.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SECONDS = 2.0
PROCS = 8


def _seawall(url: str | None, name: str, until: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from seawall import RateLimiter
    from seawall.stores import open_store

    store = None if url is None else open_store(url, timeout=0.1)
    limiter = RateLimiter(1e9, burst=1e9, name=name, store=store)
    limiter.try_acquire()  # connect, create the files
    done, start = 0, time.time()
    while time.time() < until:
        limiter.try_acquire()
        done += 1
    out.put((done / (time.time() - start), limiter.stats.degraded_decisions))


def _limits(url: str, strategy: str, until: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    storage = RedisStorage(url)
    cls = MovingWindowRateLimiter if strategy == "moving" else FixedWindowRateLimiter
    limiter = cls(storage)
    item = parse("1000000000/second")
    limiter.hit(item, strategy)
    done, start = 0, time.time()
    while time.time() < until:
        limiter.hit(item, strategy)  # one key per strategy: they keep different types
        done += 1
    out.put((done / (time.time() - start), 0))


def measure(target: object, args: tuple[object, ...], procs: int) -> tuple[float, int]:
    """Decisions per second summed over the processes, and the degraded decisions among them.

    Each process times its own loop (after its imports and first call), and they all stop at
    the same wall-clock instant.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    until = time.time() + 1.5 + SECONDS  # time for the children to start
    workers = [ctx.Process(target=target, args=(*args, until, queue)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join()
    return sum(r[0] for r in results), sum(r[1] for r in results)


def main() -> None:
    from _redis_server import RedisServer

    server = RedisServer()
    server.start()
    tmp = tempfile.mkdtemp(prefix="seawall-bench-")
    try:
        cases = [
            ("in-process (no store)", _seawall, (None, "b")),
            ("memory://", _seawall, ("memory://", "b")),
            ("file://", _seawall, (Path(tmp, "state").as_uri(), "b")),
            ("redis://", _seawall, (server.url, "b")),
            ("limits redis, moving window", _limits, (server.url, "moving")),
            ("limits redis, fixed window", _limits, (server.url, "fixed")),
        ]
        print(f"{'store':30} {'1 process':>14} {'8 processes':>14} {'degraded':>9}")
        for label, target, args in cases:
            one, d1 = measure(target, args, 1)
            many, d8 = measure(target, args, PROCS)
            print(f"{label:30} {one:>12,.0f}/s {many:>12,.0f}/s {d1 + d8:>9}", flush=True)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
