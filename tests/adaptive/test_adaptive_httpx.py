"""ResilientTransport(adaptive_concurrency=...): a learned limit per origin, client-side."""

from __future__ import annotations

import anyio
import httpx
import pytest

from seawall import AdaptiveBulkhead, AIMDLimit
from seawall.httpx import BulkheadFullTransportError, ResilientTransport
from seawall.httpx._adaptive import AdaptiveOrigins


def aimd(limit: int, frozen: bool = False) -> AdaptiveBulkhead:
    """AIMD at ``limit`` (held there if ``frozen``), each request one window."""
    bounds = {"min_limit": limit, "max_limit": limit} if frozen else {}
    rule = AIMDLimit(initial_limit=limit, **bounds)  # type: ignore[arg-type]
    return AdaptiveBulkhead(rule, window=0.0, window_samples=1)


@pytest.mark.anyio
async def test_limit_is_per_origin() -> None:
    """Limit 1 per origin: with one request held on a.test, the next to a.test fails at once,
    one to b.test goes through."""
    release = anyio.Event()
    entered = anyio.Event()

    async def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test" and not entered.is_set():
            entered.set()
            await release.wait()
        return httpx.Response(200)

    made: dict[str, AdaptiveBulkhead] = {}

    def per_origin(origin: str) -> AdaptiveBulkhead:
        made[origin] = aimd(1, frozen=True)
        return made[origin]

    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=None, adaptive_concurrency=per_origin
    )
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, "http://a.test/held")
        await entered.wait()
        with pytest.raises(
            BulkheadFullTransportError, match=r"adaptive limit of http://a\.test:80"
        ):
            await client.get("http://a.test/second")
        other = await client.get("https://b.test/")
        release.set()
    assert other.status_code == 200
    assert sorted(made) == ["http://a.test:80", "https://b.test:443"]
    assert made["http://a.test:80"].in_flight == 0


@pytest.mark.parametrize(
    ("status", "limit_after"),
    [(200, 3), (404, 3), (429, 1), (503, 1), (504, 1), (500, 2)],
)
def test_response_status_tells_the_limit(status: int, limit_after: int) -> None:
    """AIMD 2, one attempt: <500 grows it to 3, 429/503/504 drop it to 1, 500 leaves 2."""
    bulkhead = aimd(2)
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(status)),
        retry=None,
        breaker=None,
        adaptive_concurrency=lambda origin: bulkhead,
    )
    with httpx.Client(transport=transport) as client:
        assert client.get("http://a.test/").status_code == status
    assert (bulkhead.limit, bulkhead.in_flight) == (limit_after, 0)


def test_httpx_timeout_is_a_drop() -> None:
    """An httpx.ReadTimeout from the upstream is a drop: AIMD 2 -> 1."""

    def upstream(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    bulkhead = aimd(2)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=None,
        breaker=None,
        adaptive_concurrency=lambda origin: bulkhead,
    )
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ReadTimeout):
        client.get("http://a.test/")
    assert (bulkhead.limit, bulkhead.in_flight) == (1, 0)


@pytest.mark.anyio
async def test_async_cancellation_is_no_sample() -> None:
    """A cancelled attempt (a lost hedge, a caller that gave up) frees its slot; AIMD stays 2."""

    async def upstream(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    bulkhead = aimd(2)
    limited = AdaptiveOrigins(lambda origin: bulkhead, 10).asynchronous(
        httpx.MockTransport(upstream)
    )
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limited.handle_async_request(httpx.Request("GET", "http://a.test/"))
    assert (bulkhead.limit, bulkhead.in_flight) == (2, 0)


def test_off_by_default() -> None:
    """Without adaptive_concurrency, 50 sequential 503s leave no adaptive layer to shed anything."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)), retry=None, breaker=None
    )
    with httpx.Client(transport=transport) as client:
        codes = {client.get("http://a.test/").status_code for _ in range(50)}
    assert codes == {503}


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("cubic", ValueError, "limit must be one of"),
        (5, TypeError, "adaptive_concurrency must be a bool, 'gradient2', 'vegas', 'aimd'"),
    ],
)
def test_bad_spec(spec: object, error: type[Exception], message: str) -> None:
    """A bad adaptive_concurrency raises at construction, naming the value."""
    with pytest.raises(error, match=message):
        ResilientTransport(adaptive_concurrency=spec)  # type: ignore[arg-type]
