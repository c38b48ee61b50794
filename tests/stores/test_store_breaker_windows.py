"""Window breakers in every store: the same rates, edges and emptying in memory, files, Redis
and a real three-master Redis Cluster, with exact expectations on the fake clock.

Each scenario runs with no store (the in-process default), a MemoryStore, a FileStore, a
RedisStore on one server and a RedisStore on a Cluster (client time, so the fake clock drives
them all). The fake clock's wall time (1.7e9 s) is a multiple of every bucket width used
here, so the buckets line up with those of the monotonic clock the in-process breaker reads.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _redis_server import RedisCluster3, RedisServer
from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall.stores import FileStore, MemoryStore, RedisStore, Store
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN
KINDS = ["local", "memory", "file", "redis", "cluster"]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """One redis-server and one three-master Cluster for the module: their URLs."""
    server, cluster = RedisServer(), RedisCluster3()
    try:
        server.start()
        cluster.start()
        yield server.url, cluster.url
    finally:
        cluster.close()
        server.close()


def _store(kind: str, clock: FakeClock, root: Path, urls: tuple[str, str]) -> Store | None:
    if kind == "local":
        return None
    if kind == "memory":
        return MemoryStore(clock=clock)
    if kind == "file":
        return FileStore(root / "state", clock=clock)
    url = urls[0] if kind == "redis" else urls[1]
    # A generous timeout: these tests are about decisions, not a loaded machine's latency.
    return RedisStore(
        url, time_source="client", clock=clock, timeout=5, prefix=f"w{next(_prefixes)}"
    )


Make = Callable[..., CircuitBreaker]


@pytest.fixture(params=KINDS)
def make(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path, servers: tuple[str, str]
) -> Iterator[Make]:
    """Build a breaker kept in this test's store (or none), on the fake clock."""
    store = _store(request.param, clock, tmp_path, servers)

    def build(**options: Any) -> CircuitBreaker:
        if store is not None:
            options["store"] = store
        return CircuitBreaker(name="win", max_failures=100, clock=clock, **options)

    build.store = store  # type: ignore[attr-defined]
    yield build
    if store is not None:
        store.close()


@pytest.fixture
async def amake(make: Make) -> AsyncIterator[Make]:
    """``make`` for async tests: the store is closed on the test's own event loop."""
    yield make
    store = make.store  # type: ignore[attr-defined]
    if store is not None:
        await store.aclose()


def _fail() -> None:
    raise OSError("down")


def _ok() -> str:
    return "ok"


def _failed(breaker: CircuitBreaker) -> None:
    with pytest.raises(OSError):
        breaker.call(_fail)


def test_count_window_rate_trips_and_state_changes_empty_it(make: Make, clock: FakeClock) -> None:
    """F, S, S stay closed; a fourth call failing (2 of 4) opens; after closing, it starts over."""
    breaker = make(failure_rate_threshold=0.5, window_size=4, minimum_calls=4, reset_timeout=5.0)
    _failed(breaker)
    breaker.call(_ok)
    breaker.call(_ok)
    assert breaker.state is CLOSED
    _failed(breaker)
    assert breaker.state is OPEN
    clock.advance(5.0)
    assert breaker.call(_ok) == "ok"  # the probe closes it, with an empty window
    for _ in range(3):
        _failed(breaker)
    assert breaker.state is CLOSED  # three calls: under minimum_calls again
    _failed(breaker)
    assert breaker.state is OPEN


def test_time_window_bucket_expires_exactly_at_its_edge(make: Make, clock: FakeClock) -> None:
    """A failure at 1 s no longer counts at 8 s (4 buckets of 2 s); a failure at 8.5 s does."""
    breaker = make(
        failure_rate_threshold=0.5, minimum_calls=2, window_duration=8.0, window_buckets=4
    )
    clock.advance(1.0)
    _failed(breaker)
    clock.advance(7.0)
    breaker.call(_ok)
    assert breaker.state is CLOSED  # the window holds the success alone
    clock.advance(0.5)
    _failed(breaker)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(_ok)


def test_time_window_counts_calls_up_to_its_edge(make: Make, clock: FakeClock) -> None:
    """A failure at 1 s still counts at 7.75 s: with the success then, 1 of 2 opens it."""
    breaker = make(
        failure_rate_threshold=0.5, minimum_calls=2, window_duration=8.0, window_buckets=4
    )
    clock.advance(1.0)
    _failed(breaker)
    clock.advance(6.75)
    breaker.call(_ok)
    assert breaker.state is OPEN


def test_time_window_slow_call_rate(make: Make, clock: FakeClock) -> None:
    """A success lasting exactly slow_call_duration, then a fast one: 1 of 2 slow opens it."""
    breaker = make(
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        minimum_calls=2,
        window_duration=8.0,
        window_buckets=4,
    )
    breaker.call(clock.sleep, 1.0)  # the fake clock's sleep advances it
    assert breaker.state is CLOSED
    breaker.call(_ok)
    assert breaker.state is OPEN


@pytest.mark.anyio
async def test_time_window_async(amake: Make, clock: FakeClock) -> None:
    """acall counts into the same window: 1 failure of 2 within 8 s opens it, on every store."""
    breaker = amake(
        failure_rate_threshold=0.5, minimum_calls=2, window_duration=8.0, window_buckets=4
    )

    async def fail() -> None:
        raise OSError("down")

    async def ok() -> str:
        return "ok"

    assert await breaker.acall(ok) == "ok"
    clock.advance(6.0)
    with pytest.raises(OSError):
        await breaker.acall(fail)
    assert breaker.state is OPEN
