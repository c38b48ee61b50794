"""Several quotas kept in a real Redis: exact decisions, awaited calls, counted round trips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _redis_server import RedisServer
from seawall.asgi._limits import LimitGroup, parse_limits
from seawall.stores import RedisStore
from seawall.testing import FakeClock

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def store(redis_server: RedisServer, clock: FakeClock) -> Iterator[RedisStore]:
    """A Redis store on the fake clock's wall time, so refills are exact."""
    found = RedisStore(redis_server.url, time_source="client", clock=clock, timeout=2.0)
    yield found
    found.close()


def scripts_run(server: RedisServer) -> int:
    """EVALSHA (and EVAL) calls the server has run so far: one per round trip of seawall."""
    with server.client() as c:
        stats = c.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in ("evalsha", "eval"))


def group_in(store: RedisStore, clock: FakeClock) -> LimitGroup:
    limits = parse_limits("rate_limit", "2/second;3/minute")
    return LimitGroup("default", limits, max_keys=10, clock=clock, store=store, store_name="t")


async def test_a_refused_request_spends_nothing_in_a_shared_quota(
    store: RedisStore, clock: FakeClock
) -> None:
    """2/second and 3/minute in Redis: the per-second refusal leaves the minute quota untouched."""
    group = group_in(store, clock)
    assert [(await group.ahit("a"))[0] for _ in range(3)] == [True, True, False]
    assert group.buckets[1].tokens("a") == pytest.approx(1.0)
    clock.advance(1.0)
    assert [(await group.ahit("a"))[0] for _ in range(2)] == [True, False]
    granted, states = await group.ahit("a")
    assert not granted
    assert [(s.name, s.remaining) for s in states] == [("default-1", 1), ("default-2", 0)]
    assert states[1].retry_after == pytest.approx(20.0 - 1.0)
    await store.aclose()


async def test_round_trips_per_request_with_two_quotas(
    store: RedisStore, clock: FakeClock, redis_server: RedisServer
) -> None:
    """Admitted: 3 scripts (peek, charge the last, charge the first); refused: 2, none charged."""
    group = group_in(store, clock)
    await group.ahit("warm-up")  # the scripts' first runs load them (NOSCRIPT, then EVAL)
    before = scripts_run(redis_server)
    assert (await group.ahit("b"))[0]
    admitted = scripts_run(redis_server)
    assert admitted - before == 3
    assert (await group.ahit("b"))[0]
    granted, states = await group.ahit("b")  # the per-second quota is empty: refused by a peek
    assert not granted
    assert scripts_run(redis_server) - admitted == 3 + 2
    assert [s.remaining for s in states] == [0, 1]
    await store.aclose()
