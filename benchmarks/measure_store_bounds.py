"""The spreads behind the real-process bounds of tests/stores (issue 18): run it on the machine
whose margins you want to check, ideally while it is as loaded as CI is.

* a killed Redis: each store operation's time (refused at once, far under the 0.1 s timeout);
* a frozen Redis (SIGSTOP): the first command (0.2 s timeout) and 20 limiter decisions with
  the degraded backoff (0.1 s timeout: one store call, the rest local);
* a killed holder's 1 s Redis lease: how long after the kill its slot comes back;
* 8 processes on one shared limiter (file and Redis): grants / (burst + rate * elapsed), and
  the most holders a 3-slot bulkhead saw at once.

Run: ``python3 benchmarks/measure_store_bounds.py [ROUNDS]`` (needs redis-server).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "stores")]

from _procs.file_store_common import MP_LIMITER  # noqa: E402
from _redis_server import RedisServer  # noqa: E402
from seawall import RateLimiter  # noqa: E402
from seawall.stores._base import BulkheadSpec, LimiterSpec, StoreUnavailableError  # noqa: E402
from seawall.stores._redis.store import RedisStore  # noqa: E402

LIM = LimiterSpec("measure", 0.1, 5.0)


def spread(name: str, values: list[float], unit: float = 1.0) -> None:
    low, mid, high = min(values) / unit, statistics.median(values) / unit, max(values) / unit
    print(f"{name}: n={len(values)} min={low:.4f} median={mid:.4f} max={high:.4f}")


def timed(op: object) -> float:
    started = time.perf_counter()
    try:
        op()  # type: ignore[operator]
    except StoreUnavailableError:
        pass
    return time.perf_counter() - started


def redis_rounds(server: RedisServer, rounds: int) -> None:
    refused, connect, twenty = [], [], []
    for _ in range(rounds):
        store = RedisStore(server.url, timeout=0.1)
        store.peek(LIM, None)
        server.kill()
        refused.append(timed(lambda s=store: s.reserve(LIM, None, 1, 0.0)))
        store.close()
        server.start()
        server.pause()
        store = RedisStore(server.url, timeout=0.2)
        connect.append(timed(lambda s=store: s.peek(LIM, None)))
        server.resume()
        store.close()
        store = RedisStore(server.url, timeout=0.1)
        limiter = RateLimiter(1000, name=f"m-{uuid.uuid4().hex}", store=store)
        limiter.try_acquire()
        server.pause()
        started = time.perf_counter()
        for _ in range(20):
            limiter.try_acquire()
        twenty.append(time.perf_counter() - started)
        server.resume()
        store.close()
    spread("killed redis, one operation (s)", refused)
    spread("frozen redis, first command, timeout 0.2 (s)", connect)
    spread("frozen redis, 20 decisions with backoff, timeout 0.1 (s)", twenty)


def lease_rounds(server: RedisServer, rounds: int) -> None:
    worker = str(TESTS / "_procs" / "redis_store_worker.py")
    freed = []
    for _ in range(rounds):
        name = f"m-{uuid.uuid4().hex}"
        holder = subprocess.Popen(
            [sys.executable, worker, "hold", server.url, name, "1.0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        holder.stdout.readline()
        held_by = time.monotonic()
        holder.kill()
        holder.wait(10)
        holder.stdout.close()
        store = RedisStore(server.url, timeout=5.0)
        while store.try_hold(BulkheadSpec(name, 1, lease=1.0)) is None:
            time.sleep(0.01)
        freed.append(time.monotonic() - held_by)
        store.close()
    spread("killed holder, slot back after (s, lease 1.0)", freed)


def file_rounds(rounds: int) -> None:
    child = str(TESTS / "_procs" / "file_store_child.py")
    shares, highest = [], []
    for _ in range(rounds):
        state = tempfile.mkdtemp()
        start = str(time.time() + 2.0)
        procs = [
            subprocess.Popen(
                [sys.executable, child, "limiter", f"{state}/s", start, "2.0"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
        span = max(o["last"] for o in outs) - min(o["first"] for o in outs)
        ideal = MP_LIMITER.burst + span / MP_LIMITER.interval
        shares.append(sum(o["grants"] for o in outs) / ideal)
        start = str(time.time() + 2.0)
        procs = [
            subprocess.Popen(
                [sys.executable, child, "bulkhead", f"{state}/b", start, "1.5", f"{state}/c"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        highest.append(max(json.loads(p.communicate(timeout=60)[0])["highest"] for p in procs))
    spread("file store, 8 processes, share of burst + rate * t", shares)
    print(f"file store, 8 processes on 3 slots, most at once per round: {highest}")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    server = RedisServer()
    server.start()
    try:
        redis_rounds(server, rounds)
        lease_rounds(server, rounds)
    finally:
        server.close()
    file_rounds(rounds)


if __name__ == "__main__":
    main()
