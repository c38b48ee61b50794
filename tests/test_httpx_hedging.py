"""Hedging in ResilientTransport: extra attempts after a delay, first acceptable answer wins."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from seawall import Bulkhead, CircuitBreaker
from seawall.httpx import ResilientTransport
from seawall.testing import FakeClock

URL = "http://api.test/"


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that records the status of each response closed."""

    def __init__(self, closed: list[int], status: int, done: threading.Event) -> None:
        self.closed, self.status, self.done = closed, status, done

    def __iter__(self) -> Iterator[bytes]:
        yield b"x"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"x"

    def close(self) -> None:
        self.closed.append(self.status)
        self.done.set()

    async def aclose(self) -> None:
        self.close()


class Upstream:
    """Attempt n answers ``statuses[n]``; attempts listed in ``hang`` wait for their event."""

    def __init__(self, clock: FakeClock, *statuses: int, hang: tuple[int, ...] = ()) -> None:
        self.clock = clock
        self.statuses = statuses
        self.sent: list[float] = []
        self.closed: list[int] = []
        self.any_closed = threading.Event()
        self.async_gates = {n: anyio.Event() for n in hang}
        self.sync_gates = {n: threading.Event() for n in hang}

    def _next(self) -> int:
        self.sent.append(self.clock.monotonic())
        return len(self.sent) - 1

    def _response(self, n: int) -> httpx.Response:
        status = self.statuses[n]
        return httpx.Response(status, stream=Body(self.closed, status, self.any_closed))

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        n = self._next()
        if n in self.async_gates:
            await self.async_gates[n].wait()
        return self._response(n)

    def handle(self, request: httpx.Request) -> httpx.Response:
        n = self._next()
        if n in self.sync_gates:
            assert self.sync_gates[n].wait(10), "the test never released this attempt"
        return self._response(n)


def transport_for(
    clock: FakeClock, upstream: Upstream, *, sync: bool = False, **options: object
) -> ResilientTransport:
    """A transport on ``clock`` with hedging after 2 s (one extra attempt) and no retries."""
    handler = upstream.handle if sync else upstream.handle_async
    settings: dict[str, object] = {"retry": None, "hedging": 2.0, "clock": clock, **options}
    return ResilientTransport(httpx.MockTransport(handler), **settings)  # type: ignore[arg-type]


def breaker_counts(transport: ResilientTransport) -> tuple[int, int, int]:
    """(successes, failures, neutral) of the api.test breaker."""
    breaker = transport.policies(URL).breaker
    assert isinstance(breaker, CircuitBreaker)
    stats = breaker.stats
    return stats.successful_calls, stats.failed_calls, stats.neutral_calls


def in_flight(transport: ResilientTransport) -> int:
    bulkhead = transport.policies(URL).bulkhead
    assert isinstance(bulkhead, Bulkhead)
    return bulkhead.stats.in_flight


@pytest.mark.anyio
async def test_hedge_wins_and_the_slow_attempt_is_cancelled(clock: FakeClock) -> None:
    """Attempt 1 hangs; at 2 s a hedge answers 200 and attempt 1 is cancelled (neutral)."""
    upstream = Upstream(clock, 200, 200, hang=(0,))
    transport = transport_for(clock, upstream)
    results: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _get_into(client, results))
            await anyio.wait_all_tasks_blocked()
            assert upstream.sent == [0.0]
            clock.advance(2)
        assert results[0].status_code == 200
        assert upstream.sent == [0.0, 2.0]
        assert breaker_counts(transport) == (1, 0, 1)
        assert in_flight(transport) == 0


@pytest.mark.anyio
async def test_failed_hedge_hedges_again_and_its_response_is_closed(clock: FakeClock) -> None:
    """Hang, then 503 at 2 s (closed, a failure), then at once 200: three attempts sent."""
    upstream = Upstream(clock, 200, 503, 200, hang=(0,))
    transport = transport_for(clock, upstream, hedging=(2.0, 2))
    results: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _get_into(client, results))
            await anyio.wait_all_tasks_blocked()
            clock.advance(2)
        assert upstream.closed == [503, 200]  # the loser by the hedge, the winner by the client
        assert results[0].status_code == 200
        assert upstream.sent == [0.0, 2.0, 2.0]
        assert breaker_counts(transport) == (1, 1, 1)
        assert in_flight(transport) == 0


@pytest.mark.anyio
async def test_answer_before_the_delay_sends_no_hedge(clock: FakeClock) -> None:
    """An attempt that answers in time is the only one sent."""
    upstream = Upstream(clock, 200)
    transport = transport_for(clock, upstream)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(URL)).status_code == 200
    assert upstream.sent == [0.0]


@pytest.mark.anyio
async def test_every_attempt_failing_returns_the_last(clock: FakeClock) -> None:
    """Two 503s: the second is returned, the first closed; both count as failures."""
    upstream = Upstream(clock, 503, 503)
    transport = transport_for(clock, upstream)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.sent == [0.0, 0.0]  # a failed attempt hedges at once
    assert upstream.closed == [503, 503]
    assert breaker_counts(transport) == (0, 2, 0)


@pytest.mark.anyio
async def test_hedge_needs_a_bulkhead_slot_of_its_own(clock: FakeClock) -> None:
    """With one slot, the hedge at 2 s is refused by the bulkhead and never sent."""
    upstream = Upstream(clock, 200, 200, hang=(0,))
    transport = transport_for(clock, upstream, bulkhead=lambda origin: Bulkhead(1, clock=clock))
    results: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(lambda: _get_into(client, results))
        await anyio.wait_all_tasks_blocked()
        clock.advance(2)
        await anyio.wait_all_tasks_blocked()
        assert upstream.sent == [0.0]
        upstream.async_gates[0].set()
    bulkhead = transport.policies(URL).bulkhead
    assert isinstance(bulkhead, Bulkhead)
    assert (results[0].status_code, bulkhead.stats.total_rejected) == (200, 1)
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_per_request_switch(clock: FakeClock) -> None:
    """extensions['seawall']['hedging'] turns hedging on (a delay) or off (False) per request."""
    upstream = Upstream(clock, 503, 200, 503, 200)
    off_by_default = transport_for(clock, upstream, hedging=None)
    async with httpx.AsyncClient(transport=off_by_default) as client:
        on = await client.get(URL, extensions={"seawall": {"hedging": 1.0}})
        off = await client.get(URL, extensions={"seawall": {"hedging": False}})
    assert (on.status_code, off.status_code) == (200, 503)
    assert len(upstream.sent) == 3


@pytest.mark.anyio
async def test_post_is_not_hedged(clock: FakeClock) -> None:
    """A POST with a failing first answer is sent once."""
    upstream = Upstream(clock, 503, 200)
    transport = transport_for(clock, upstream)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.post(URL, content=b"x")).status_code == 503
    assert upstream.sent == [0.0]


def test_sync_hedge_wins_and_the_late_answer_is_closed(clock: FakeClock) -> None:
    """Sync: the hedge at 2 s wins; attempt 1 answers later, is closed and frees its slot."""
    upstream = Upstream(clock, 200, 200, hang=(0,))
    transport = transport_for(clock, upstream, sync=True)
    results: list[httpx.Response] = []
    with httpx.Client(transport=transport) as client:
        caller = threading.Thread(target=lambda: results.append(client.get(URL)))
        caller.start()
        clock.wait_for_sleepers(1)
        assert upstream.sent == [0.0]
        clock.advance(2)
        caller.join(10)
        assert results[0].status_code == 200
        assert upstream.sent == [0.0, 2.0]
        assert upstream.closed == [200]  # the winner, read by the client
        assert in_flight(transport) == 1  # attempt 1 still holds the request's slot
        upstream.any_closed.clear()
        upstream.sync_gates[0].set()
        assert upstream.any_closed.wait(10)
    assert upstream.closed == [200, 200]
    assert breaker_counts(transport) == (2, 0, 0)
    assert in_flight(transport) == 0


async def _get_into(client: httpx.AsyncClient, results: list[httpx.Response]) -> None:
    results.append(await client.get(URL))
