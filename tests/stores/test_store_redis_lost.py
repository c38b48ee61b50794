"""Answers lost to a stalled, killed or emptied Redis leave nothing granted behind.

A real ``redis-server`` is paused with SIGSTOP while calls time out: the scripts already in
its sockets run when it resumes, for callers that were told no. The next round trip that
reaches Redis must cancel them, so capacity is back at once and never exceeds the limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from _redis_server import RedisServer
from seawall._core.breaker import FAILURE, SUCCESS, BreakerConfig
from seawall.asgi import ResilienceMiddleware
from seawall.stores._base import (
    BreakerSpec,
    BulkheadSpec,
    Hold,
    LimiterSpec,
    StoreUnavailableError,
    group_gates,
)
from seawall.stores._redis.keys import policy_key
from seawall.stores._redis.store import RedisStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A fresh redis-server for one test (some tests kill it)."""
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def _evalsha_calls(server: RedisServer) -> int:
    with server.client() as c:
        stats = c.info("commandstats").get("cmdstat_evalsha", {})
        return int(stats.get("calls", 0))


def _wait_for_stale(server: RedisServer, before: int) -> int:
    """Block until the resumed Redis has run the EVALSHAs left in its sockets; return how many.

    Only calls on connections opened before the pause reach Redis's sockets (a new connection
    stalls in its handshake), so how many there are is read back, not assumed.
    """
    deadline = time.monotonic() + 10.0  # a bound on a resumed process catching up, not a figure
    seen, quiet = _evalsha_calls(server), 0
    while True:
        assert time.monotonic() < deadline, "the stale scripts never ran"
        time.sleep(0.05)
        now = _evalsha_calls(server)
        quiet = quiet + 1 if now == seen else 0
        if now > before and quiet >= 4:  # nothing new for a while: the sockets are drained
            return now - before
        seen = now


def _concurrently(n: int, fn: Callable[[], object]) -> list[object]:
    """Run ``fn`` in ``n`` threads at once (so each takes its own pooled connection)."""
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except StoreUnavailableError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_stale_acquisitions_are_cancelled_by_the_next_call(server: RedisServer) -> None:
    """Acquisitions lost to a stall hold nothing once the next acquisition has run."""
    store = RedisStore(server.url, timeout=0.1)
    spec = BulkheadSpec("lost-bh", 3, lease=5.0)
    warm = _concurrently(3, lambda: store.try_hold(spec))  # three pooled connections
    for hold in warm:
        assert isinstance(hold, Hold)
        hold.release()
    before = _evalsha_calls(server)
    server.pause()
    try:
        lost = _concurrently(3, lambda: store.try_hold(spec))
    finally:
        server.resume()
    assert all(isinstance(x, StoreUnavailableError) for x in lost)
    assert _wait_for_stale(server, before) >= 1
    hold = store.try_hold(spec)
    assert hold is not None
    assert store.holders(spec) == 1
    hold.release()
    assert store.holders(spec) == 0
    store.close()


async def _three_slow(
    client: httpx.AsyncClient, inside: anyio.Event, go: anyio.Event, *, end: bool = True
) -> None:
    """Three requests to /slow at once; ``inside`` is set when all three run, ``go`` ends them
    (set here once they all run, unless ``end`` is False: then the caller sets it)."""
    state["inside"], state["go"], state["entered"] = inside, go, 0
    statuses: list[int] = []

    async def get() -> None:
        statuses.append((await client.get("/slow")).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(get)
        await inside.wait()
        if end:
            go.set()
    assert statuses == [200, 200, 200]


state: dict[str, Any] = {}


async def _stalled_middleware_scenario(server: RedisServer, async_client: str) -> None:
    clock = FakeClock()
    inside, go = anyio.Event(), anyio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        state["entered"] += 1
        if state["entered"] == 3:
            state["inside"].set()
        await state["go"].wait()
        return PlainTextResponse("slow")

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", fast), Route("/slow", slow)])
    # Long enough that a loaded machine answers in time, short enough to stall quickly; and
    # degraded="deny", so that a slow answer can never pass for a free slot.
    store = RedisStore(server.url, timeout=1.0, async_client=async_client)
    mw = ResilienceMiddleware(app, max_concurrent=3, store=store, degraded="deny", clock=clock)
    assert mw.bulkhead is not None
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _three_slow(client, inside, go)  # three pooled connections, the script loaded
        before = _evalsha_calls(server)
        server.pause()
        try:
            # Three at once: each sends its script on its own connection, then times out.
            statuses: list[int] = []

            async def get() -> None:
                statuses.append((await client.get("/")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(get)
            assert statuses == [503, 503, 503]  # degraded="deny"
        finally:
            server.resume()
        assert await anyio.to_thread.run_sync(_wait_for_stale, server, before) >= 1
        clock.advance(1.0)  # past the store guard's backoff
        assert (await client.get("/")).status_code == 200
        assert mw.bulkhead.stats.in_flight == 0
        inside, go = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(_three_slow, client, inside, go, end=False))
            await inside.wait()
            assert mw.bulkhead.stats.in_flight == 3
            assert (await client.get("/")).status_code == 503  # never a fourth holder
            go.set()
        assert mw.bulkhead.stats.in_flight == 0
    await store.aclose()


@pytest.mark.anyio
async def test_middleware_admits_at_once_after_a_stall(
    server: RedisServer, async_client: str
) -> None:
    """ResilienceMiddleware(max_concurrent=3) on a resumed Redis: 200 at once, never 4 holders."""
    await _stalled_middleware_scenario(server, async_client)


def _lease_end(server: RedisServer, spec: BulkheadSpec) -> list[float]:
    with server.client() as c:
        fields = c.hgetall(policy_key("seawall", spec.name, "bulkhead"))
    return sorted(float(v.split(b" ")[0]) for k, v in fields.items() if k[:2] == b"h:")


def test_long_hold_is_renewed_off_the_request_path(server: RedisServer) -> None:
    """A held lease is renewed to now + lease once it is a third of a lease old."""
    clock = FakeClock(wall=1_700_000_000.0)
    store = RedisStore(server.url, time_source="client", clock=clock, timeout=5.0)
    spec = BulkheadSpec("renew-bh", 1, lease=3.0)
    hold = store.try_hold(spec)
    assert hold is not None
    assert _lease_end(server, spec) == [1_700_000_003.0]
    clock.wait_for_sleepers(1)  # the renewer, started by the hold, waits
    clock.advance(1.0)
    clock.wait_for_sleepers(1)  # the renewer ran and waits again
    assert _lease_end(server, spec) == [1_700_000_004.0]
    clock.advance(2.5)  # past the first lease's end
    clock.wait_for_sleepers(1)
    assert _lease_end(server, spec) == [1_700_000_006.5]
    assert store.holders(spec) == 1
    assert store.try_hold(spec) is None
    hold.release()
    assert store.holders(spec) == 0
    store.close()


def test_restart_without_data_counts_running_holders_again(server: RedisServer) -> None:
    """After Redis restarts empty, the next renewal puts the running holder back: still full."""
    clock = FakeClock(wall=1_700_000_000.0)
    store = RedisStore(server.url, time_source="client", clock=clock, timeout=5.0)
    spec = BulkheadSpec("restart-bh", 1, lease=3.0)
    hold = store.try_hold(spec)
    assert hold is not None
    clock.wait_for_sleepers(1)  # the renewer, started by the hold, waits
    server.kill()
    server.start()  # same port, no data
    assert store.holders(spec) == 0
    clock.advance(1.0)
    clock.wait_for_sleepers(1)
    assert store.holders(spec) == 1
    assert store.try_hold(spec) is None
    hold.release()
    assert store.holders(spec) == 0
    store.close()


# -- limiter reservations --------------------------------------------------------------------

# Nine tokens, one back every 1000 s: no refill during a test, so counts are exact.
WARM = LimiterSpec("warm-lim", 1000.0, 9.0)
LIM = LimiterSpec("lost-lim", 1000.0, 9.0)


def test_stale_reservations_give_their_tokens_back(server: RedisServer) -> None:
    """Reservations lost to a stall spend nothing once the next reservation has run."""
    store = RedisStore(server.url, timeout=0.1)
    _concurrently(3, lambda: store.reserve(WARM, None, 1, 0.0))  # three pooled connections
    before = _evalsha_calls(server)
    server.pause()
    try:
        lost = _concurrently(3, lambda: store.reserve(LIM, None, 1, 0.0))
    finally:
        server.resume()
    assert all(isinstance(x, StoreUnavailableError) for x in lost)
    assert _wait_for_stale(server, before) >= 1
    assert store.reserve(LIM, None, 1, 0.0).remaining == 8
    store.close()


def test_stale_admissions_refused_by_the_bulkhead_refund_nothing(server: RedisServer) -> None:
    """Lost admissions that a full bulkhead refused give back no token, as they took none."""
    store = RedisStore(server.url, timeout=0.1)
    gates = group_gates("lostref", (LIM,), BulkheadSpec("lostref-b", 1, lease=5.0))
    _concurrently(3, lambda: store.reserve(WARM, None, 1, 0.0))  # three pooled connections
    first = store.admit_request(gates, None)
    assert first.admitted
    assert first.limits[0].remaining == 8
    assert first.hold is not None
    before = _evalsha_calls(server)
    server.pause()
    try:
        lost = _concurrently(3, lambda: store.admit_request(gates, None))
    finally:
        server.resume()
    assert all(isinstance(x, StoreUnavailableError) for x in lost)
    assert _wait_for_stale(server, before) >= 1  # each refused: the one slot is held
    first.hold.release()
    after = store.admit_request(gates, None)  # carries the lost ids: nothing to refund
    assert after.admitted
    assert after.limits[0].remaining == 7
    assert after.hold is not None
    after.hold.release()
    store.close()


@pytest.mark.anyio
async def test_stale_async_reservations_give_their_tokens_back(
    server: RedisServer, async_client: str
) -> None:
    """The same on asyncio and trio, with each async client."""
    store = RedisStore(server.url, timeout=0.1, async_client=async_client)
    failures: list[BaseException] = []

    async def reserve(spec: LimiterSpec) -> None:
        try:
            await store.areserve(spec, None, 1, 0.0)
        except StoreUnavailableError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:  # three pooled connections
        for _ in range(3):
            tg.start_soon(reserve, WARM)
    before = _evalsha_calls(server)
    server.pause()
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(reserve, LIM)
    finally:
        server.resume()
    assert len(failures) == 3
    assert await anyio.to_thread.run_sync(_wait_for_stale, server, before) >= 1
    assert (await store.areserve(LIM, None, 1, 0.0)).remaining == 8
    await store.aclose()


# -- breaker probes --------------------------------------------------------------------------

# Consecutive failures only (the Redis store's kind): one failure opens it for 1 s, then one
# probe at a time, whose slot a silent holder keeps for 30 s.
BRK_CFG = BreakerConfig(1, 1.0, 1, 1, 30.0, None, None, None, 10, 10)


def test_stale_probe_admissions_are_given_back(server: RedisServer) -> None:
    """Half-open admissions lost to a stall leave the probe slot free for the next caller."""
    clock = FakeClock(wall=1_700_000_000.0)
    store = RedisStore(server.url, time_source="client", clock=clock, timeout=0.1)
    spec = BreakerSpec("lost-brk", BRK_CFG)
    warm = BreakerSpec("warm-brk", BRK_CFG)
    _concurrently(3, lambda: store.admit(warm))  # three pooled connections
    ticket, _ = store.admit(spec)
    assert isinstance(ticket, tuple)
    store.record(spec, ticket, FAILURE, 0.0)  # open
    clock.advance(1.0)  # half-open: the next admission is the one probe
    before = _evalsha_calls(server)
    server.pause()
    try:
        lost = _concurrently(3, lambda: store.admit(spec))
    finally:
        server.resume()
    assert all(isinstance(x, StoreUnavailableError) for x in lost)
    assert _wait_for_stale(server, before) >= 1
    probe, _ = store.admit(spec)
    assert isinstance(probe, tuple)  # the probe slot is free (a stale one would wait 30 s)
    assert store.view(spec).probes == 1
    assert store.record(spec, probe, SUCCESS, 0.0) is not None  # closed by this probe
    assert store.view(spec).state == "closed"
    store.close()


@pytest.mark.anyio
async def test_stale_async_probe_admissions_are_given_back(
    server: RedisServer, async_client: str
) -> None:
    """The same on asyncio and trio, with each async client."""
    clock = FakeClock(wall=1_700_000_000.0)
    store = RedisStore(
        server.url, time_source="client", clock=clock, timeout=0.1, async_client=async_client
    )
    spec = BreakerSpec("lost-abrk", BRK_CFG)
    failures: list[BaseException] = []

    async def admit(which: BreakerSpec) -> None:
        try:
            await store.aadmit(which)
        except StoreUnavailableError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:  # three pooled connections
        for _ in range(3):
            tg.start_soon(admit, BreakerSpec("warm-abrk", BRK_CFG))
    ticket, _ = await store.aadmit(spec)
    assert isinstance(ticket, tuple)
    await store.arecord(spec, ticket, FAILURE, 0.0)  # open
    clock.advance(1.0)  # half-open
    before = _evalsha_calls(server)
    server.pause()
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(admit, spec)
    finally:
        server.resume()
    assert len(failures) == 3
    assert await anyio.to_thread.run_sync(_wait_for_stale, server, before) >= 1
    probe, _ = await store.aadmit(spec)
    assert isinstance(probe, tuple)  # the probe slot is free (a stale one would wait 30 s)
    await store.aclose()
