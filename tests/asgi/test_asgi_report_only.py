"""Report-only mode: gates decide, count, log, emit and show headers, but refuse nothing."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall import CircuitBreaker, add_listener
from seawall.asgi import ResilienceMiddleware
from seawall.events import Event, Rejected
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


def build(**options: Any) -> tuple[Starlette, ResilienceMiddleware]:
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, **options)
    app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, ResilienceMiddleware):
        layer = layer.app
    return app, layer


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_spent_quota_is_reported_not_refused(clock: FakeClock) -> None:
    """report_only=True: the third request of 2/minute is served, with r=0 and the header."""
    app, mw = build(rate_limit="2/minute", report_only=True, clock=clock)
    async with client(app) as c:
        responses = [await c.get("/") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.headers["ratelimit"] for r in responses] == [
        '"default";r=1;t=30',
        '"default";r=0;t=60',
        '"default";r=0;t=30',
    ]
    assert [r.headers.get("seawall-report-only") for r in responses] == [
        None,
        None,
        "rate_limited",
    ]
    assert mw.report_only_counts == {"rate_limited": 1}


async def test_report_only_decision_is_logged_and_emitted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The would-be refusal is logged (path, no query) and the limiter emits its Rejected event."""
    app, _ = build(rate_limit="1/minute", report_only=True, clock=clock)
    events: list[Event] = []
    with add_listener(events.append), caplog.at_level(logging.INFO, logger="seawall"):
        async with client(app) as c:
            await c.get("/?token=secret")
            await c.get("/?token=secret")
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert [(e.policy, e.reason, e.key) for e in rejected] == [
        ("limiter", "rate_limited", "192.0.2.1")
    ]
    lines = [r.getMessage() for r in caplog.records if "report-only" in r.getMessage()]
    assert lines == ["seawall: report-only: would refuse GET '/' with 429 (rate_limited)"]


async def test_open_breaker_reported_while_limits_still_refuse(clock: FakeClock) -> None:
    """report_only={'breaker'}: an open breaker lets requests in; the rate limit still refuses."""
    breaker = CircuitBreaker(clock=clock)
    breaker.force_open()
    app, mw = build(rate_limit="2/minute", breaker=breaker, report_only={"breaker"}, clock=clock)
    async with client(app) as c:
        responses = [await c.get("/") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].headers["seawall-report-only"] == "circuit_open"
    assert "seawall-report-only" not in responses[2].headers
    assert mw.report_only_counts == {"circuit_open": 2}


async def test_enforcing_gates_still_refuse_beside_a_report_only_one(clock: FakeClock) -> None:
    """report_only='rate_limit' with a forced-open breaker: the breaker's 503 stands."""
    breaker = CircuitBreaker(clock=clock)
    breaker.force_open()
    app, mw = build(rate_limit="1/minute", breaker=breaker, report_only="rate_limit", clock=clock)
    async with client(app) as c:
        codes = [(await c.get("/")).status_code for _ in range(2)]
    assert codes == [503, 503]
    assert mw.report_only_counts == {"rate_limited": 1}


async def test_full_bulkhead_is_reported_and_holds_no_slot(clock: FakeClock) -> None:
    """report_only={'bulkhead'}: a request over max_concurrent runs without a slot to give back."""
    started, release = anyio.Event(), anyio.Event()

    async def slow(request: Request) -> Response:
        started.set()
        await release.wait()
        return PlainTextResponse("slow")

    app = Starlette(routes=[Route("/", hello), Route("/slow", slow)])
    app.add_middleware(
        ResilienceMiddleware, max_concurrent=1, report_only={"bulkhead"}, clock=clock
    )
    async with client(app) as c, anyio.create_task_group() as tg:
        tg.start_soon(c.get, "/slow")
        await started.wait()
        over = await c.get("/")
        release.set()
    layer: Any = app.middleware_stack
    while not isinstance(layer, ResilienceMiddleware):
        layer = layer.app
    assert over.status_code == 200
    assert over.headers["seawall-report-only"] == "overloaded"
    assert layer.report_only_counts == {"overloaded": 1}
    assert layer.bulkhead is not None
    assert layer.bulkhead.stats.in_flight == 0
    assert layer.bulkhead.stats.total_admitted == 1


def test_unknown_gate_names_the_parameter() -> None:
    """report_only with a gate it does not know raises ValueError naming report_only."""
    with pytest.raises(ValueError, match=r"report_only: unknown gates \['limits'\]"):
        ResilienceMiddleware(hello, report_only={"limits"})


def test_enforcing_middleware_reports_no_counts() -> None:
    """Without report_only, report_only_counts is empty."""
    assert ResilienceMiddleware(hello, rate_limit="1/minute").report_only_counts == {}
