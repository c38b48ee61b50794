"""Per-decision latency against a stalled Redis: a frozen single server, and a real
three-master Redis Cluster whose other master is frozen (CLUSTERDOWN) or whose own master
is frozen. Ten decisions each, sync and async (asyncio, trio), with ``timeout=0.1``.

Run: ``python3 benchmarks/bench_store_stall.py`` (needs redis-server and redis-cli).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _redis_server import RedisCluster3, RedisServer
from seawall.stores import RedisStore
from seawall.stores._base import LimiterSpec
from seawall.stores._redis.keys import bucket_key

TIMEOUT = 0.1
ROUNDS = 10


def show(label: str, spent: list[float]) -> None:
    spent = sorted(spent)
    median, worst = statistics.median(spent) * 1000, spent[-1] * 1000
    print(f"{label:50s} median {median:7.1f} ms   max {worst:7.1f} ms   (n={len(spent)})")


def timed(op: Callable[[], object]) -> list[float]:
    spent = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        try:
            op()
        except Exception:  # the failure is expected: its duration is the figure
            pass
        spent.append(time.perf_counter() - started)
    return spent


async def atimed(op: Callable[[], Awaitable[object]]) -> list[float]:
    spent = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        try:
            await op()
        except Exception:
            pass
        spent.append(time.perf_counter() - started)
    return spent


def measure(label: str, url: str, name: str, freeze: Callable[[], None]) -> None:
    store = RedisStore(url, timeout=TIMEOUT)
    spec = LimiterSpec(name, 0.1, 10.0)
    store.reserve(spec, None, 1, 0.0)  # connected, script loaded
    freeze()
    show(f"{label}, sync", timed(lambda: store.reserve(spec, None, 1, 0.0)))
    for backend in ("asyncio", "trio"):

        async def run(backend: str = backend) -> None:
            show(f"{label}, {backend}", await atimed(lambda: store.areserve(spec, None, 1, 0.0)))
            await store.aclose()

        anyio.run(run, backend=backend)
    store.close()


def single() -> None:
    server = RedisServer()
    server.start()
    try:
        measure("single Redis frozen", server.url, "stall", server.pause)
    finally:
        server.resume()
        server.close()


def cluster() -> None:
    nodes = RedisCluster3()
    nodes.start()
    victim = nodes.nodes[2]
    others = [n for n in nodes.nodes if n is not victim]
    names = [f"p{i}" for i in range(100)]
    own = next(n for n in names if nodes.owner(bucket_key("seawall", n, None)) is victim)
    alive = next(n for n in names if nodes.owner(bucket_key("seawall", n, None)) is not victim)
    try:
        measure("cluster, own master frozen", nodes.url, own, victim.pause)
        victim.resume()
        nodes.wait_state("ok")

        def clusterdown() -> None:
            victim.pause()
            nodes.wait_state("fail", among=others)

        measure("cluster, CLUSTERDOWN (own master alive)", nodes.url, alive, clusterdown)
    finally:
        victim.resume()
        nodes.close()


if __name__ == "__main__":
    single()
    cluster()
