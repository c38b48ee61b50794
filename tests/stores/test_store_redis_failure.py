"""A Redis that dies mid-run: every operation fails fast as StoreUnavailableError, then recovers."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from _redis_server import RedisServer
from seawall._core.breaker import BreakerConfig
from seawall.stores._base import BreakerSpec, BulkheadSpec, LimiterSpec, StoreUnavailableError
from seawall.stores._redis.store import RedisStore

pytestmark = pytest.mark.slow

LIM = LimiterSpec("fail-lim", 0.1, 5.0)
BRK = BreakerSpec("fail-brk", BreakerConfig(3, 1.0, 1, 1, 1.0, None, None, None, 10, 10))
BH = BulkheadSpec("fail-bh", 2, lease=5.0)

TIMEOUT = 0.1
# A killed server refuses the connection at once: 0.0 to 0.4 ms per operation over 120 on
# this loaded 2-core machine (benchmarks/measure_store_bounds.py). So the bound is the
# timeout itself: an operation that waited for it, slept a client-side retry or hung fails.
REFUSED_BOUND = TIMEOUT
# A frozen server (SIGSTOP) accepts the connection (the kernel does) and answers nothing: the
# first command costs exactly the timeout, 0.2009 to 0.2021 s for 0.2 s over 10 runs here. A
# retry would cost a second timeout, so 0.28 s separates them with room for scheduling.
CONNECT_TIMEOUT = 0.2
CONNECT_BOUND = 0.28

OPS: dict[str, Callable[[RedisStore], object]] = {
    "reserve": lambda s: s.reserve(LIM, None, 1, 0.0),
    "cancel": lambda s: s.cancel(LIM, None, 1.0, 1),
    "block": lambda s: s.block(LIM, None, 0.5),
    "peek": lambda s: s.peek(LIM, None),
    "admit": lambda s: s.admit(BRK),
    "record": lambda s: s.record(BRK, (0, 0), 0, 0.0),
    "force": lambda s: s.force(BRK, "reset"),
    "view": lambda s: s.view(BRK),
    "try_hold": lambda s: s.try_hold(BH),
    "holders": lambda s: s.holders(BH),
    "status": lambda s: s.status(),
    "reset": lambda s: s.reset("fail-lim"),
}


def test_dead_redis_fails_every_operation_fast_then_recovers(redis_server: RedisServer) -> None:
    """After kill -9 of redis-server each op raises StoreUnavailableError; a restart heals."""
    store = RedisStore(redis_server.url, timeout=TIMEOUT)
    hold = store.try_hold(BH)
    assert hold is not None
    for op in OPS.values():
        op(store)
    redis_server.kill()
    for name, op in OPS.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            op(store)
        assert time.monotonic() - started < REFUSED_BOUND, name
        assert info.value.__cause__ is not None, name
    with pytest.raises(StoreUnavailableError):
        hold.release()
    redis_server.start()  # same port, empty data
    for op in OPS.values():
        op(store)
    assert store.reserve(LIM, None, 1, 0.0).remaining == 4  # "reset" ran last
    store.close()


@pytest.mark.anyio
async def test_dead_redis_fails_async_operations_too(redis_server: RedisServer) -> None:
    """The async methods raise StoreUnavailableError too, on asyncio and trio."""
    store = RedisStore(redis_server.url, timeout=0.1)
    assert (await store.areserve(LIM, None, 1, 0.0)).wait == 0.0
    redis_server.kill()
    with anyio.fail_after(5.0):
        for call in (
            store.areserve(LIM, None, 1, 0.0),
            store.aadmit(BRK),
            store.arecord(BRK, (0, 0), 1, 0.0),
            store.atry_hold(BH),
            store.acancel(LIM, None, 1.0, 1),
            store.ablock(LIM, None, 1.0),
        ):
            with pytest.raises(StoreUnavailableError):
                await call
    await store.aclose()


def test_a_server_frozen_before_the_first_connect_costs_one_timeout(
    redis_server: RedisServer,
) -> None:
    """A first command to a frozen server gives up after one timeout: not sooner, not later.

    (A blackholed address is no test here: this sandbox answers 10.255.255.1 at once.)
    """
    redis_server.pause()
    try:
        store = RedisStore(redis_server.url, timeout=CONNECT_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.peek(LIM, None)
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()
    assert CONNECT_TIMEOUT <= elapsed < CONNECT_BOUND, elapsed
    store.close()
