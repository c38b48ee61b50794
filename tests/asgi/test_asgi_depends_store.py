"""Depends(RateLimit(..., store=...)): a FastAPI dependency whose quotas live in a real Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from _paths import APPS, SRC
from _redis_server import RedisServer
from seawall.asgi import RateLimit, RateLimited, ResilienceMiddleware, rate_limit_exceeded_handler
from seawall.stores import MemoryStore, RedisStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow


def fastapi_app(limit: RateLimit, *, middleware: bool = False) -> FastAPI:
    app = FastAPI()

    @app.post("/login", dependencies=[Depends(limit)])
    async def login() -> dict[str, str]:
        return {"ok": "yes"}

    if middleware:
        app.add_middleware(ResilienceMiddleware)
    else:
        app.add_exception_handler(RateLimited, rate_limit_exceeded_handler)
    return app


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.mark.anyio
async def test_two_apps_share_one_limit_in_redis(
    shared_redis_server: RedisServer, clock: FakeClock
) -> None:
    """3/minute kept in Redis: two apps (two workers) admit 3 calls in all, then both say 429."""
    store = RedisStore(shared_redis_server.url, time_source="client", clock=clock, timeout=2.0)
    name = f"login-{uuid.uuid4().hex}"
    one = fastapi_app(RateLimit("3/minute", name=name, store=store, clock=clock))
    two = fastapi_app(RateLimit("3/minute", name=name, store=store, clock=clock), middleware=True)
    async with client(one) as a, client(two) as b:
        codes = [(await a.post("/login")).status_code for _ in range(2)]
        codes.append((await b.post("/login")).status_code)
        refused_b, refused_a = await b.post("/login"), await a.post("/login")
    assert codes == [200, 200, 200]
    assert (refused_a.status_code, refused_b.status_code) == (429, 429)
    assert refused_b.headers["retry-after"] == "20"
    assert refused_b.headers["ratelimit-policy"] == f'"{name}";q=3;w=60'
    assert refused_b.headers["ratelimit"] == f'"{name}";r=0;t=20'
    clock.advance(20.0)
    async with client(one) as a:
        assert (await a.post("/login")).status_code == 200
    await store.aclose()


@pytest.mark.anyio
async def test_a_stalled_store_never_blocks_the_event_loop(redis_server: RedisServer) -> None:
    """With Redis frozen, other tasks keep running while the request waits; deny answers 429."""
    store = RedisStore(redis_server.url, timeout=0.2)
    app = fastapi_app(RateLimit("5/minute", name="stall", store=store, degraded="deny"))
    async with client(app) as c:
        assert (await c.post("/login")).status_code == 200
        redis_server.pause()
        ticks_during = 0
        waiting = True

        async def ticker() -> None:
            nonlocal ticks_during
            while waiting:
                ticks_during += 1
                await anyio.sleep(0.01)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                response = await c.post("/login")
                waiting = False
        finally:
            redis_server.resume()
    assert response.status_code == 429  # degraded="deny": the store never answered
    assert ticks_during > 1  # the loop ran other tasks while the store call was pending
    await store.aclose()


def test_a_store_needs_a_name() -> None:
    """The name is the key the quotas are shared under: store= without it is refused."""
    with pytest.raises(ValueError, match=r"needs name="):
        RateLimit("3/minute", store=MemoryStore())


def test_a_memory_url_keeps_the_limit_in_process() -> None:
    """store='memory://' is the default: the quotas stay in this process, no store."""
    limit = RateLimit("3/minute", store="memory://")
    assert limit.group.shared is False


# -- two uvicorn processes, one Redis ---------------------------------------------------------


def _uvicorn(store_url: str) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SEAWALL_TEST_STORE": store_url,
        "PYTHONPATH": str(SRC),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS), "depends_store_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("uvicorn did not start")


@pytest.fixture
def servers(redis_server: RedisServer) -> Iterator[tuple[str, str]]:
    """Two uvicorn processes serving the app, sharing one redis-server."""
    started = [_uvicorn(redis_server.url) for _ in range(2)]
    try:
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.kill()
            process.communicate(timeout=30)


def test_two_uvicorn_processes_share_the_limit(servers: tuple[str, str]) -> None:
    """3/hour per client: 2 calls to one server and 1 to the other pass, then both refuse."""
    a, b = servers
    codes = [httpx.get(f"{a}/login", timeout=10).status_code for _ in range(2)]
    codes.append(httpx.get(f"{b}/login", timeout=10).status_code)
    refused = [httpx.get(f"{url}/login", timeout=10) for url in (b, a)]
    assert codes == [200, 200, 200]
    assert [r.status_code for r in refused] == [429, 429]
    # Real time passes between these requests (a loaded machine took over 1 s once), so the
    # wait is at most the 1200 s a token takes; the fake-clock test above pins exact values.
    assert 0 < int(refused[0].headers["retry-after"]) <= 1200
    assert refused[0].json()["violated-policies"] == ["login"]
