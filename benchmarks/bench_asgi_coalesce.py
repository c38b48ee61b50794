"""The Redis admission path's client CPU per request, in process, with a real redis-server.

    python3 benchmarks/bench_asgi_coalesce.py            # per-client limit
    python3 benchmarks/bench_asgi_coalesce.py full       # limit + bulkhead + breaker
    python3 benchmarks/bench_asgi_coalesce.py full prof  # and the cProfile of the last round

32 tasks send requests through ``ResilienceMiddleware(store="redis://...")`` on one asyncio
loop (a synthetic scope, no sockets but Redis's), so concurrent admissions coalesce as they
would under load. Prints the process's CPU time per request and the wall-clock rate, best of
5 rounds of 3,200 requests. Run it on two trees (``PYTHONPATH=<tree>/src``) to compare.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

FULL = "full" in sys.argv[1:]
PROFILE = "prof" in sys.argv[1:]


def _scope() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def _run(url: str) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from seawall.asgi import ResilienceMiddleware

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, world!")

    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(
        ResilienceMiddleware, rate_limit="1000000/second", store=url,
        max_concurrent=1000 if FULL else None, breaker=FULL,
    )  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def worker(n: int) -> None:
        for _ in range(n):
            await app(_scope(), receive, send)

    await asyncio.gather(*(worker(10) for _ in range(32)))  # scripts loaded, connections open
    rounds = []
    profile = cProfile.Profile()
    for _ in range(5):
        profile = cProfile.Profile()
        cpu, wall = time.process_time(), time.perf_counter()
        if PROFILE:
            profile.enable()
        await asyncio.gather(*(worker(100) for _ in range(32)))
        if PROFILE:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rounds.append((cpu / 3200 * 1e6, 3200 / wall))
    cpu_us, rate = min(rounds)
    kind = "limit + bulkhead + breaker" if FULL else "per-client limit"
    print(f"{kind}: {cpu_us:.1f} us CPU/request, {rate:.0f} req/s (best of 5)")
    if PROFILE:
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


def main() -> None:
    from _redis_server import RedisServer

    server = RedisServer()
    server.start()
    try:
        asyncio.run(_run(server.url))
    finally:
        server.close()


if __name__ == "__main__":
    main()
