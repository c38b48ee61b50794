"""seawall.testing's switch for an application's tests: gates off, and state reset."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from seawall import AdaptiveBulkhead, CircuitBreaker, CircuitState
from seawall.asgi import RateLimit, ResilienceMiddleware
from seawall.testing import FakeClock, disable_gates, reset_gates

pytestmark = pytest.mark.anyio


def build(clock: FakeClock, breaker: CircuitBreaker | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/login", dependencies=[Depends(RateLimit("1/minute", clock=clock))])
    async def login() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(
        ResilienceMiddleware,
        rate_limit="1/minute",
        route_limits={"/login": None},  # limited by its dependency alone
        breaker=breaker,
        clock=clock,
    )
    return app


async def noop(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that is never called."""


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_disabled_gates_let_every_request_through(clock: FakeClock) -> None:
    """Inside disable_gates(), middleware and dependency limits refuse nothing and add no fields."""
    app = build(clock)
    async with client(app) as c:
        with disable_gates():
            gets = [await c.get("/") for _ in range(3)]
            posts = [(await c.post("/login")).status_code for _ in range(3)]
    assert [r.status_code for r in gets] == [200, 200, 200]
    assert [("ratelimit" in r.headers) for r in gets] == [False, False, False]
    assert posts == [200, 200, 200]


async def test_gates_are_back_after_the_block(clock: FakeClock) -> None:
    """Leaving disable_gates() (nested twice) turns the gates on again, with nothing spent."""
    app = build(clock)
    async with client(app) as c:
        with disable_gates(), disable_gates():
            await c.get("/")
        with disable_gates():
            await c.get("/")
        codes = [(await c.get("/")).status_code for _ in range(2)]
    assert codes == [200, 429]


async def test_reset_forgets_spent_quota_and_closes_the_breaker(clock: FakeClock) -> None:
    """reset_gates() refills the middleware's and dependency's buckets, closes the breaker."""
    breaker = CircuitBreaker(clock=clock)
    app = build(clock, breaker)
    async with client(app) as c:
        spent = [(await c.get("/")).status_code for _ in range(2)]
        logins = [(await c.post("/login")).status_code for _ in range(2)]
        breaker.force_open()
        reset_gates()
        after = [(await c.get("/")).status_code, (await c.post("/login")).status_code]
    assert (spent, logins, after) == ([200, 429], [200, 429], [200, 200])
    assert breaker.state is CircuitState.CLOSED


async def test_disabled_gates_stop_adaptive_shedding(clock: FakeClock) -> None:
    """Inside disable_gates(), a full adaptive bulkhead sheds nothing; outside it sheds."""
    bulkhead = AdaptiveBulkhead(clock=clock)
    held = []
    while (permit := bulkhead.try_acquire("critical")) is not None:
        held.append(permit)
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(ResilienceMiddleware, max_concurrent=bulkhead, clock=clock)
    async with client(app) as c:
        shed = (await c.get("/")).status_code
        with disable_gates():
            served = (await c.get("/")).status_code
    assert (shed, served) == (503, 200)
    assert held


def test_reset_reaches_only_live_gates() -> None:
    """reset_gates() counts the middlewares and dependencies alive; a dropped one is gone."""
    gc.collect()
    before = reset_gates()
    gates = [ResilienceMiddleware(noop, rate_limit="1/minute"), RateLimit("1/second")]
    assert reset_gates() == before + 2
    del gates
    gc.collect()
    assert reset_gates() == before
