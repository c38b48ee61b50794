"""ResilientTransport(fallback=...): a response of our own when the origin cannot answer."""

from __future__ import annotations

import httpx
import pytest

from seawall import CircuitBreaker, Retry
from seawall.httpx import CircuitOpenTransportError, ResilientTransport
from seawall.testing import FakeClock

URL = "http://api.test/quotes"
Outcome = httpx.Response | Exception


class Cache:
    """A fallback that answers from a cache and records what it was asked about."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(
        self, request: httpx.Request, outcome: httpx.Response | Exception
    ) -> httpx.Response:
        self.seen.append(
            str(outcome.status_code)
            if isinstance(outcome, httpx.Response)
            else type(outcome).__name__
        )
        return httpx.Response(200, text="cached", headers={"X-Cache": "fallback"})


class Counted(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that counts its closes."""

    def __init__(self, closes: list[int]) -> None:
        self.closes = closes

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield b"upstream"

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"upstream"

    def close(self) -> None:
        self.closes.append(1)

    async def aclose(self) -> None:
        self.closes.append(1)


def test_open_breaker_is_answered_from_the_cache(clock: FakeClock) -> None:
    """Once the origin's breaker is open the fallback answers, and nothing is sent."""
    sent: list[int] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        return httpx.Response(500)

    cache = Cache()
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=None,
        breaker=lambda origin: CircuitBreaker(max_failures=1, reset_timeout=30, clock=clock),
        fallback=cache,
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        first = client.get(URL)
        second = client.get(URL)
    assert (first.text, second.text) == ("cached", "cached")
    assert cache.seen == ["500", "CircuitOpenTransportError"]
    assert len(sent) == 1


def test_exhausted_retries_hand_over_the_last_response_closed(clock: FakeClock) -> None:
    """Three 503s: the fallback sees the last one, which is closed; all three were closed."""
    closes: list[int] = []
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(503, stream=Counted(closes))),
        retry=Retry(attempts=3, wait=False),
        fallback=Cache(),
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        response = client.get(URL)
    assert (response.text, response.headers["X-Cache"]) == ("cached", "fallback")
    assert len(closes) == 3


def test_transport_error_after_retries(clock: FakeClock) -> None:
    """A connection error on every attempt reaches the fallback as that error."""

    def upstream(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cache = Cache()
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=Retry(attempts=2, wait=False),
        fallback=cache,
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        assert client.get(URL).text == "cached"
    assert cache.seen == ["ConnectError"]


def test_none_keeps_the_outcome_and_success_skips_the_fallback(clock: FakeClock) -> None:
    """A fallback returning None leaves the 503 (or the error); 200 and 404 never reach it."""
    seen: list[int] = []

    def decline(request: httpx.Request, outcome: httpx.Response | Exception) -> None:
        seen.append(outcome.status_code if isinstance(outcome, httpx.Response) else -1)

    statuses = iter([503, 200, 404])
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(next(statuses))),
        retry=None,
        fallback=decline,
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        codes = [client.get(URL).status_code for _ in range(3)]
    assert (codes, seen) == ([503, 200, 404], [503])


def test_none_reraises_a_refusal(clock: FakeClock) -> None:
    """With a fallback that declines, an open breaker still raises its transport error."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(500)),
        retry=None,
        breaker=lambda origin: CircuitBreaker(max_failures=1, clock=clock),
        fallback=lambda request, outcome: None,
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        client.get(URL)
        with pytest.raises(CircuitOpenTransportError):
            client.get(URL)


@pytest.mark.anyio
async def test_async_fallback_is_awaited(clock: FakeClock) -> None:
    """AsyncClient: an async fallback is awaited and the replaced response closed."""
    closes: list[int] = []

    async def cached(request: httpx.Request, outcome: object) -> httpx.Response:
        return httpx.Response(200, text="cached")

    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(502, stream=Counted(closes))),
        retry=None,
        fallback=cached,
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).text == "cached"
    assert len(closes) == 1


def test_bad_fallbacks_are_refused(clock: FakeClock) -> None:
    """A non-callable, a wrong return type, or an async fallback in a sync client: TypeError."""

    async def cached(request: httpx.Request, outcome: object) -> httpx.Response:
        return httpx.Response(200)

    with pytest.raises(TypeError, match="fallback must be callable"):
        ResilientTransport(fallback="cache")  # type: ignore[arg-type]
    for fallback, message in (
        (lambda r, o: "text", "must return an httpx.Response"),
        (cached, "needs an async client"),
    ):
        transport = ResilientTransport(
            httpx.MockTransport(lambda r: httpx.Response(503)),
            retry=None,
            fallback=fallback,
            clock=clock,
        )
        with httpx.Client(transport=transport) as client, pytest.raises(TypeError, match=message):
            client.get(URL)
