"""ResilientTransport's standard pipeline: defaults, deadline, hold-back, timeouts, overrides."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from seawall import Bulkhead, CircuitBreaker, CircuitState, Retry
from seawall.httpx import (
    BulkheadFullTransportError,
    CircuitOpenTransportError,
    RateLimitExceededTransportError,
    ResilientTransport,
    TimeoutTransportError,
)
from seawall.testing import FakeClock


class Upstream:
    """Answers ``statuses`` in turn (the last repeats), recording when and what was sent."""

    def __init__(self, clock: FakeClock, *statuses: int, headers: dict[str, str] | None = None):
        self.clock = clock
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.sent: list[tuple[float, str, str]] = []
        self.timeouts: list[dict[str, float]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((self.clock.monotonic(), request.method, request.url.host))
        self.timeouts.append(request.extensions.get("timeout", {}))
        status = self.statuses[min(len(self.sent), len(self.statuses)) - 1]
        return httpx.Response(status, headers=self.headers)

    @property
    def times(self) -> list[float]:
        return [t for t, _, _ in self.sent]


def test_default_parts_per_origin(clock: FakeClock) -> None:
    """With no arguments each origin gets its own breaker and a 1000-slot bulkhead, no queue."""
    transport = ResilientTransport(clock=clock)
    a = transport.policies("http://a.test/")
    b = transport.policies("http://b.test/")
    assert isinstance(a.breaker, CircuitBreaker)
    assert isinstance(a.bulkhead, Bulkhead)
    assert a.breaker is not b.breaker
    assert a.bulkhead is not b.bulkhead
    assert (a.bulkhead.max_concurrent, a.bulkhead.max_wait) == (1000, 0.0)
    assert a.limiter is None
    assert a.breaker.name == "http://a.test:80"


def test_spellings_of_one_origin_share_its_policies(clock: FakeClock) -> None:
    """Default port or not, IDNA or Unicode host: one origin, one set of policies."""
    transport = ResilientTransport(clock=clock)
    plain = transport.policies("http://a.test/")
    unicode = transport.policies("http://\u4e2d\u56fd.icom.museum/")
    assert transport.policies("http://a.test:80/x") is plain
    assert transport.policies("https://a.test/") is not plain
    assert transport.policies("http://a.test:8080/") is not plain
    assert transport.policies("http://xn--fiqs8s.icom.museum/") is unicode
    assert unicode.origin == "http://\u4e2d\u56fd.icom.museum:80"


def test_default_breaker_opens_at_ten_percent_of_a_hundred_calls(clock: FakeClock) -> None:
    """90 successes then 9 failures keep it closed; the 10th failure (100th call) opens it."""
    statuses = [200] * 90 + [500] * 11
    upstream = Upstream(clock, *statuses)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=None, clock=clock)
    breaker = transport.policies("http://api.test/").breaker
    assert isinstance(breaker, CircuitBreaker)
    with httpx.Client(transport=transport) as client:
        for _ in range(99):
            client.get("http://api.test/")
        assert breaker.state is CircuitState.CLOSED
        assert client.get("http://api.test/").status_code == 500
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenTransportError) as caught:
            client.get("http://api.test/")
    assert caught.value.retry_after == 5.0
    assert len(upstream.sent) == 100


def test_default_breaker_forgets_calls_older_than_thirty_seconds(clock: FakeClock) -> None:
    """9 failures, 31 s, then 90 successes and 1 failure: the old nine no longer count."""
    upstream = Upstream(clock, *[500] * 9, *[200] * 90, 500, 200)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=None, clock=clock)
    breaker = transport.policies("http://api.test/").breaker
    assert isinstance(breaker, CircuitBreaker)
    with httpx.Client(transport=transport) as client:
        for _ in range(9):
            client.get("http://api.test/")
        clock.advance(31)
        for _ in range(91):  # a window of the last 100 calls would hold 10 failures here
            client.get("http://api.test/")
        assert breaker.state is CircuitState.CLOSED
        for _ in range(9):
            client.get("http://api.test/")
    assert breaker.state is CircuitState.CLOSED
    assert len(upstream.sent) == 109


@pytest.mark.parametrize(
    ("status", "attempts"),
    [(408, 2), (429, 2), (500, 2), (502, 2), (503, 2), (504, 2), (501, 1), (404, 1), (200, 1)],
)
def test_retried_statuses(clock: FakeClock, status: int, attempts: int) -> None:
    """408, 429, 500, 502, 503 and 504 are retried; 501, 404 and 200 are not."""
    upstream = Upstream(clock, status, 200)
    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=Retry(attempts=2, wait=False), clock=clock
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
    assert len(upstream.sent) == attempts


def test_default_retry_waits_full_jitter_within_the_deadline(clock: FakeClock) -> None:
    """The default retry draws full jitter under 2, 4, 8 s ceilings: attempt times are exact."""
    upstream = Upstream(clock, 503)
    draws = random.Random(7)
    transport = ResilientTransport(httpx.MockTransport(upstream), clock=clock)
    retry = transport._retry
    assert retry is not None
    retry._random = draws.random  # seeded draws, the rest of the default Retry unchanged
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 503
    replay = random.Random(7)
    expected, now = [0.0], 0.0
    for ceiling in (2.0, 4.0, 8.0):
        now += ceiling * replay.random()
        expected.append(now)
    assert upstream.times == pytest.approx(expected)


def test_deadline_stops_the_retry_whose_wait_would_reach_it(clock: FakeClock) -> None:
    """Waits of 10 then 20 s: the second would end at the 30 s deadline, so two attempts."""
    upstream = Upstream(clock, 503)
    retry = Retry(attempts=5, initial=10, maximum=100, jitter=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 503
    assert upstream.times == [0.0, 10.0]


def test_retry_after_holds_the_origin_back_without_a_limiter(clock: FakeClock) -> None:
    """A POST's 429 with Retry-After 5 delays the next request to that origin, not to others."""
    upstream = Upstream(clock, 429, 200, headers={"Retry-After": "5"})
    transport = ResilientTransport(httpx.MockTransport(upstream), clock=clock)
    with httpx.Client(transport=transport) as client:
        assert client.post("http://a.test/", content=b"x").status_code == 429
        upstream.headers = {}
        client.get("http://b.test/")
        client.get("http://a.test/")
    assert upstream.sent == [
        (0.0, "POST", "a.test"),
        (0.0, "GET", "b.test"),
        (5.0, "GET", "a.test"),
    ]


def test_hold_back_past_the_deadline_refuses_at_once(clock: FakeClock) -> None:
    """Retry-After 45 with a 30 s deadline: the next request is refused, unsent, retry_after 45."""
    upstream = Upstream(clock, 503, headers={"Retry-After": "45"})
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=None, clock=clock)
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/")
        clock.advance(1)
        with pytest.raises(RateLimitExceededTransportError) as caught:
            client.get("http://api.test/")
    assert caught.value.retry_after == 44.0
    assert len(upstream.sent) == 1


def test_hold_back_is_capped_and_can_be_switched_off(clock: FakeClock) -> None:
    """Retry-After 9999999999 holds back max_retry_after (20 s); hold_back=False not at all."""
    for hold_back, second_at in ((True, 20.0), (False, 0.0)):
        upstream = Upstream(clock, 429, 200, headers={"Retry-After": "9999999999"})
        transport = ResilientTransport(
            httpx.MockTransport(upstream),
            retry=None,
            max_retry_after=20,
            hold_back=hold_back,
            clock=clock,
        )
        start = clock.monotonic()
        with httpx.Client(transport=transport) as client:
            client.get("http://api.test/")
            client.get("http://api.test/")
        assert [t - start for t in upstream.times] == [0.0, second_at]


def test_sync_attempt_timeout_bounds_httpx_timeouts(clock: FakeClock) -> None:
    """Each attempt's httpx timeouts are min(client's, 10 s, time left before the deadline)."""
    upstream = Upstream(clock, 503, 200)
    retry = Retry(attempts=2, initial=25, maximum=100, jitter=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport, timeout=httpx.Timeout(60, connect=3)) as client:
        client.get("http://api.test/")
    first, second = upstream.timeouts
    assert first == {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert second == {"connect": 3.0, "read": 5.0, "write": 5.0, "pool": 5.0}


class SlowFailure:
    """Takes ``seconds`` on the fake clock then fails to connect, once; answers 200 after."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.timeouts: list[dict[str, float]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(request.extensions["timeout"])
        if len(self.timeouts) == 1:
            self.clock.advance(self.seconds)
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)


def test_sync_retry_after_an_error_is_cut_to_the_time_left(clock: FakeClock) -> None:
    """A retry after a transport error gets the time left (4 s of 30), not the first's 10 s."""
    upstream = SlowFailure(clock, 26.0)
    retry = Retry(attempts=2, wait=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport, timeout=60) as client:
        assert client.get("http://api.test/").status_code == 200
    assert [t["read"] for t in upstream.timeouts] == [10.0, 4.0]


@pytest.mark.anyio
async def test_async_retry_after_an_error_is_cut_to_the_time_left(clock: FakeClock) -> None:
    """The async form: the retry's httpx timeouts are the 4 s left of the 30 s deadline."""
    upstream = SlowFailure(clock, 26.0)
    retry = Retry(attempts=2, wait=False, clock=clock)
    inner = httpx.AsyncHTTPTransport()  # reads the extension: no cancel scope, only the bound
    seen: list[float] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return upstream(request)

    inner.handle_async_request = record  # type: ignore[method-assign]
    transport = ResilientTransport(inner, retry=retry, clock=clock)
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        assert (await client.get("http://api.test/")).status_code == 200
    assert seen == [10.0, 4.0]


@pytest.mark.anyio
async def test_async_attempt_timeout_is_a_failure_and_is_retried(clock: FakeClock) -> None:
    """A hanging first attempt is cut at attempt_timeout, counted as a failure, then retried."""
    calls: list[int] = []

    async def upstream(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep_forever()
        return httpx.Response(200)

    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=Retry(attempts=2, wait=False, clock=clock),
        attempt_timeout=0.01,
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://api.test/")).status_code == 200
    stats = transport.policies("http://api.test/").breaker.stats  # type: ignore[union-attr]
    assert (len(calls), stats.failed_calls, stats.successful_calls, stats.neutral_calls) == (
        2,
        1,
        1,
        0,
    )


@pytest.mark.anyio
async def test_async_attempt_timeout_error_is_an_httpx_timeout(clock: FakeClock) -> None:
    """Without retries the cut attempt raises an httpx.TimeoutException that names no URL."""

    async def upstream(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    transport = ResilientTransport(
        httpx.MockTransport(upstream), retry=None, attempt_timeout=0.01, clock=clock
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.TimeoutException) as caught:
            await client.get("http://api.test/secret?token=abc")
    assert isinstance(caught.value, TimeoutTransportError)
    assert "token" not in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.anyio
async def test_async_hold_back_waits_on_the_clock(clock: FakeClock) -> None:
    """AsyncClient: after a 503 with Retry-After 3 the next request is sent at t=3."""
    upstream = Upstream(clock, 503, 200, headers={"Retry-After": "3"})
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=None, clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.test/")
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "http://api.test/")
            await anyio.wait_all_tasks_blocked()
            assert len(upstream.sent) == 1
            clock.advance(3)
    assert upstream.times == [0.0, 3.0]


@pytest.mark.anyio
async def test_bulkhead_slot_is_held_for_the_whole_request(clock: FakeClock) -> None:
    """A request waiting to retry keeps its slot: a second one to a 1-slot origin is refused."""
    upstream = Upstream(clock, 503, 200)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=Retry(attempts=2, initial=1, jitter=False, clock=clock),
        bulkhead=lambda origin: Bulkhead(1, clock=clock),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, "http://api.test/")
        await anyio.wait_all_tasks_blocked()  # in its backoff wait
        with pytest.raises(BulkheadFullTransportError):
            await client.get("http://api.test/")
        clock.advance(1)
    bulkhead = transport.policies("http://api.test/").bulkhead
    assert isinstance(bulkhead, Bulkhead)
    assert (len(upstream.sent), bulkhead.stats.in_flight) == (2, 0)


@pytest.mark.anyio
async def test_a_bulkhead_with_max_wait_queues_async_requests(clock: FakeClock) -> None:
    """With max_wait, a second request to a 1-slot origin waits for the slot, then is sent."""
    upstream = Upstream(clock, 503, 200)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        retry=Retry(attempts=2, initial=1, jitter=False, clock=clock),
        bulkhead=lambda origin: Bulkhead(1, max_wait=10, clock=clock),
        clock=clock,
    )
    statuses: list[int] = []

    async def get() -> None:
        statuses.append((await client.get("http://api.test/")).status_code)

    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(get)
        await anyio.wait_all_tasks_blocked()  # the first in its backoff wait, holding the slot
        tg.start_soon(get)
        await anyio.wait_all_tasks_blocked()  # the second queued for it
        clock.advance(1)
    assert (statuses, len(upstream.sent)) == ([200, 200], 3)


def test_inconsistent_settings_name_both_values() -> None:
    """attempt_timeout over timeout, or over half the breaker window, is refused."""
    with pytest.raises(ValueError, match=r"attempt_timeout \(40 s\).*timeout \(30 s\)"):
        ResilientTransport(attempt_timeout=40)
    with pytest.raises(ValueError, match=r"window \(30 s\).*attempt_timeout \(20 s\)"):
        ResilientTransport(attempt_timeout=20)
    with pytest.raises(ValueError, match="timeout must be > 0, got -1"):
        ResilientTransport(timeout=-1)
    ResilientTransport(attempt_timeout=20, breaker=None)  # no window to fit in


def test_bad_request_overrides_are_refused(clock: FakeClock) -> None:
    """Unknown keys and contradictory values in extensions['seawall'] raise ValueError."""
    transport = ResilientTransport(httpx.MockTransport(Upstream(clock, 200)), clock=clock)
    with httpx.Client(transport=transport) as client:
        with pytest.raises(ValueError, match=r"unknown key\(s\).*'retries'"):
            client.get("http://api.test/", extensions={"seawall": {"retries": 2}})
        with pytest.raises(ValueError, match=r"attempt_timeout \(12 s\).*timeout \(5 s\)"):
            client.get(
                "http://api.test/", extensions={"seawall": {"timeout": 5, "attempt_timeout": 12}}
            )


def test_request_overrides_timeouts(clock: FakeClock) -> None:
    """extensions['seawall'] sets this request's attempt timeout and deadline."""
    upstream = Upstream(clock, 503, 200)
    retry = Retry(attempts=2, initial=4, jitter=False, clock=clock)
    transport = ResilientTransport(httpx.MockTransport(upstream), retry=retry, clock=clock)
    with httpx.Client(transport=transport, timeout=60) as client:
        response = client.get(
            "http://api.test/", extensions={"seawall": {"timeout": 3, "attempt_timeout": 2}}
        )
    # The 4 s retry wait would pass the 3 s deadline: one attempt, bounded at 2 s.
    assert response.status_code == 503
    assert upstream.timeouts == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]


def test_bare_form_is_the_retry_only_transport(clock: FakeClock) -> None:
    """standard=False: no gates, 500 not retried, one request per call, no hold-back."""
    upstream = Upstream(clock, 500, headers={"Retry-After": "5"})
    transport = ResilientTransport(httpx.MockTransport(upstream), standard=False, clock=clock)
    policies = transport.policies("http://api.test/")
    assert (policies.breaker, policies.bulkhead, policies.limiter) == (None, None, None)
    with httpx.Client(transport=transport) as client:
        for _ in range(3):
            assert client.get("http://api.test/").status_code == 500
    assert upstream.times == [0.0, 0.0, 0.0]


def test_bare_form_refuses_standard_only_options() -> None:
    """standard=False with a deadline or hedging names what needs the standard pipeline."""
    with pytest.raises(ValueError, match="timeout=5, hedging=True need the standard pipeline"):
        ResilientTransport(standard=False, timeout=5, hedging=True)


@pytest.mark.anyio
async def test_bare_form_holds_a_slot_per_attempt_only(clock: FakeClock) -> None:
    """standard=False keeps 0.x's order: a request in its backoff wait holds no slot."""
    upstream = Upstream(clock, 503, 200)
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        standard=False,
        retry=Retry(attempts=2, initial=1, jitter=False, clock=clock),
        bulkhead=lambda origin: Bulkhead(1, clock=clock),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, "http://api.test/")
        await anyio.wait_all_tasks_blocked()  # in its backoff wait, slot given back
        assert (await client.get("http://api.test/")).status_code == 200
        clock.advance(1)
    assert upstream.times == [0.0, 0.0, 1.0]


@pytest.mark.anyio
async def test_async_attempt_timeout_cuts_a_streamed_body_to_a_sync_handler(
    clock: FakeClock,
) -> None:
    """A sync MockTransport handler runs without a cancel scope only when the body is in memory."""

    async def body() -> AsyncIterator[bytes]:
        await anyio.sleep_forever()
        yield b"never"

    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        retry=None,
        attempt_timeout=0.01,
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://api.test/")).status_code == 200
        with anyio.fail_after(5), pytest.raises(TimeoutTransportError):
            await client.post("http://api.test/", content=body())
