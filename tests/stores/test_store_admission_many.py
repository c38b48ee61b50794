"""Differential test: a list of admissions in one call decides as the same admissions one by one.

Random sequences of batches of admissions (two keyed limits with random costs, a bulkhead, a
breaker), releases, outcomes and clock moves go to three stores on the same fake clock: a
RedisStore deciding each batch with ``admit_requests`` (the ``admit_many`` script: one call),
a RedisStore deciding the same requests one ``admit_request`` after another, and a
MemoryStore (the Python rules, ``stores._admit.decide``). Every answer must be equal, float
for float, so the list form equals both the single script and the rules.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _admission_gates import full_gates, shape
from _redis_server import RedisServer
from seawall.stores import MemoryStore, RedisStore
from seawall.stores._base import (
    BulkheadSpec,
    Hold,
    LimiterSpec,
    Request,
    Settlement,
    group_gates,
)
from seawall.stores._redis import admission
from seawall.stores._redis.scripts import run, script
from seawall.stores._redis.store import _RECEIPT
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_prefixes = itertools.count()

steps = st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 8.0, -0.25])
# A key of any text: the batch's members travel as one JSON argument (escapes, non-ASCII).
members = st.lists(
    st.tuples(st.sampled_from(["a", "b", 'ü"\\\n客\x00']), st.integers(1, 3)),
    min_size=1,
    max_size=6,
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(st.just("batch"), members),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("record"), st.integers(0, 20), st.sampled_from([0, 1, 2])),
    ),
    min_size=1,
    max_size=25,
)


@SETTINGS
@given(burst=st.sampled_from([1.0, 2.0, 3.0]), slots=st.integers(1, 3),
       half_open=st.integers(1, 2), script=events)  # fmt: skip
def test_admit_many_equals_one_by_one_and_the_rules(
    shared_redis_server: RedisServer, burst: float, slots: int, half_open: int, script: list[tuple]
) -> None:
    """Each batch's answers equal one admit_request after another, on Redis and in memory."""
    clock = FakeClock(wall=1_700_000_000.0)

    def redis() -> RedisStore:
        prefix = f"many{next(_prefixes)}"
        return RedisStore(
            shared_redis_server.url, time_source="client", clock=clock, timeout=5.0, prefix=prefix
        )

    many, single, memory = redis(), redis(), MemoryStore(clock=clock)
    gates = full_gates(burst, 0.25, slots, half_open)
    assert gates.breaker is not None
    holds: list[list[Hold]] = []
    tickets: list[list[tuple[int, int]]] = []
    try:
        for event in script:
            if event[0] == "time":
                clock.jump_wall(event[1])
            elif event[0] == "batch":
                requests: list[Request] = [(gates, key, (cost, 1)) for key, cost in event[1]]
                got = many.admit_requests(requests)
                one = [single.admit_request(*r) for r in requests]
                want = [memory.admit_request(*r) for r in requests]
                assert [shape(a) for a in got] == [shape(a) for a in one]
                assert [shape(a) for a in got] == [shape(a) for a in want]
                for answers in zip(got, one, want, strict=True):
                    if answers[0].hold is not None:
                        holds.append([a.hold for a in answers if a.hold is not None])
                    if answers[0].ticket is not None:
                        tickets.append([a.ticket for a in answers if a.ticket is not None])
            elif event[0] == "release" and holds:
                for hold in holds.pop(event[1] % len(holds)):
                    hold.release()
            elif event[0] == "record" and tickets:
                found = tickets.pop(event[1] % len(tickets))
                told = [
                    s.record(gates.breaker, t, event[2], 0.0)
                    for s, t in zip((many, single, memory), found, strict=True)
                ]
                assert told[0] == told[1] == told[2]
    finally:
        many.close()
        single.close()


def test_two_sets_of_gates_in_one_call(shared_redis_server: RedisServer) -> None:
    """Members of two routes' gates (keyed and unkeyed limits) decide as one by one would."""
    clock = FakeClock(wall=1_700_000_000.0)
    many = RedisStore(shared_redis_server.url, time_source="client", clock=clock, prefix="two-many")
    single = RedisStore(
        shared_redis_server.url, time_source="client", clock=clock, prefix="two-single"
    )
    first = group_gates("g", (LimiterSpec("l", 1.0, 2.0, keyed=True),), BulkheadSpec("b", 2, 60.0))
    both = (LimiterSpec("l", 1.0, 2.0, keyed=True), LimiterSpec("m", 3.0, 1.0))
    second = group_gates("g", both)
    requests: list[Request] = [
        (first, "a", None), (second, "a", (1, 1)), (first, "a", None),
        (second, "b", None), (first, "b", None), (second, "a", None),
    ]  # fmt: skip
    try:
        got = [shape(a) for a in many.admit_requests(requests)]
        assert got == [shape(single.admit_request(*r)) for r in requests]
        assert [a[0] for a in got] == [None, None, "limit", "limit", None, "limit"]
    finally:
        many.close()
        single.close()


def test_each_members_reply_is_the_single_scripts_reply(shared_redis_server: RedisServer) -> None:
    """Each member's part of the batch's JSON reply is, item for item, admit.lua's reply as text."""
    clock = FakeClock(wall=1_700_000_000.0)
    stores = [
        RedisStore(shared_redis_server.url, time_source="client", clock=clock, prefix=prefix)
        for prefix in ("raw-many", "raw-single")
    ]
    many, single = stores
    gates = full_gates(2.0, 0.25, 1, 1)
    requests: list[Request] = [(gates, "a", (1, 1)), (gates, "a", (2, 1)), (gates, "b", (1, 1))]
    try:
        _, keys, args = many._admit_many(requests)
        parts = admission.split(run(many._conn(), script("admit_many"), keys, args, many.url))
        wants = []
        for g, key, costs in requests:
            call = single._admission(g, key)
            one = admission.arguments(call, g, key, costs or (1, 1), single._now(), _RECEIPT)
            wants.append(run(single._conn(), script("admit"), call.keys, one, single.url))
        assert parts == wants
        # Admitted (slot 0, the breaker reached); the limit refuses 2 tokens for 0.25 s; the
        # one slot is taken. Slots and gate counts are numbers in Lua: text here, as from Redis.
        assert [p[:5] for p in parts] == [
            ["", "0", "0", "2", "0"],
            ["limit", "0.25", "-1", "0", "0"],
            ["bulkhead", "60", "-1", "1", "0"],
        ]
    finally:
        for store in stores:
            store.close()


def test_a_batch_leaves_each_bucket_as_one_by_one_does(
    shared_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """After a batch, each bucket's record and expiry equal what admitting one by one leaves."""
    import redis

    clock = FakeClock(wall=1_700_000_000.0)
    many, single = (
        RedisStore(shared_redis_server.url, time_source="client", clock=clock, prefix=prefix)
        for prefix in (f"left-many{next(_prefixes)}", f"left-single{next(_prefixes)}")
    )
    gates = full_gates(2.0, 0.25, 3, 1)
    requests: list[Request] = [
        (gates, "a", (1, 1)), (gates, "b", (1, 1)), (gates, "a", (2, 1)), (gates, "b", (1, 1)),
        (gates, "a", (1, 1)),
    ]  # fmt: skip
    client = redis.Redis.from_url(shared_redis_server.url, decode_responses=True)
    try:
        # Client b's first record is unreadable: both rewrite it whole (its shape included).
        for store in (many, single):
            client.hset(store._bucket(gates.limits[0], "b")[0], mapping={"fa": "?", "ln": "1"})
        with caplog.at_level("WARNING", logger="seawall"):
            many.admit_requests(requests)
            for request in requests:
                single.admit_request(*request)
        assert sum("unreadable limiter record" in r.getMessage() for r in caplog.records) == 2
        for spec in gates.limits:
            for key in ("a", "b"):
                left, want = (s._bucket(spec, key)[0] for s in (many, single))
                assert client.hgetall(left) == client.hgetall(want)
                assert set(client.hgetall(left)) >= {"fa", "bu", "ln", "kind", "name", "key"}
                assert client.ttl(left) == client.ttl(want) > 0
    finally:
        client.close()
        many.close()
        single.close()


def test_a_batch_leaves_every_gates_record_as_one_by_one_does(
    shared_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Batches of admissions and settlements leave each bucket, lease and breaker record (and
    its expiry) as one by one does, an unreadable breaker reset once, a refused slot freed."""
    import redis

    from seawall import CircuitState
    from seawall._core.breaker import FAILURE

    clock = FakeClock(wall=1_700_000_000.0)
    many, single = (
        RedisStore(shared_redis_server.url, time_source="client", clock=clock, prefix=prefix)
        for prefix in (f"all-many{next(_prefixes)}", f"all-single{next(_prefixes)}")
    )
    gates = full_gates(2.0, 0.25, 2, 1)
    client = redis.Redis.from_url(shared_redis_server.url, decode_responses=True)

    def records(store: RedisStore) -> list[object]:
        call = store._admission(gates, "a")
        keys = [*call.limit_keys, call.breaker_key]
        found: list[object] = [(client.hgetall(k), client.ttl(k)) for k in keys]
        leases = client.hgetall(call.bulkhead_key)  # fields name each store's own holders
        return [*found, sorted(leases.values()), client.ttl(call.bulkhead_key)]

    def both(requests: list[Request]) -> list[tuple[object, ...]]:
        got = many.admit_requests(requests)
        one = [single.admit_request(*request) for request in requests]
        assert [shape(a) for a in got] == [shape(a) for a in one]
        assert records(many) == records(single)
        return [(a, b) for a, b in zip(got, one, strict=True)]

    try:
        for store in (many, single):
            client.hset(store._admission(gates, "a").breaker_key, mapping={"st": "?", "gen": "1"})
        with caplog.at_level("WARNING", logger="seawall"):
            first = both([(gates, key, None) for key in ("a", "b", "a", "b", "a")])
        assert sum("unreadable breaker" in r.getMessage() for r in caplog.records) == 2
        admitted = [pair for pair in first if pair[0].ticket is not None]
        assert len(admitted) == 2  # two slots
        batch = [Settlement(a.hold, a.ticket, FAILURE, 0.0) for a, _ in admitted]
        told = many.settle_requests(gates, batch)
        assert told == [
            t for _, b in admitted
            for t in single.settle_requests(gates, [Settlement(b.hold, b.ticket, FAILURE, 0.0)])
        ]  # fmt: skip
        assert told[0] is None  # two failures trip it
        assert told[1] is not None
        assert (told[1].old, told[1].new) == (CircuitState.CLOSED, CircuitState.OPEN)
        assert records(many) == records(single)
        # The breaker refuses each member after its slot was taken; the slot goes back at once.
        refused = both([(gates, key, None) for key in ("c", "d", "e")])
        assert [a.refused_by for a, _ in refused] == ["breaker"] * 3
    finally:
        client.close()
        many.close()
        single.close()
