"""One request's admission in one store operation: the same exact answers in every store.

``Store.admit_request`` decides every limit (all or nothing), then the bulkhead, then the
breaker; each scenario runs on a MemoryStore, a FileStore, a RedisStore and a RedisStore on a
real 3-master Redis Cluster (client time, so the fake clock drives all four).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._redis_server import RedisCluster3, RedisServer

from seawall._core.breaker import FAILURE, SUCCESS, BreakerConfig, CircuitState
from seawall.stores import FileStore, MemoryStore, RedisStore, Store
from seawall.stores._base import (
    Admission,
    BreakerSpec,
    BulkheadSpec,
    Gates,
    LimiterSpec,
    Settlement,
    group_gates,
)
from seawall.testing import FakeClock

KINDS = ["memory", "file", "redis", "cluster"]
_prefixes = itertools.count()

PER_SECOND = LimiterSpec("per-second", interval=0.5, burst=2.0, keyed=True)
PER_MINUTE = LimiterSpec("per-minute", interval=20.0, burst=3.0, keyed=True)
BULKHEAD = BulkheadSpec("slots", max_concurrent=1, lease=60.0)
BREAKER = BreakerSpec(
    "breaker",
    BreakerConfig(
        max_failures=2,
        reset_timeout=10.0,
        half_open_max_calls=1,
        success_threshold=1,
        stale_attempt_timeout=30.0,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=100,
        minimum_calls=100,
    ),
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """One real redis-server for the module; every store gets its own key prefix."""
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    """One real 3-master Redis Cluster for the module."""
    cluster = RedisCluster3()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.close()


@pytest.fixture
def clock() -> FakeClock:
    """Wall time starts at a whole second, so every expected number below is exact."""
    return FakeClock()


@pytest.fixture(params=KINDS)
def store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path, redis_url: str
) -> Iterator[Store]:
    """This test's store, of each kind."""
    kind = request.param
    found: Store
    if kind == "memory":
        found = MemoryStore(clock=clock)
    elif kind == "file":
        found = FileStore(tmp_path / "state", clock=clock)
    else:
        url = redis_url if kind == "redis" else request.getfixturevalue("cluster_url")
        found = RedisStore(
            url, time_source="client", clock=clock, prefix=f"adm{next(_prefixes)}", timeout=5
        )
    yield found
    found.close()


_ALL = group_gates("app", (PER_SECOND, PER_MINUTE), BULKHEAD, BREAKER)
assert _ALL.breaker is not None
assert _ALL.bulkhead is not None
BREAKER_IN_GROUP = _ALL.breaker
BULKHEAD_IN_GROUP = _ALL.bulkhead


def gates(*, limits: bool = True, bulkhead: bool = True, breaker: bool = True) -> Gates:
    """The gates of the scenarios, all in group ``app``."""
    return group_gates(
        "app",
        (PER_SECOND, PER_MINUTE) if limits else (),
        BULKHEAD if bulkhead else None,
        BREAKER if breaker else None,
    )


def headers(answer: Admission) -> list[tuple[int, float]]:
    """``(remaining, reset_after)`` of each limit: what the RateLimit header shows."""
    return [(r.remaining, r.reset_after) for r in answer.limits]


def release(answer: Admission) -> None:
    """Give back the slot an admitted request holds."""
    assert answer.hold is not None
    answer.hold.release()


def trip(store: Store) -> None:
    """Open the breaker by two failures (max_failures=2)."""
    g = gates(limits=False, bulkhead=False)
    for _ in range(2):
        ticket = store.admit_request(g, None).ticket
        assert ticket is not None
        store.record(BREAKER_IN_GROUP, ticket, FAILURE, 0.0)


def test_limits_are_charged_all_or_nothing(store: Store, clock: FakeClock) -> None:
    """Two limits: the one with no token left refuses, and the other one is not charged."""
    g = gates(bulkhead=False, breaker=False)
    first = store.admit_request(g, "client")
    second = store.admit_request(g, "client")
    third = store.admit_request(g, "client")
    assert (first.refused_by, second.refused_by, third.refused_by) == (None, None, "limit")
    assert headers(first) == [(1, 0.5), (2, 20.0)]
    assert headers(second) == [(0, 1.0), (1, 40.0)]
    assert third.retry_after == 0.5
    assert [r.wait for r in third.limits] == [0.5, 0.0]
    assert headers(third) == [(0, 1.0), (1, 40.0)]  # the per-minute token was not spent
    clock.advance(0.5)
    assert headers(store.admit_request(g, "client")) == [(0, 1.0), (0, 59.5)]
    assert store.admit_request(g, "other").refused_by is None  # one bucket per key


def test_costs_charge_each_limit(store: Store) -> None:
    """A request costing 2 of the first limit and 1 of the second takes exactly that."""
    answer = store.admit_request(gates(bulkhead=False, breaker=False), "k", costs=(2, 1))
    assert headers(answer) == [(0, 1.0), (2, 20.0)]


def test_costs_are_checked(store: Store) -> None:
    """A cost list of the wrong length, or a cost below 1, is a ValueError naming costs."""
    with pytest.raises(ValueError, match=r"costs must have one entry per limit \(2\)"):
        store.admit_request(gates(), "k", costs=(1,))
    with pytest.raises(ValueError, match=r"costs must be whole numbers >= 1, got \(1, 0\)"):
        store.admit_request(gates(), "k", costs=(1, 0))


def test_bulkhead_refusal_gives_the_tokens_back(store: Store) -> None:
    """A full bulkhead refuses after the limits admitted: no token is spent, no slot taken."""
    holder = store.admit_request(gates(breaker=False), "k")
    refused = store.admit_request(gates(breaker=False), "k")
    assert (refused.refused_by, refused.retry_after, refused.hold) == ("bulkhead", 0.05, None)
    assert headers(refused) == [(1, 0.5), (2, 20.0)]
    assert store.holders(BULKHEAD_IN_GROUP) == 1
    release(holder)
    assert headers(store.admit_request(gates(breaker=False), "k")) == [(0, 1.0), (1, 40.0)]


def test_open_breaker_gives_slot_and_tokens_back(store: Store, clock: FakeClock) -> None:
    """An open breaker refuses last, with its remaining open time; the slot and tokens go back."""
    trip(store)
    clock.advance(4.0)
    refused = store.admit_request(gates(), "k")
    assert (refused.refused_by, refused.retry_after, refused.ticket) == ("breaker", 6.0, None)
    assert store.holders(BULKHEAD_IN_GROUP) == 0
    assert headers(refused) == [(2, 0.0), (3, 0.0)]


def test_half_open_admits_one_probe(store: Store, clock: FakeClock) -> None:
    """After the open period one admission is the probe; the next is refused and holds nothing."""
    g = gates(limits=False, bulkhead=False)
    trip(store)
    clock.advance(10.0)
    probe = store.admit_request(g, None)
    assert probe.refused_by is None
    assert probe.ticket is not None
    assert probe.ticket[1] == 1
    assert probe.transition is not None
    assert probe.transition.new is CircuitState.HALF_OPEN
    second = store.admit_request(g, None)
    assert (second.refused_by, second.retry_after) == ("breaker", 30.0)
    closing = store.record(BREAKER_IN_GROUP, probe.ticket, SUCCESS, 0.0)
    assert closing is not None
    assert closing.new is CircuitState.CLOSED
    assert store.admit_request(g, None).ticket == (probe.ticket[0] + 1, 0)


def test_admitted_request_holds_slot_and_ticket(store: Store) -> None:
    """Every gate admits: the slot is held until released, and a closed breaker's ticket is 0."""
    answer = store.admit_request(gates(), "k")
    assert (answer.refused_by, answer.retry_after, answer.ticket) == (None, 0.0, (0, 0))
    assert answer.hold is not None
    assert [r.wait for r in answer.limits] == [0.0, 0.0]
    assert store.holders(BULKHEAD_IN_GROUP) == 1
    release(answer)
    assert store.holders(BULKHEAD_IN_GROUP) == 0


def test_refusal_by_a_limit_leaves_bulkhead_and_breaker_untouched(store: Store) -> None:
    """A limit refusal never reaches the bulkhead or the breaker (no slot, no counted call)."""
    g = gates()
    for _ in range(2):
        release(store.admit_request(g, "k"))
    refused = store.admit_request(g, "k")
    assert refused.refused_by == "limit"
    assert store.holders(BULKHEAD_IN_GROUP) == 0
    assert store.view(BREAKER_IN_GROUP).rejected_calls == 0


@pytest.mark.anyio
async def test_async_admission_matches_sync(store: Store) -> None:
    """``aadmit_request`` gives the same answers as ``admit_request``."""
    g = gates()
    first = await store.aadmit_request(g, "k")
    assert headers(first) == [(1, 0.5), (2, 20.0)]
    refused = await store.aadmit_request(g, "k")
    assert (refused.refused_by, refused.retry_after) == ("bulkhead", 0.05)
    assert first.hold is not None
    await first.hold.arelease()
    assert store.holders(BULKHEAD_IN_GROUP) == 0
    await store.aclose()


def test_group_is_required() -> None:
    """An empty group is a ValueError naming group."""
    with pytest.raises(ValueError, match="group must be a non-empty str, got ''"):
        group_gates("", (PER_SECOND,))


def test_limits_must_have_distinct_names() -> None:
    """The same limit twice in one set of gates is a ValueError naming it."""
    with pytest.raises(ValueError, match=f"distinct names, got {PER_SECOND.name!r} twice"):
        group_gates("g", (PER_SECOND, PER_SECOND))


def test_settle_gives_slots_back_and_records_outcomes(store: Store) -> None:
    """One settlement call frees the slot and counts the failure; two failures open it."""
    first = store.admit_request(gates(limits=False), None)
    assert store.settle_requests(
        gates(limits=False), [Settlement(first.hold, first.ticket, FAILURE)]
    ) == [None]
    assert store.holders(BULKHEAD_IN_GROUP) == 0
    second = store.admit_request(gates(limits=False), None)
    (opened,) = store.settle_requests(
        gates(limits=False), [Settlement(second.hold, second.ticket, FAILURE)]
    )
    assert opened is not None
    assert (opened.old, opened.new) == (CircuitState.CLOSED, CircuitState.OPEN)
    assert store.admit_request(gates(limits=False), None).refused_by == "breaker"
    assert store.holders(BULKHEAD_IN_GROUP) == 0


@pytest.mark.anyio
async def test_settle_a_batch_in_one_call(store: Store) -> None:
    """Two requests settled together: outcomes in order, the second failure trips the breaker."""
    g = gates(limits=False, bulkhead=False)
    tickets = [(await store.aadmit_request(g, None)).ticket for _ in range(2)]
    found = await store.asettle_requests(g, [Settlement(None, t, FAILURE) for t in tickets])
    assert found[0] is None
    assert found[1] is not None
    assert found[1].new is CircuitState.OPEN
    await store.aclose()


def test_a_list_of_admissions_decides_in_order(store: Store, clock: FakeClock) -> None:
    """admit_requests: each request sees what the ones before it took, as one by one would."""
    g = gates()
    answers = store.admit_requests([(g, "a", None), (g, "a", None), (g, "b", None)])
    assert [a.refused_by for a in answers] == [None, "bulkhead", "bulkhead"]
    assert [headers(a) for a in answers] == [
        [(1, 0.5), (2, 20.0)],
        [(1, 0.5), (2, 20.0)],
        [(2, 0.0), (3, 0.0)],
    ]
    release(answers[0])
    again = store.admit_requests([(g, "a", (2, 1)), (g, "a", None), (g, "b", None)])
    assert [a.refused_by for a in again] == ["limit", None, "bulkhead"]
    assert [a.retry_after for a in again] == [0.5, 0.0, 0.05]
    assert [headers(a) for a in again] == [
        [(1, 0.5), (2, 20.0)],
        [(0, 1.0), (1, 40.0)],
        [(2, 0.0), (3, 0.0)],
    ]
    assert store.holders(BULKHEAD_IN_GROUP) == 1
    release(again[1])


def test_colocate_moves_the_keys_of_gates_already_used(redis_url: str) -> None:
    """Gates admitted before ``colocate`` are admitted after it under the group's hash tag."""
    import redis

    from seawall.stores._redis.keys import bucket_key, policy_key

    prefix = f"moved{next(_prefixes)}"
    store = RedisStore(redis_url, prefix=prefix)
    loose = Gates((PER_SECOND,), BULKHEAD, BREAKER)  # no group: each key tagged by its name
    client = redis.Redis.from_url(redis_url)

    def records(group: str) -> list[int]:
        found = [bucket_key(prefix, "per-second", "a", group)]
        found += [policy_key(prefix, "slots", "bulkhead", group)]
        found += [policy_key(prefix, "breaker", "breaker", group)]
        return [client.exists(key) for key in found]

    try:
        release(store.admit_request(loose, "a"))
        assert records("") == [1, 1, 1]
        store.colocate("moved", ["per-second", "slots", "breaker"])
        release(store.admit_request(loose, "a"))
        assert records("moved") == [1, 1, 1]
    finally:
        client.close()
        store.close()
