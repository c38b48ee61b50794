"""A frozen Redis (SIGSTOP): each decision answers within the store timeout, and whatever a
cancelled task holds is still given back (asyncio and trio).

Durations are real (a socket timeout cannot run on the fake clock); the bounds separate
"one timeout" from "a timeout plus a retry" with the margins measured on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import httpx
import pytest

from _redis_server import RedisServer
from seawall import Bulkhead, CircuitBreaker, CircuitState, Pipeline, RateLimiter
from seawall._core.breaker import BreakerConfig
from seawall.httpx import ResilientTransport
from seawall.stores import RedisStore
from seawall.stores._base import BreakerSpec, BulkheadSpec, LimiterSpec, StoreUnavailableError
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

TIMEOUT = 0.2
# One frozen round trip costs the timeout plus scheduling: at most 35 ms over it seen on
# this loaded 2-core machine (benchmarks/bench_store_stall.py, sync, asyncio and trio). A
# single retry would cost a second timeout (0.4 s in all), so 0.3 s keeps 100 ms of margin
# on both sides (other test runs share the two cores).
BOUND = 0.3

LIM = LimiterSpec("to-lim", 0.1, 5.0)
BRK = BreakerSpec("to-brk", BreakerConfig(3, 1.0, 1, 1, 1.0, None, None, None, 10, 10))
BH = BulkheadSpec("to-bh", 2, lease=5.0)

SYNC: dict[str, Callable[[RedisStore], object]] = {
    "reserve": lambda s: s.reserve(LIM, None, 1, 0.0),
    "admit": lambda s: s.admit(BRK),
    "try_hold": lambda s: s.try_hold(BH),
}
ASYNC: dict[str, Callable[[RedisStore], Awaitable[object]]] = {
    "areserve": lambda s: s.areserve(LIM, None, 1, 0.0),
    "aadmit": lambda s: s.aadmit(BRK),
    "atry_hold": lambda s: s.atry_hold(BH),
}


@pytest.fixture
def frozen(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A redis-server the test may freeze; it runs again before it is stopped."""
    yield redis_server
    redis_server.resume()


@pytest.mark.parametrize("op", list(SYNC))
def test_a_frozen_redis_fails_each_sync_decision_within_the_timeout(
    frozen: RedisServer, op: str
) -> None:
    """Each of 3 sync decisions on a frozen Redis raises StoreUnavailableError in one timeout."""
    store = RedisStore(frozen.url, timeout=TIMEOUT)
    SYNC[op](store)  # connected, scripts loaded
    frozen.pause()
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(StoreUnavailableError):
            SYNC[op](store)
        assert TIMEOUT <= time.perf_counter() - started < BOUND  # one timeout, not less
    store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("op", list(ASYNC))
async def test_a_frozen_redis_fails_each_async_decision_within_the_timeout(
    frozen: RedisServer, op: str, async_client: str
) -> None:
    """Each of 3 awaited decisions on a frozen Redis raises in one timeout, asyncio and trio."""
    store = RedisStore(frozen.url, timeout=TIMEOUT, async_client=async_client)
    await ASYNC[op](store)
    frozen.pause()
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(StoreUnavailableError):
            await ASYNC[op](store)
        assert TIMEOUT <= time.perf_counter() - started < BOUND  # one timeout, not less
    frozen.resume()
    await store.aclose()


@pytest.mark.anyio
async def test_a_cancelled_holder_gives_its_redis_slot_back(
    redis_server: RedisServer, async_client: str
) -> None:
    """A task cancelled while holding a shared slot releases it in its finally: 0 holders."""
    store = RedisStore(redis_server.url, timeout=2.0, async_client=async_client)
    bulkhead = Bulkhead(1, name="cancel-bh", store=store)
    holding = anyio.Event()

    async def worker() -> None:
        await bulkhead.acquire_async()
        try:
            holding.set()
            await anyio.sleep_forever()
        finally:
            await bulkhead.arelease()

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await holding.wait()
        assert store.holders(BulkheadSpec("cancel-bh", 1)) == 1
        tg.cancel_scope.cancel()
    assert store.holders(BulkheadSpec("cancel-bh", 1)) == 0
    await store.aclose()


@pytest.mark.anyio
async def test_a_cancelled_pipeline_call_frees_its_slot_and_probe(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    """A half-open probe cancelled mid-call frees its shared slot and its probe at once."""
    store = RedisStore(redis_server.url, timeout=2.0, time_source="client", clock=clock)
    bulkhead = Bulkhead(1, name="pipe-bh", store=store, clock=clock)
    breaker = CircuitBreaker(
        name="pipe-brk", max_failures=1, reset_timeout=10.0, store=store, clock=clock
    )
    pipeline = Pipeline(bulkhead=bulkhead, breaker=breaker, clock=clock)
    with pytest.raises(ZeroDivisionError):
        await pipeline.acall(fail)
    clock.advance(10.0)  # half-open: one probe may run
    started = anyio.Event()

    async def probe() -> None:
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.acall, probe)
        await started.wait()
        tg.cancel_scope.cancel()
    assert store.holders(BulkheadSpec("pipe-bh", 1)) == 0
    assert await pipeline.acall(anyio.sleep, 0) is None  # slot and probe both free again
    assert breaker.state is CircuitState.CLOSED
    await store.aclose()


async def fail() -> None:
    raise ZeroDivisionError


# A store call made on the loop lags a 10 ms probe by the whole store timeout (0.25 s here);
# without one the probe was at most 17 ms late on this loaded 2-core machine (20 runs of
# the middleware's scenarios in tests/asgi/test_asgi_store_stall.py).
STALL_TIMEOUT = 0.25
MAX_LAG = 0.12


@pytest.mark.anyio
async def test_a_pipeline_over_a_frozen_store_leaves_the_loop_free(
    frozen: RedisServer, async_client: str
) -> None:
    """Pipeline.acall with a bulkhead and a breaker in a frozen Redis never blocks the loop."""
    store = RedisStore(frozen.url, timeout=STALL_TIMEOUT, async_client=async_client)
    pipeline = Pipeline(
        bulkhead=Bulkhead(2, name="lag-bh", store=store),
        breaker=CircuitBreaker(name="lag-brk", store=store),
    )
    await pipeline.acall(anyio.sleep, 0)  # connected, scripts loaded
    frozen.pause()
    lags: list[float] = []

    async def probe() -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        for _ in range(3):
            await pipeline.acall(anyio.sleep, 0.01)  # degraded="local" admits
        await anyio.sleep(0.05)  # the probe wakes (late, if the loop was held) and records
        tg.cancel_scope.cancel()
    assert max(lags) < MAX_LAG
    frozen.resume()
    await store.aclose()


@pytest.mark.anyio
async def test_a_transport_blocks_a_frozen_shared_limiter_off_the_loop(
    frozen: RedisServer,
) -> None:
    """A 429 with Retry-After blocks a store-backed host limiter without stalling the loop."""
    store = RedisStore(frozen.url, timeout=STALL_TIMEOUT)
    limiter = RateLimiter(rate=100, name="lag-upstream", store=store)

    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ok":
            return httpx.Response(200)
        return httpx.Response(429, headers={"Retry-After": "1"})

    transport = ResilientTransport(httpx.MockTransport(upstream), retry=None, limiter=limiter)
    lags: list[float] = []

    async def probe() -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    async with httpx.AsyncClient(transport=transport, base_url="http://upstream.test") as client:
        assert (await client.get("/ok")).status_code == 200  # connected, scripts loaded
        frozen.pause()
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            assert (await client.get("/busy")).status_code == 429
            await anyio.sleep(0.05)  # the probe wakes (late, if the loop was held) and records
            tg.cancel_scope.cancel()
    assert max(lags) < MAX_LAG
    frozen.resume()
    await store.aclose()
