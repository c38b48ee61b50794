"""Weighted limits: a route or a function of the request costs several tokens, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall.asgi import RateLimit, ResilienceMiddleware, limit
from seawall.asgi._types import Scope
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


@limit("10/minute", cost=4)
async def export(request: Request) -> Response:
    return PlainTextResponse("export")


def export_costs_five(scope: Scope) -> int:
    return 5 if scope["path"] == "/export" else 1


def build(**options: Any) -> Starlette:
    app = Starlette(routes=[Route("/", hello), Route("/export", hello), Route("/heavy", export)])
    app.add_middleware(ResilienceMiddleware, **options)
    return app


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def fields(response: httpx.Response) -> tuple[int, str, str | None]:
    return response.status_code, response.headers["ratelimit"], response.headers.get("retry-after")


async def test_route_cost_is_charged_and_shown(clock: FakeClock) -> None:
    """@limit('10/minute', cost=4): r falls 6, 2, then a 429 waiting for the 2 missing tokens."""
    app = build(clock=clock)
    async with client(app) as c:
        answers = [fields(await c.get("/heavy")) for _ in range(3)]
    assert answers == [
        (200, '"route";r=6;t=24', None),
        (200, '"route";r=2;t=48', None),
        (429, '"route";r=2;t=12', "12"),
    ]


async def test_cost_function_of_the_request(clock: FakeClock) -> None:
    """cost=fn(scope): two exports of 5 spend the default 10/minute; then / is refused."""
    app = build(rate_limit="10/minute", cost=export_costs_five, clock=clock)
    async with client(app) as c:
        exports = [fields(await c.get("/export")) for _ in range(2)]
        after = fields(await c.get("/"))
    assert exports == [(200, '"default";r=5;t=30', None), (200, '"default";r=0;t=60', None)]
    assert after == (429, '"default";r=0;t=6', "6")


async def test_cost_is_all_or_nothing_across_quotas(clock: FakeClock) -> None:
    """A request one quota cannot pay for spends nothing in the other quotas."""
    app = build(rate_limit="10/minute;3/second", cost=2, clock=clock)
    async with client(app) as c:
        first = fields(await c.get("/"))
        refused = fields(await c.get("/"))
        clock.advance(1)
        again = fields(await c.get("/"))
    assert first == (200, '"default-1";r=8;t=12, "default-2";r=1;t=1', None)
    assert refused == (429, '"default-1";r=8;t=12, "default-2";r=1;t=1', "1")
    # 1 s refilled 3/second fully and 1/6 token of 10/minute: 8.17 - 2 = 6.17 left.
    assert again == (200, '"default-1";r=6;t=23, "default-2";r=1;t=1', None)


async def test_cost_passes_through_a_store(clock: FakeClock, tmp_path: Path) -> None:
    """With the limits kept in a file store, the cost is charged there the same way."""
    store = f"file://{tmp_path}"
    app = build(rate_limit="10/minute", cost=export_costs_five, store=store, clock=clock)
    async with client(app) as c:
        answers = [fields(await c.get(path)) for path in ("/export", "/export", "/")]
    assert [(status, r) for status, r, _ in answers] == [
        (200, '"default";r=5;t=30'),
        (200, '"default";r=0;t=60'),
        (429, '"default";r=0;t=6'),
    ]


async def test_dependency_cost(clock: FakeClock) -> None:
    """Depends(RateLimit('10/minute', cost=4)): the third call is refused."""
    app = FastAPI()

    @app.get("/report", dependencies=[Depends(RateLimit("10/minute", cost=4, clock=clock))])
    async def report() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(ResilienceMiddleware, clock=clock)
    async with client(app) as c:
        codes = [(await c.get("/report")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (0, "cost must be a whole number >= 1, got 0"),
        (2.5, "cost must be a whole number >= 1, got 2.5"),
        (11, "cost 11 exceeds the smallest quota \\(10 requests\\)"),
    ],
)
def test_bad_cost_names_the_parameter(cost: Any, message: str) -> None:
    """A cost that is not a whole number from 1 to the smallest quota is refused at once."""
    with pytest.raises(ValueError, match=message):
        ResilienceMiddleware(hello, rate_limit="10/minute;100/hour", cost=cost)
    with pytest.raises(ValueError, match=message):
        limit("10/minute", cost=cost)


async def test_cost_function_answer_is_checked(clock: FakeClock) -> None:
    """A cost function answering more than a quota holds raises ValueError naming cost(scope)."""
    app = build(rate_limit="10/minute", cost=lambda scope: 50, clock=clock)
    async with client(app) as c:
        with pytest.raises(ValueError, match=r"cost\(scope\) 50 exceeds the smallest quota"):
            await c.get("/")
