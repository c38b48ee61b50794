"""Why the Redis store's async methods run redis-py in a worker thread instead of coredis.

Run: ``python3 benchmarks/bench_redis_clients.py`` (starts its own redis-server).

coredis 6 is anyio-native, but its clients work only inside their ``async with`` block, shared
by the tasks started under it; a library cannot hold one open for request tasks an ASGI server
starts elsewhere. The table compares, per PING round trip on asyncio and on trio: coredis
inside its block (its best case), a coredis client opened per call (what a library could do),
and redis-py's sync client through ``anyio.to_thread.run_sync`` (what the store does).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import anyio.to_thread
import coredis
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

N = 2000


async def case_coredis_block(port: int) -> float:
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        await client.ping()
        start = time.perf_counter()
        for _ in range(N):
            await client.ping()
        return (time.perf_counter() - start) / N


async def case_coredis_per_call(port: int) -> float:
    start = time.perf_counter()
    for _ in range(N // 10):
        async with coredis.Redis(host="127.0.0.1", port=port) as client:
            await client.ping()
    return (time.perf_counter() - start) / (N // 10)


async def case_thread(port: int) -> float:
    client = redis.Redis(port=port)
    client.ping()
    start = time.perf_counter()
    for _ in range(N):
        await anyio.to_thread.run_sync(client.ping)
    return (time.perf_counter() - start) / N


def main() -> None:
    from _redis_server import RedisServer

    server = RedisServer()
    server.start()
    try:
        print(f"{'client':44} {'asyncio':>10} {'trio':>10}")
        for label, case in (
            ("coredis, inside its async-with block", case_coredis_block),
            ("coredis, one client per call", case_coredis_per_call),
            ("redis-py sync client via anyio.to_thread", case_thread),
        ):
            times = [anyio.run(case, server.port, backend=b) for b in ("asyncio", "trio")]
            print(f"{label:44} {times[0] * 1e6:>8.0f}us {times[1] * 1e6:>8.0f}us", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
