"""The rate-limit fields and rejections the middleware sends, built once and reused."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall.asgi import ResilienceMiddleware
from seawall.asgi._limits import PolicyState
from seawall.asgi._responses import rate_limited, ratelimit_fields, unavailable
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


def app_with(**options: object) -> Starlette:
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, **options)
    return app


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_several_quotas_are_listed_in_one_field(clock: FakeClock) -> None:
    """'2/second;3/minute' gives one RateLimit field naming both quotas, comma separated."""
    app = app_with(rate_limit="2/second;3/minute", clock=clock)
    async with client(app) as c:
        response = await c.get("/")
    assert response.headers["ratelimit-policy"] == '"default-1";q=2;w=1, "default-2";q=3;w=60'
    assert response.headers["ratelimit"] == '"default-1";r=1;t=1, "default-2";r=2;t=20'


async def test_each_request_sees_its_own_numbers(clock: FakeClock) -> None:
    """Five requests to '5/minute' report r=4..0 and t=12..60, then a 429 with Retry-After 12."""
    app = app_with(rate_limit="5/minute", clock=clock)
    async with client(app) as c:
        responses = [await c.get("/") for _ in range(6)]
    fields = [r.headers["ratelimit"] for r in responses]
    assert fields == [f'"default";r={4 - i};t={12 * (i + 1)}' for i in range(5)] + [
        '"default";r=0;t=12'
    ]
    assert responses[5].headers["retry-after"] == "12"


def state(name: str, remaining: int, reset_after: float, retry_after: float) -> PolicyState:
    return PolicyState(name, 10, 60, remaining, reset_after, retry_after)


def test_both_styles_for_two_quotas() -> None:
    """headers='both' sends the IETF pair and the legacy trio of the tighter quota."""
    states = [state("a", 3, 5.2, 0.0), state("b", 0, 40.0, 2.5)]
    fields = ratelimit_fields("both", b"policy", states, 1000.4)
    assert fields == [
        (b"ratelimit-policy", b"policy"),
        (b"ratelimit", b'"a";r=3;t=6, "b";r=0;t=3'),
        (b"x-ratelimit-limit", b"10"),
        (b"x-ratelimit-remaining", b"0"),
        (b"x-ratelimit-reset", b"1004"),
    ]


def test_a_rejection_is_rebuilt_for_other_seconds() -> None:
    """The same fields with another wait give another Retry-After and detail, never a stale one."""
    first = rate_limited([(b"ratelimit", b"x")], 11.2, ["default"])
    second = rate_limited([(b"ratelimit", b"x")], 3.0, ["default"])
    assert first.headers == ((b"ratelimit", b"x"), (b"retry-after", b"12"))
    assert second.headers == ((b"ratelimit", b"x"), (b"retry-after", b"3"))
    assert second.detail == "Request quota exceeded; retry in 3 seconds."
    assert rate_limited([(b"ratelimit", b"x")], 11.9, ["default"]) is first


def test_unavailable_rejections_keep_their_reason() -> None:
    """An overload and an open circuit with the same wait stay two different 503s."""
    overloaded = unavailable("overloaded", 1, "The service is overloaded.")
    circuit = unavailable("circuit_open", 1, "The service is temporarily unavailable.")
    assert (overloaded.reason, circuit.reason) == ("overloaded", "circuit_open")
    assert overloaded.problem_type.endswith("#temporary-reduced-capacity")
    assert circuit.problem_type == "about:blank"
