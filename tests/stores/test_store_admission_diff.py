"""Differential test: the Redis ``admit`` script against the Python rules of an admission.

Random sequences of admissions (two keyed limits with random costs, a bulkhead, a breaker),
releases, outcomes and clock moves (forwards and backwards) go to a RedisStore on a real
redis-server (client time) and to a MemoryStore, which decides with
``stores._admit.decide`` over ``stores._rules``; every answer must be equal, float for float.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _admission_gates import full_gates, shape
from _redis_server import RedisServer
from seawall.stores import MemoryStore, RedisStore
from seawall.stores._base import (
    Hold,
)
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

steps = st.one_of(
    st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 8.0, -0.25, -1.0]),
    st.floats(min_value=-2.0, max_value=6.0, allow_nan=False),
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(st.just("admit"), st.sampled_from(["a", "b"]), st.integers(1, 3)),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("record"), st.integers(0, 20), st.sampled_from([0, 1, 2])),
    ),
    min_size=1,
    max_size=40,
)


@SETTINGS
@given(
    burst=st.sampled_from([1.0, 2.0, 3.0]),
    interval=st.sampled_from([0.125, 0.25, 1 / 3]),
    slots=st.integers(1, 3),
    half_open=st.integers(1, 2),
    script=events,
)
def test_admit_script_equals_rules(
    shared_redis_server: RedisServer,
    burst: float,
    interval: float,
    slots: int,
    half_open: int,
    script: list[tuple],
) -> None:
    """Every admission's answer from Redis equals the MemoryStore's (the Python rules)."""
    clock = FakeClock(wall=1_700_000_000.0)
    redis = RedisStore(shared_redis_server.url, time_source="client", clock=clock, timeout=5.0)
    memory = MemoryStore(clock=clock)
    gates = full_gates(burst, interval, slots, half_open)
    assert gates.breaker is not None
    holds: list[tuple[Hold, Hold]] = []
    tickets: list[tuple[tuple[int, int], tuple[int, int]]] = []
    try:
        for event in script:
            if event[0] == "time":
                clock.jump_wall(event[1])
            elif event[0] == "admit":
                costs = (event[2], 1)
                got = redis.admit_request(gates, event[1], costs)
                want = memory.admit_request(gates, event[1], costs)
                assert shape(got) == shape(want)
                if got.hold is not None and want.hold is not None:
                    holds.append((got.hold, want.hold))
                if got.ticket is not None and want.ticket is not None:
                    tickets.append((got.ticket, want.ticket))
            elif event[0] == "release" and holds:
                for hold in holds.pop(event[1] % len(holds)):
                    hold.release()
            elif event[0] == "record" and tickets:
                mine, theirs = tickets.pop(event[1] % len(tickets))
                assert redis.record(gates.breaker, mine, event[2], 0.0) == memory.record(
                    gates.breaker, theirs, event[2], 0.0
                )
    finally:
        redis.close()
