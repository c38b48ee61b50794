"""ResilientTransport over httpx.MockTransport: retries, Retry-After, per-host breakers, closing."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import httpx
import pytest

from seawall import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    CircuitPermit,
    CircuitState,
    RateLimiter,
    RejectedError,
    Retry,
    RetryBudget,
)
from seawall.httpx import CircuitOpenTransportError, ResilientTransport
from seawall.httpx._headers import exhausted_for
from seawall.httpx._transport import url_key
from seawall.testing import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


class Upstream:
    """A scripted upstream: replies with ``statuses`` in turn (the last one repeats)."""

    def __init__(self, clock: FakeClock, *statuses: int, headers: dict[str, bytes] | None = None):
        self.clock = clock
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.times: list[float] = []
        self.hosts: list[str] = []
        self.closed = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock.monotonic())
        self.hosts.append(request.url.host)
        status = self.statuses[min(len(self.times), len(self.statuses)) - 1]
        return httpx.Response(status, headers=self.headers, stream=ClosingStream(self))


class ClosingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that counts how often it is closed."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def __iter__(self) -> Iterator[bytes]:
        yield b"body"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"body"

    def close(self) -> None:
        self.upstream.closed += 1

    async def aclose(self) -> None:
        self.upstream.closed += 1


def per_host(clock: FakeClock, **breaker: object) -> dict[str, object]:
    """Factories for a breaker, limiter and bulkhead per origin, all on ``clock``."""
    options: dict[str, object] = {"max_failures": 3, "reset_timeout": 30.0, **breaker}
    return {
        "breaker": lambda origin: CircuitBreaker(name=origin, clock=clock, **options),
        "limiter": lambda origin: RateLimiter(100, 1.0, clock=clock),
        "bulkhead": lambda origin: Bulkhead(4, clock=clock),
    }


def test_import_seawall_does_not_import_httpx() -> None:
    """Plain 'import seawall' leaves httpx unimported."""
    code = "import sys, seawall; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_retries_follow_seeded_full_jitter_bounded_by_deadline(clock: FakeClock) -> None:
    """With seed 42 the request times are the exact jittered sums until the deadline."""
    upstream = Upstream(clock, 503)
    retry = Retry(
        attempts=10,
        initial=1,
        multiplier=2,
        maximum=8,
        deadline=6,
        clock=clock,
        random=random.Random(42).random,
    )
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 503
    replay = random.Random(42)
    expected, now, retry_number = [0.0], 0.0, 1
    while True:
        wait = min(8.0, 2.0 ** (retry_number - 1)) * replay.random()
        if now + wait >= 6:
            break
        now += wait
        expected.append(now)
        retry_number += 1
    assert upstream.times == pytest.approx(expected)
    assert len(upstream.times) == 5  # the fifth wait would pass the 6 s deadline


def test_post_is_not_retried_by_default(clock: FakeClock) -> None:
    """A 503 to a POST is returned after one request."""
    upstream = Upstream(clock, 503, 200)
    transport = ResilientTransport(httpx.MockTransport(upstream), clock=clock)
    with httpx.Client(transport=transport) as client:
        assert client.post("http://api.test/", content=b"x").status_code == 503
    assert len(upstream.times) == 1


def test_request_extension_overrides_retry(clock: FakeClock) -> None:
    """extensions['seawall']['retry'] turns retries on for POST and off for GET."""
    upstream = Upstream(clock, 503, 200, 503, 200)
    retry = Retry(attempts=3, wait=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport) as client:
        on = client.post("http://api.test/", content=b"x", extensions={"seawall": {"retry": True}})
        off = client.get("http://api.test/", extensions={"seawall": {"retry": False}})
    assert (on.status_code, off.status_code) == (200, 503)
    assert len(upstream.times) == 3


def test_streamed_body_is_never_retried(clock: FakeClock) -> None:
    """A request whose body is a generator cannot be replayed, so it is sent once."""
    upstream = Upstream(clock, 503, 200)
    retry = Retry(attempts=3, wait=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport) as client:
        response = client.put("http://api.test/", content=iter([b"a", b"b"]))
    assert response.status_code == 503
    assert len(upstream.times) == 1


@pytest.mark.parametrize(
    ("value", "second_request_at"),
    [
        (b"9999999999", 30.0),  # capped at max_retry_after
        (b"-1", 0.5),  # ignored: the backoff applies
        (b"Wed, 21 Oct 2015 07:28:00 GMT", 0.5),  # past: 0, so the backoff applies
        ("١٢٣".encode(), 0.5),  # non-ASCII digits: ignored
        (b"soon", 0.5),  # garbage: ignored
        (b"2", 2.0),  # honoured
    ],
)
def test_retry_after_values(clock: FakeClock, value: bytes, second_request_at: float) -> None:
    """A 429's Retry-After is honoured, capped or ignored, and blocks the host's limiter."""
    upstream = Upstream(clock, 429, 200, headers={"Retry-After": value})
    retry = Retry(attempts=2, initial=0.5, jitter=False, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=retry,
        max_retry_after=30,
        timeout=None,  # a 30 s wait would reach the standard 30 s deadline
        clock=clock,
        **per_host(clock),
    )
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 200
    assert upstream.times == [0.0, second_request_at]


def test_huge_retry_after_blocks_the_limiter_only_up_to_the_cap(clock: FakeClock) -> None:
    """Retry-After 9999999999 without retries blocks the host's limiter for exactly the cap."""
    upstream = Upstream(clock, 429, headers={"Retry-After": b"9999999999"})
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=None,
        max_retry_after=30,
        clock=clock,
        **per_host(clock),
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
    limiter = transport.policies("http://api.test/").limiter
    assert isinstance(limiter, RateLimiter)
    assert limiter.consume().retry_after == 30.0


def test_breaker_opens_per_host_and_other_hosts_keep_working(clock: FakeClock) -> None:
    """Three 500s open a.test's breaker; b.test is still served."""
    upstream_a = Upstream(clock, 500)

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return upstream_a(request)
        return httpx.Response(200)

    transport = ResilientTransport(
        httpx.MockTransport(route), retry=None, clock=clock, **per_host(clock)
    )
    with httpx.Client(transport=transport) as client:
        for _ in range(3):
            assert client.get("http://a.test/").status_code == 500
        with pytest.raises(CircuitOpenTransportError):
            client.get("http://a.test/")
        assert client.get("http://b.test/").status_code == 200
    assert len(upstream_a.times) == 3
    assert transport.policies("http://a.test").breaker.state is CircuitState.OPEN  # type: ignore[union-attr]
    assert transport.policies("http://b.test").breaker.state is CircuitState.CLOSED  # type: ignore[union-attr]


def test_rejection_is_caught_as_httpx_error(clock: FakeClock) -> None:
    """An open circuit raises something 'except httpx.HTTPError' catches, with retry_after."""
    breaker = CircuitBreaker(max_failures=1, reset_timeout=30, clock=clock)
    breaker.force_open()
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(200)), breaker=breaker, clock=clock
    )
    with httpx.Client(transport=transport) as client:
        try:
            client.get("http://api.test/")
        except httpx.HTTPError as exc:
            caught: Exception = exc
    assert isinstance(caught, httpx.TransportError)
    assert isinstance(caught, CircuitOpenError)
    assert isinstance(caught, RejectedError)
    assert caught.request.url == "http://api.test/"


def test_four_hundreds_are_not_failures_five_hundreds_are(clock: FakeClock) -> None:
    """A 404 counts as a breaker success and a 500 as a failure."""
    upstream = Upstream(clock, 404, 500)
    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=None, clock=clock, **per_host(clock)
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
        client.get("http://api.test/")
    stats = transport.policies("http://api.test").breaker.stats  # type: ignore[union-attr]
    assert (stats.successful_calls, stats.failed_calls) == (1, 1)


def test_a_breaker_subclass_is_admitted_through_its_own_admit(clock: FakeClock) -> None:
    """A CircuitBreaker subclass (as store-backed ones are) is asked with its admit()."""
    admitted: list[int] = []

    class Counting(CircuitBreaker):
        def admit(self) -> CircuitPermit:
            admitted.append(1)
            return super().admit()

    breaker = Counting(max_failures=3, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(Upstream(clock, 200, 500)), retry=None, breaker=breaker, clock=clock
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
        client.get("http://api.test/")
    stats = breaker.stats
    assert (len(admitted), stats.successful_calls, stats.failed_calls) == (2, 1, 1)


def test_custom_failure_predicate(clock: FakeClock) -> None:
    """is_failure decides which responses count against the host."""
    upstream = Upstream(clock, 404)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=None,
        clock=clock,
        is_failure=lambda r: r.status_code == 404,
        **per_host(clock),
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
    assert transport.policies("http://api.test").breaker.stats.failed_calls == 1  # type: ignore[union-attr]


def test_transport_errors_are_retried_and_counted(clock: FakeClock) -> None:
    """A connection error is a failure and is retried for GET."""
    attempts: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    retry = Retry(attempts=2, wait=False, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(flaky), retry=retry, clock=clock, **per_host(clock)
    )
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 200
    stats = transport.policies("http://api.test").breaker.stats  # type: ignore[union-attr]
    assert (stats.failed_calls, stats.successful_calls) == (1, 1)
    assert len(attempts) == 2


def test_retry_budget_stops_a_retry_storm(clock: FakeClock) -> None:
    """Ten GETs to a dead upstream with a 20% budget reach it exactly 12 times."""
    upstream = Upstream(clock, 503)
    budget = RetryBudget(ratio=0.2, minimum_per_second=0, clock=clock)
    retry = Retry(attempts=3, budget=budget, wait=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport) as client:
        for _ in range(10):
            assert client.get("http://api.test/").status_code == 503
    assert len(upstream.times) == 12


def test_retried_responses_are_closed(clock: FakeClock) -> None:
    """Each discarded response is closed before the retry; the returned one stays open."""
    upstream = Upstream(clock, 503, 502, 200)
    retry = Retry(attempts=3, wait=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    response = transport.handle_request(httpx.Request("GET", "http://api.test/"))
    assert response.status_code == 200
    assert upstream.closed == 2
    response.close()
    assert upstream.closed == 3


def test_pacing_from_ratelimit_field(clock: FakeClock) -> None:
    """With pace=True, 'RateLimit: r=0;t=7' blocks the host's limiter for 7 s."""
    upstream = Upstream(clock, 200, headers={"RateLimit": b'"default";r=0;t=7'})
    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=None, pace=True, clock=clock, **per_host(clock)
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
    assert transport.policies("http://api.test").limiter.consume().retry_after == 7.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit": '"default";r=0;t=30'}, 30.0),
        ({"RateLimit": '"default";r=5;t=30'}, None),
        ({"RateLimit": "limit=100, remaining=0, reset=12"}, 12.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "4"}, 4.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "-4"}, None),
        ({"RateLimit": '"default";r=0;t=99999'}, 60.0),
        ({}, None),
    ],
)
def test_ratelimit_field_formats(headers: dict[str, str], expected: float | None) -> None:
    """The three draft formats are read; only 'nothing remains' gives a wait, capped."""
    assert exhausted_for(httpx.Response(200, headers=headers), maximum=60.0) == expected


def test_host_table_is_bounded(clock: FakeClock) -> None:
    """Past max_hosts the least recently used origin's policies are dropped."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(200)),
        max_hosts=2,
        clock=clock,
        **per_host(clock),
    )
    first = transport.policies("http://a.test").breaker
    transport.policies("http://b.test")
    transport.policies("http://c.test")
    assert transport.policies("http://a.test").breaker is not first


def test_shared_instance_guards_every_host(clock: FakeClock) -> None:
    """A breaker instance (not a factory) is shared across origins."""
    breaker = CircuitBreaker(max_failures=2, reset_timeout=30, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(500)),
        retry=None,
        breaker=breaker,
        clock=clock,
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://a.test/")
        client.get("http://b.test/")
        with pytest.raises(CircuitOpenTransportError):
            client.get("http://c.test/")


def test_bad_arguments() -> None:
    """Wrong types name what is wrong."""
    with pytest.raises(TypeError, match="transport"):
        ResilientTransport(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry"):
        ResilientTransport(retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_hosts"):
        ResilientTransport(max_hosts=0)


@pytest.mark.anyio
async def test_async_client_retries_and_closes_discarded(clock: FakeClock) -> None:
    """AsyncClient: two 503s then 200, the two discarded responses closed."""
    upstream = Upstream(clock, 503, 503, 200)
    retry = Retry(attempts=3, wait=False, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=retry, clock=clock, **per_host(clock)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("http://api.test/")
    assert response.status_code == 200
    assert len(upstream.times) == 3
    assert upstream.closed == 3  # two discarded + the returned one, read by the client


@pytest.mark.anyio
async def test_async_rejection_is_an_httpx_error(clock: FakeClock) -> None:
    """An open breaker under AsyncClient raises an httpx.TransportError."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(500)),
        retry=None,
        clock=clock,
        **per_host(clock, max_failures=1),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.test/")
        with pytest.raises(httpx.TransportError):
            await client.get("http://api.test/")


@pytest.mark.anyio
async def test_cancel_during_backoff_is_not_retried(clock: FakeClock) -> None:
    """Cancelled while waiting to retry: one request, one failure, no slot held."""
    upstream = Upstream(clock, 503)
    retry = Retry(attempts=3, initial=5, jitter=False, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=retry, clock=clock, **per_host(clock)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get, "http://api.test/")
                await anyio.wait_all_tasks_blocked()
                assert clock.sleepers == 1
                scope.cancel()
    policies = transport.policies("http://api.test")
    assert len(upstream.times) == 1
    assert policies.breaker.stats.failed_calls == 1  # type: ignore[union-attr]
    assert policies.bulkhead.stats.in_flight == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_cancel_during_request_is_neutral_and_leaks_no_probe(clock: FakeClock) -> None:
    """A half-open probe cancelled mid-request is neutral, frees its slot, and is not retried."""
    calls: list[int] = []
    hang = anyio.Event()

    async def upstream(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 2:
            await hang.wait()
        return httpx.Response(500 if len(calls) == 1 else 200)

    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=Retry(attempts=3, clock=clock),
        clock=clock,
        **per_host(clock, max_failures=1, reset_timeout=10.0),
    )
    policies = transport.policies("http://api.test")
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.test/", extensions={"seawall": {"retry": False}})
        clock.advance(10)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get, "http://api.test/")
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        stats = policies.breaker.stats  # type: ignore[union-attr]
        assert (stats.failed_calls, stats.neutral_calls) == (1, 1)
        assert policies.bulkhead.stats.in_flight == 0  # type: ignore[union-attr]
        assert len(calls) == 2
        assert (await client.get("http://api.test/")).status_code == 200
    assert policies.breaker.state is CircuitState.CLOSED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "http://a.test/x",
        "https://A.Test:8443/x?q=1",
        "http://user:pw@a.test:80/",
        "http://[::1]:8080/",
        "https://münchen.test/",
        "http://127.0.0.1/",
    ],
)
def test_the_entry_points_read_the_same_origin_key_as_url_key(url: str) -> None:
    """handle_request reads httpx's parsed URL directly; url_key is the same key, slower."""
    parsed = httpx.URL(url)._uri_reference
    assert (parsed.scheme, parsed.host, parsed.port) == url_key(httpx.URL(url))


def test_an_httpx_url_without_its_parse_still_finds_the_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    request = httpx.Request("GET", "http://a.test/")
    monkeypatch.setattr(request, "url", _NoParse(request.url))
    assert transport.handle_request(request).status_code == 200
    assert transport.policies("http://a.test:80/").breaker is not None


class _NoParse:
    """A URL exposing only httpx's public properties."""

    def __init__(self, url: httpx.URL) -> None:
        self.scheme, self.raw_host, self.port = url.scheme, url.raw_host, url.port
        self.host = url.host
