"""Differential tests: the Redis store's Lua scripts against seawall.stores._rules in Python.

Random event sequences go to a real redis-server (client time mode, a FakeClock that moves
forwards and jumps backwards) and to the Python rules on a plain Bucket, BreakerState or
lease dict; every answer must be equal, float for float.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _redis_server import RedisServer
from seawall._core.breaker import BreakerConfig, BreakerState
from seawall._core.limiter import Bucket
from seawall.stores import _rules
from seawall.stores._base import BreakerSpec, BulkheadSpec, Hold, LimiterSpec, Reservation
from seawall.stores._redis import replies
from seawall.stores._redis.keys import fmt
from seawall.stores._redis.store import _RECEIPT, RedisStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Time steps: small and large forward moves, and jumps backwards.
# Dyadic steps from a whole-second start keep sums exact, so boundaries (a lease ending
# exactly now, a probe exactly stale_attempt_timeout old) are hit, not just approached.
steps = st.one_of(
    st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 8.0, -0.25, -1.0, -3.0]),
    st.sampled_from([0.05, 0.1, 0.3, 2.5, -0.2]),
    st.floats(min_value=-4.0, max_value=8.0, allow_nan=False),
)
starts = st.one_of(
    st.sampled_from([1_700_000_000.0, 1_800_000_000.0]),
    st.floats(min_value=1.6e9, max_value=1.9e9),
)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One redis-server for the module; every example uses a fresh policy name."""
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def _store(server: RedisServer, clock: FakeClock) -> RedisStore:
    return RedisStore(server.url, time_source="client", clock=clock, timeout=5.0)


# -- limiter ---------------------------------------------------------------------------------

limiter_events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(
            st.just("reserve"),
            st.integers(1, 4),
            st.sampled_from([0.0, 0.125, 0.5, 2.0, math.inf]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.integers(1, 4)),
        st.tuples(st.just("block"), st.sampled_from([0.0, 0.25, 1.0, 4.0, 60.0, math.inf])),
        st.tuples(st.just("peek")),
        # answers lost: of a committed reservation (its tokens come back with the next one),
        # or of one still on its way (refused when it arrives, "late")
        st.tuples(st.just("lose_after"), st.integers(0, 30)),
        st.tuples(st.just("lose_before")),
        st.tuples(st.just("late"), st.integers(0, 30), st.integers(1, 4)),
        # a shared retry budget's step: deposit (whole, fractional or none), then take one
        st.tuples(st.just("withdraw"), st.sampled_from([0.0, 0.2, 0.5, 1.0, 2.5, 7.0])),
    ),
    min_size=1,
    max_size=40,
)


@SETTINGS
@given(
    interval=st.sampled_from([0.125, 0.25, 0.1, 1 / 3, 1.7]),
    burst=st.sampled_from([1.0, 2.5, 3.0, 10.0]),
    start=starts,
    events=limiter_events,
)
@example(  # a lost reservation given back under a Retry-After block: the block stays
    interval=0.25,
    burst=3.0,
    start=1_700_000_000.0,
    events=[("reserve", 3, 0.0), ("block", 4.0), ("lose_after", 0), ("reserve", 1, 0.0)],
)
def test_limiter_scripts_equal_rules(
    server: RedisServer, interval: float, burst: float, start: float, events: list[tuple]
) -> None:
    """Every answer (reserve with lost ones given back, cancel, block, peek, withdraw) equals
    _rules'."""
    clock = FakeClock(wall=start)
    store = _store(server, clock)
    spec = LimiterSpec(f"lim-{uuid.uuid4().hex}", interval, burst, max_block=5.0)
    bucket = Bucket(interval, burst)
    tickets: list[float] = [-math.inf, 0.0]
    receipts: dict[str, float] = {}
    committed: list[str] = []
    unsent: list[str] = []
    lost: list[str] = []
    reserve = _Reserve(store, spec, bucket, receipts)
    try:
        for event in events:
            now = clock.time()
            if event[0] == "time":
                clock.jump_wall(event[1])
            elif event[0] == "reserve":
                holder = uuid.uuid4().hex
                got = reserve(now, event[1], event[2], holder, tuple(lost))
                lost.clear()
                tickets.append(got.ticket)
                if got.wait <= event[2]:
                    committed.append(holder)
            elif event[0] == "lose_after" and committed:
                lost.append(committed[event[1] % len(committed)])
            elif event[0] == "lose_before":
                unsent.append(uuid.uuid4().hex)
                lost.append(unsent[-1])
            elif event[0] == "late" and unsent:
                reserve(now, event[2], 0.5, unsent[event[1] % len(unsent)], ())
            elif event[0] == "cancel":
                ticket = tickets[event[1] % len(tickets)]
                got_c = store.cancel(spec, "k", ticket, event[2])
                assert got_c == _rules.bucket_cancel(bucket, ticket, event[2])
            elif event[0] == "block":
                got_b = store.block(spec, "k", event[1])
                assert got_b == _rules.bucket_block(bucket, now, event[1], spec.max_block)
            elif event[0] == "peek":
                assert store.peek(spec, "k") == _rules.bucket_peek(bucket, now)
            elif event[0] == "withdraw":
                got_w = store.withdraw(spec, "k", event[1])
                assert got_w == _rules.bucket_withdraw(bucket, now, event[1])
    finally:
        store.close()


class _Reserve:
    """Runs limiter_reserve with holder ids on Redis and on the rules; compares the answers."""

    def __init__(
        self, store: RedisStore, spec: LimiterSpec, bucket: Bucket, receipts: dict[str, float]
    ) -> None:
        self.store, self.spec, self.bucket, self.receipts = store, spec, bucket, receipts

    def __call__(
        self, now: float, tokens: int, max_wait: float, holder: str, lost: tuple[str, ...]
    ) -> Reservation:
        rkey, fixed = self.store._bucket(self.spec, "k")
        args = [repr(now), *fixed, str(tokens), fmt(max_wait), "5.0", holder, *lost]
        got = replies.reservation(self.store._run("limiter_reserve", rkey, args))
        want = _rules.bucket_reserve_held(
            self.bucket, self.receipts, now, tokens, max_wait, holder, lost
        )
        assert got == want
        return got


# -- breaker ---------------------------------------------------------------------------------

breaker_events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(st.just("admit")),
        st.tuples(st.just("admit")),
        st.tuples(st.just("record"), st.integers(0, 30), st.sampled_from([0, 1, 1, 2])),
        st.tuples(st.just("record"), st.just(-1), st.sampled_from([0, 1, 1, 1, 2])),
        st.tuples(st.just("force"), st.sampled_from(["open", "closed", "reset"])),
        st.tuples(st.just("view")),
        # answers lost: of an admitted probe (given back with the next admission), or of an
        # admission still on its way (refused when it arrives, "late")
        st.tuples(st.just("lose_after"), st.integers(0, 30)),
        st.tuples(st.just("lose_before")),
        st.tuples(st.just("late"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=50,
)


@settings(SETTINGS, max_examples=300)
@given(
    max_failures=st.integers(1, 2),
    reset_timeout=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    half_open=st.integers(1, 3),
    success_threshold=st.integers(1, 2),
    stale=st.sampled_from([1.0, 2.0, 3.0]),
    start=starts,
    events=breaker_events,
)
@example(  # an admission cancelled before it arrives is refused when it does: no probe taken
    max_failures=1,
    reset_timeout=0.5,
    half_open=1,
    success_threshold=1,
    stale=3.0,
    start=1_700_000_000.0,
    events=[
        ("lose_before",),
        ("admit",),
        ("record", -1, 1),
        ("time", 1.0),
        ("late", 0),
        ("admit",),
        ("view",),
    ],
)
@example(  # a lost probe is given back: the next caller is the probe, not refused
    max_failures=1,
    reset_timeout=0.5,
    half_open=1,
    success_threshold=1,
    stale=3.0,
    start=1_700_000_000.0,
    events=[
        ("admit",),
        ("record", -1, 1),
        ("time", 1.0),
        ("admit",),
        ("lose_after", -1),
        ("admit",),
        ("record", -1, 0),
        ("view",),
    ],
)
def test_breaker_scripts_equal_rules(
    server: RedisServer,
    max_failures: int,
    reset_timeout: float,
    half_open: int,
    success_threshold: int,
    stale: float,
    start: float,
    events: list[tuple],
) -> None:
    """Every admit, record, force and view answer (transitions included) equals _rules'."""
    cfg = BreakerConfig(
        max_failures, reset_timeout, half_open, success_threshold, stale,
        None, None, None, 10, 10,
    )  # fmt: skip
    clock = FakeClock(wall=start)
    store = _store(server, clock)
    spec = BreakerSpec(f"brk-{uuid.uuid4().hex}", cfg)
    state = BreakerState()
    last: float | None = None
    tickets: list[tuple[int, int]] = [(0, 0), (0, 1)]
    receipts: dict[str, Any] = {}
    admitted: list[str] = []
    unsent: list[str] = []
    lost: list[str] = []

    def admit(holder: str, gone: tuple[str, ...]) -> None:
        args = [_RECEIPT, holder, *gone]
        key, fixed = store._breaker_args(spec, tuple(args))
        reply = store._run("breaker_admit", key, fixed)
        got = replies.admission(reply), replies.transition(reply)
        assert got == _rules.breaker_admit_held(state, cfg, now, receipts, holder, gone)
        if isinstance(got[0], tuple):
            tickets.append(got[0])
            admitted.append(holder)

    try:
        for event in events:
            now = clock.time()
            if event[0] == "time":
                clock.jump_wall(event[1])
                continue
            if event[0] == "lose_after":  # the store hears of it with the next admission
                if admitted:
                    lost.append(admitted[event[1] % len(admitted)])
                continue
            if event[0] == "lose_before":
                unsent.append(uuid.uuid4().hex)
                lost.append(unsent[-1])
                continue
            if event[0] == "late" and not unsent:
                continue  # nothing was lost: the store sees nothing
            last = _rules.rebase_breaker(state, now if last is None else last, now)
            if event[0] == "admit":
                admit(uuid.uuid4().hex, tuple(lost))
                lost.clear()
            elif event[0] == "late" and unsent:
                admit(unsent[event[1] % len(unsent)], ())
            elif event[0] == "record":
                ticket = tickets[event[1] % len(tickets)]  # -1: the latest ticket
                got_r = store.record(spec, ticket, event[2], 0.0)
                assert got_r == _rules.breaker_record(state, cfg, now, ticket, event[2], 0.0)
            elif event[0] == "force":
                assert store.force(spec, event[1]) == _rules.breaker_force(state, event[1], now)
            elif event[0] == "view":
                assert store.view(spec) == _rules.breaker_view(state, cfg, now)
    finally:
        store.close()


# -- breaker windows --------------------------------------------------------------------------

window_events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(st.just("admit")),
        # record on the latest ticket (or an older one), with an outcome and a duration
        st.tuples(
            st.just("record"),
            st.sampled_from([-1, -1, -1, 0]),
            st.sampled_from([0, 0, 1, 1, 2]),
            st.sampled_from([0.0, 0.5, 1.0, 1.5]),
        ),
        st.tuples(st.just("force"), st.sampled_from(["open", "closed", "reset"])),
        st.tuples(st.just("view")),
    ),
    min_size=1,
    max_size=60,
)


def _redis_window(store: RedisStore, spec: BreakerSpec) -> tuple[str, int, int, list[list[int]]]:
    key = store._breaker_args(spec, ())[0]
    raw = store._call(lambda c: c.hmget(key, "w", "wf", "ws", "bk"))
    flags, failures, slow, buckets = (b"" if v is None else v for v in raw)
    parsed = [
        [int(float(i)), int(c), int(f), int(sl)]
        for i, c, f, sl in (b.split(":") for b in buckets.decode().split(",") if b)
    ]
    return flags.decode(), int(failures or 0), int(slow or 0), parsed


def _python_window(state: BreakerState) -> tuple[str, int, int, list[list[int]]]:
    flags = "".join(str(f) for f in state.window)
    return flags, state.window_failures, state.window_slow, [list(b) for b in state.buckets]


@settings(SETTINGS, max_examples=300)
@given(
    window=st.one_of(
        st.tuples(st.just(None), st.integers(1, 6), st.just(10)),  # a count window of N calls
        st.tuples(st.sampled_from([1.0, 2.0, 4.0, 0.3, 1.7]), st.just(100), st.integers(1, 5)),
    ),
    rates=st.sampled_from(
        [(0.5, None, None), (None, 1.0, 0.5), (0.75, 1.0, 1.0), (1.0, 0.5, 0.25)]
    ),
    minimum_calls=st.integers(1, 5),
    max_failures=st.sampled_from([2, 100]),
    start=starts,
    events=window_events,
)
@example(  # a failure in bucket [0, 1) stops counting exactly at 4.0: the success stays closed
    window=(4.0, 100, 4),
    rates=(0.5, None, None),
    minimum_calls=2,
    max_failures=100,
    start=1_700_000_000.0,
    events=[("admit",), ("record", -1, 1, 0.0), ("time", 4.0), ("admit",), ("record", -1, 0, 0.0)],
)
def test_breaker_window_scripts_equal_rules(
    server: RedisServer,
    window: tuple[float | None, int, int],
    rates: tuple[float | None, float | None, float | None],
    minimum_calls: int,
    max_failures: int,
    start: float,
    events: list[tuple],
) -> None:
    """Count and time windows: every transition and the stored window equal _rules'."""
    duration, size, buckets = window
    cfg = BreakerConfig(
        max_failures, 1.0, 1, 1, 2.0, rates[0], rates[1], rates[2], size, minimum_calls,
        window_duration=duration, window_buckets=buckets,
    )  # fmt: skip
    clock = FakeClock(wall=start)
    store = _store(server, clock)
    spec = BreakerSpec(f"win-{uuid.uuid4().hex}", cfg)
    state = BreakerState()
    last: float | None = None
    tickets: list[tuple[int, int]] = [(0, 0)]
    try:
        for event in events:
            now = clock.time()
            if event[0] == "time":
                clock.jump_wall(event[1])
                continue
            last = _rules.rebase_breaker(state, now if last is None else last, now)
            if event[0] == "admit":
                got = store.admit(spec)
                assert got == _rules.breaker_admit(state, cfg, now)
                if isinstance(got[0], tuple):
                    tickets.append(got[0])
            elif event[0] == "record":
                ticket = tickets[event[1] % len(tickets)]
                got_r = store.record(spec, ticket, event[2], event[3])
                assert got_r == _rules.breaker_record(state, cfg, now, ticket, event[2], event[3])
            elif event[0] == "force":
                assert store.force(spec, event[1]) == _rules.breaker_force(state, event[1], now)
            else:
                assert store.view(spec) == _rules.breaker_view(state, cfg, now)
            assert _redis_window(store, spec) == _python_window(state)
    finally:
        store.close()


# -- bulkhead leases -------------------------------------------------------------------------

lease_events = st.lists(
    st.one_of(
        st.tuples(st.just("time"), steps),
        st.tuples(st.just("acquire"), st.sampled_from([0.5, 1.0, 3.0])),
        st.tuples(st.just("acquire"), st.sampled_from([0.5, 1.0, 3.0])),
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("count")),
        # a renewal pass: these holders (some released, some never granted) renew
        st.tuples(st.just("renew"), st.lists(st.integers(0, 30), max_size=3)),
        # an acquisition whose answer was lost, cancelled by the next call (or arriving later)
        st.tuples(st.just("lose"), st.sampled_from([0.5, 1.0, 3.0])),
        st.tuples(st.just("late"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=40,
)


@SETTINGS
@given(
    max_concurrent=st.integers(1, 4),
    start=starts,
    events=lease_events,
)
def test_lease_scripts_equal_rules(
    server: RedisServer, max_concurrent: int, start: float, events: list[tuple]
) -> None:
    """Every lease answer (acquire, renew, cancel of a lost one) equals _rules.lease_acquire's."""
    clock = FakeClock(wall=start)
    store = _store(server, clock)
    name = f"bh-{uuid.uuid4().hex}"
    leases: dict[str, float] = {}
    tombs: dict[str, float] = {}
    seen: list[str] = []  # every holder id used so far
    lost: list[str] = []
    holds: list[tuple[str, Hold]] = []
    run = _Leases(store, name, max_concurrent, leases, tombs, clock)
    try:
        for event in events:
            now = clock.time()
            if event[0] == "time":
                clock.jump_wall(event[1])
            elif event[0] == "acquire":
                holder = uuid.uuid4().hex
                seen.append(holder)
                if run(event[1], holder, (), tuple(lost)):
                    holds.append((holder, _LeaseHold(store, BulkheadSpec(name, 1), holder)))
                lost.clear()
            elif event[0] == "release" and holds:
                holder, hold = holds.pop(event[1] % len(holds))
                hold.release()
                leases.pop(holder, None)
            elif event[0] == "renew" and seen:
                renew = tuple(seen[i % len(seen)] for i in event[1])
                run(1.0, "", renew, tuple(lost))
                lost.clear()
            elif event[0] == "lose":
                lost.append(uuid.uuid4().hex)
                seen.append(lost[-1])
            elif event[0] == "late" and seen:
                # a lost acquisition reaching Redis after (or before) its cancellation
                run(1.0, seen[event[1] % len(seen)], (), ())
            else:
                spec = BulkheadSpec(name, max_concurrent)
                assert store.holders(spec) == sum(1 for end in leases.values() if end > now)
    finally:
        store.close()


class _Leases:
    """Runs lease_acquire on Redis and on the rules, and compares the answers."""

    def __init__(
        self,
        store: RedisStore,
        name: str,
        max_concurrent: int,
        leases: dict[str, float],
        tombs: dict[str, float],
        clock: FakeClock,
    ) -> None:
        self.store, self.name, self.max_concurrent = store, name, max_concurrent
        self.leases, self.tombs, self.clock = leases, tombs, clock

    def __call__(
        self, lease: float, holder: str, renew: tuple[str, ...], cancel: tuple[str, ...]
    ) -> bool:
        now = self.clock.time()
        fixed = [repr(now), self.name, str(self.max_concurrent), repr(lease), holder]
        reply = self.store._run(
            "lease_acquire",
            f"seawall:{{{name_tag(self.name)}}}:bulkhead",
            [*fixed, str(len(renew)), *renew, *cancel],
        )
        wait = _rules.lease_acquire(
            self.leases, now, holder, self.max_concurrent, lease, renew, cancel, self.tombs
        )
        assert float(reply[0]) == wait
        assert (int(reply[1]) >= 0) == (wait == 0.0 and holder != "")
        assert int(reply[2]) == len(self.leases)
        return int(reply[1]) >= 0


def name_tag(name: str) -> str:
    """The hash tag the store uses for ``name`` (read back from a real key)."""
    from seawall.stores._redis.keys import policy_key

    return policy_key("seawall", name, "bulkhead").split("{")[1].split("}")[0]


class _LeaseHold(Hold):
    """Releases a lease taken through the raw script, the way the store's holds do."""

    def __init__(self, store: RedisStore, spec: BulkheadSpec, holder: str) -> None:
        self._store, self._spec, self._holder = store, spec, holder
        self.slot = -1

    def release(self) -> None:
        key = f"seawall:{{{name_tag(self._spec.name)}}}:bulkhead"
        self._store._call(lambda c: c.hdel(key, "h:" + self._holder))

    async def arelease(self) -> None:
        self.release()
