"""A stalled Redis never blocks the event loop that serves requests (asyncio and trio).

A probe task sleeps 10 ms in a loop and records how late each wake-up is, while requests go
through ``ResilienceMiddleware`` whose limits, bulkhead and breaker live in a real
``redis-server`` frozen with SIGSTOP. A store call made on the loop would hold it for the
whole store timeout (0.25 s here); calls made off the loop, or skipped by the store guard's
backoff, leave the probe on time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from _redis_server import RedisServer
from seawall.asgi import ResilienceMiddleware
from seawall.stores import RedisStore

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TIMEOUT = 0.25
# A store call on the loop lags the probe by the whole TIMEOUT (0.25 s: 0.25-0.28 s seen).
# Without one, the worst lag over 20 runs of these scenarios (10 per backend) on the loaded
# 2-core test machine was 17 ms, so 0.12 s keeps a wide margin on both sides.
MAX_LAG = 0.12


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


@pytest.fixture
def paused_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A redis-server the test freezes; resumed at the end so it can be stopped."""
    yield redis_server
    redis_server.resume()


def app_on(store: RedisStore, **options: Any) -> Starlette:
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, store=store, **options)
    return app


async def lags_while(requests: int, app: Starlette) -> tuple[float, list[int]]:
    """The probe's worst lag while ``requests`` requests are served one after another."""
    lags: list[float] = []
    statuses: list[int] = []

    async def probe() -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="http://t")
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await anyio.sleep(0.02)
        for _ in range(requests):
            statuses.append((await client.get("/")).status_code)
        await anyio.sleep(0.05)  # the probe wakes (late, if the loop was held) and records
        tg.cancel_scope.cancel()
    return max(lags), statuses


async def test_a_multi_quota_limit_does_not_block_the_loop(paused_redis: RedisServer) -> None:
    """'100/second;1000/minute' in a frozen Redis: every request answers, the loop stays free."""
    store = RedisStore(paused_redis.url, timeout=TIMEOUT)
    app = app_on(store, rate_limit="100/second;1000/minute")
    _, statuses = await lags_while(1, app)  # connects and loads the scripts
    paused_redis.pause()
    lag, statuses = await lags_while(3, app)
    assert statuses == [200] * 3  # degraded="local" decides
    assert lag < MAX_LAG
    await store.aclose()


async def test_every_gate_in_a_frozen_store_leaves_the_loop_free(paused_redis: RedisServer) -> None:
    """Limits, bulkhead and breaker in a frozen Redis: the probe is never late by a timeout."""
    store = RedisStore(paused_redis.url, timeout=TIMEOUT)
    app = app_on(store, rate_limit="100/second;1000/minute", max_concurrent=4, breaker=True)
    _, statuses = await lags_while(1, app)
    paused_redis.pause()
    lag, statuses = await lags_while(3, app)
    assert statuses == [200] * 3
    assert lag < MAX_LAG
    await store.aclose()
