"""KeyedRateLimiter: one bucket per key, a hard cap on keys, eviction that never forgives."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall import KeyedRateLimiter, RateLimitDecision, RateLimiterStats, RateLimitExceededError
from seawall._core.limiter import schedule
from seawall._core.limiter_keyed import KeyedBuckets, KeysFull
from seawall.testing import FakeClock

INF = float("inf")


def test_keys_have_separate_buckets(clock: FakeClock) -> None:
    """Draining one key leaves the others full."""
    keyed = KeyedRateLimiter(rate=1, burst=2, clock=clock)
    assert [keyed.try_acquire("a") for _ in range(3)] == [True, True, False]
    assert keyed.try_acquire("b") is True
    assert keyed.tokens("a") == 0.0
    assert keyed.tokens("b") == 1.0
    assert keyed.tokens("never-seen") == 2.0


def test_consume_decision_per_key(clock: FakeClock) -> None:
    """consume(key) reports that key's bucket exactly."""
    keyed = KeyedRateLimiter(rate=2, burst=2, clock=clock)
    assert keyed.consume("a") == RateLimitDecision(True, 2.0, 1, 0.5, 0.0)
    assert keyed.consume("a") == RateLimitDecision(True, 2.0, 0, 1.0, 0.0)
    assert keyed.consume("a") == RateLimitDecision(False, 2.0, 0, 1.0, 0.5)


def test_take_gives_consumes_numbers_and_counts_the_same(clock: FakeClock) -> None:
    """take(key) answers (wait, remaining, reset) as consume does, charging only when granted."""
    keyed = KeyedRateLimiter(rate=2, burst=2, clock=clock)
    assert keyed.take("a") == (0.0, 1, 0.5)
    assert keyed.take("a", 2) == (0.5, 1, 0.5)  # refused: nothing taken
    assert keyed.take("a") == (0.0, 0, 1.0)
    assert keyed.take("b") == (0.0, 1, 0.5)
    assert keyed.take("a") == (0.5, 0, 1.0)
    assert (keyed.stats.total_acquired, keyed.stats.total_rejected) == (3, 2)


def test_cap_is_respected_and_full_keys_are_evicted(clock: FakeClock) -> None:
    """At the cap, a new key takes the place of a key whose bucket has refilled."""
    keyed = KeyedRateLimiter(rate=1, burst=1, max_keys=3, clock=clock)
    for key in "abc":
        keyed.try_acquire(key)
    clock.advance(1.0)
    for key in "def":
        assert keyed.try_acquire(key) is True
        assert len(keyed) == 3
    assert set(keyed._buckets.full_at) == set("def")


def test_keys_with_quota_are_never_evicted(clock: FakeClock) -> None:
    """At the cap with every key carrying quota, new keys are refused and old ones stay limited."""
    keyed = KeyedRateLimiter(rate=1, burst=1, max_keys=3, clock=clock)
    for key in "abc":
        keyed.try_acquire(key)
    for stranger in range(100):  # a flood of new keys
        assert keyed.try_acquire(stranger) is False
    assert len(keyed) == 3
    assert keyed.try_acquire("a") is False  # the flood did not reset "a"
    decision = keyed.consume("z")
    assert (decision.granted, decision.retry_after) == (False, 1.0)
    assert keyed.stats == RateLimiterStats(3, 102, 0.0, 0)


def test_new_key_refused_at_cap_raises_when_blocking(clock: FakeClock) -> None:
    """A blocking acquire for a new key at a full cap raises at once (fail-closed)."""
    keyed = KeyedRateLimiter(rate=1, burst=1, max_keys=1, clock=clock)
    keyed.acquire("a")
    with pytest.raises(RateLimitExceededError) as info:
        keyed.acquire("b")
    assert info.value.retry_after == 1.0
    assert keyed.acquire("b", blocking=False) is False
    assert clock.monotonic() == 0.0


def test_busy_front_keys_do_not_hide_free_ones(clock: FakeClock) -> None:
    """Old keys still carrying quota are rotated past, so a refilled key behind them is found."""
    keyed = KeyedRateLimiter(rate=1, burst=5, max_keys=3, clock=clock)
    keyed.try_acquire("busy1", 5)
    keyed.try_acquire("busy2", 5)
    keyed.try_acquire("idle")
    clock.advance(1.0)
    assert keyed.try_acquire("new") is True
    assert set(keyed._buckets.full_at) == {"busy1", "busy2", "new"}


def test_refusal_waits_and_eviction_order_are_exact(clock: FakeClock) -> None:
    """At the cap, a new key waits exactly for the earliest refill, then takes that key's place."""
    keyed = KeyedRateLimiter(rate=1, burst=2, max_keys=3, clock=clock)
    keyed.try_acquire("a", 2)  # full again at 2.0
    keyed.try_acquire("b")  # 1.0
    keyed.try_acquire("c")  # 1.0
    clock.advance(0.5)
    keyed.try_acquire("b")  # served again: full at 2.0 now, though filed at 1.0
    assert keyed.consume("x").retry_after == 0.5  # c, full again at 1.0
    clock.advance(0.5)
    assert keyed.try_acquire("x") is True
    assert set(keyed._buckets.full_at) == {"a", "b", "x"}
    assert keyed.consume("y").retry_after == 1.0  # a, b and x are all full again at 2.0
    clock.advance(1.0)
    assert [keyed.try_acquire(k) for k in ("y", "z", "w")] == [True, True, True]
    assert set(keyed._buckets.full_at) == {"y", "z", "w"}


class NoWalkDict(dict[object, float]):
    """A dict that fails any attempt to walk it (the scan that made refusals cost O(n))."""

    def __iter__(self) -> Any:
        raise AssertionError("walked the key map")

    def items(self) -> Any:
        raise AssertionError("walked the key map")

    def values(self) -> Any:
        raise AssertionError("walked the key map")

    def keys(self) -> Any:
        raise AssertionError("walked the key map")


def test_refusing_and_evicting_never_walk_the_key_map(clock: FakeClock) -> None:
    """A flood of new keys at the cap is refused or admitted without scanning held keys."""
    keyed = KeyedRateLimiter(rate=1, burst=1, max_keys=100, clock=clock)
    keyed._buckets.full_at = NoWalkDict()
    for key in range(100):
        keyed.try_acquire(key)
    for round_ in range(3):
        for stranger in range(1_000):
            keyed.try_acquire(("stranger", round_, stranger))
            keyed.try_acquire(stranger % 100)  # known keys keep being served meanwhile
        clock.advance(0.5)
    buckets = keyed._buckets
    assert (len(buckets.full_at), len(buckets.heap)) == (100, 100)


def test_reset_forgets_the_eviction_order_too(clock: FakeClock) -> None:
    """After reset(), the cap fills and evicts as on a fresh limiter."""
    keyed = KeyedRateLimiter(rate=1, burst=1, max_keys=2, clock=clock)
    keyed.try_acquire("a")
    keyed.try_acquire("b")
    keyed.reset()
    keyed.try_acquire("c")
    keyed.try_acquire("d")
    assert keyed.try_acquire("e") is False
    clock.advance(1.0)
    assert keyed.try_acquire("e") is True
    assert set(keyed._buckets.full_at) == {"d", "e"}


def test_sync_waiter_per_key(clock: FakeClock) -> None:
    """A blocking acquire waits for its own key's refill only."""
    keyed = KeyedRateLimiter(rate=2, burst=1, clock=clock)
    keyed.acquire("a")
    keyed.acquire("b")
    assert keyed.acquire("a") is True
    assert clock.monotonic() == 0.5


@pytest.mark.anyio
async def test_async_waiters_fifo_per_key(clock: FakeClock) -> None:
    """Waiters on one key are served in arrival order at exact times."""
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    granted: list[tuple[int, float]] = []

    async def waiter(i: int) -> None:
        await keyed.acquire_async("k")
        granted.append((i, clock.monotonic()))

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(waiter, i)
            await anyio.wait_all_tasks_blocked()
        for _ in range(4):
            clock.advance(1.0)
            await anyio.wait_all_tasks_blocked()
    assert granted == [(i, float(i)) for i in range(5)]


@pytest.mark.anyio
async def test_cancelled_keyed_waiter_returns_tokens(clock: FakeClock) -> None:
    """Cancelling the last waiter on a key gives that key its token back."""
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    keyed.acquire("k")
    scope = anyio.CancelScope()

    async def doomed() -> None:
        with scope:
            await keyed.acquire_async("k")

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        assert keyed.tokens("k") == -1.0
        scope.cancel()
    assert keyed.tokens("k") == 0.0


@pytest.mark.anyio
async def test_async_timeout_fails_at_once(clock: FakeClock) -> None:
    """acquire_async(key, timeout) shorter than the wait raises without sleeping."""
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    await keyed.acquire_async("k")
    with pytest.raises(RateLimitExceededError) as info:
        await keyed.acquire_async("k", timeout=0.5)
    assert info.value.retry_after == 1.0
    assert clock.monotonic() == 0.0


def test_reset_forgets_keys(clock: FakeClock) -> None:
    """reset() empties the map."""
    keyed = KeyedRateLimiter(rate=1, clock=clock)
    keyed.try_acquire("a")
    keyed.reset()
    assert len(keyed) == 0


def test_repr() -> None:
    """The repr shows the settings."""
    assert repr(KeyedRateLimiter(5, max_keys=10, name="ip")) == (
        "KeyedRateLimiter(rate=5.0, per=1.0, burst=5.0, max_keys=10, name='ip')"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"rate": 1, "max_keys": 0}, ValueError, "max_keys"),
        ({"rate": 1, "max_keys": 1.5}, TypeError, "max_keys"),
        ({"rate": 0}, ValueError, "rate"),
        ({"rate": 1, "burst": 0}, ValueError, "burst"),
    ],
)
def test_bad_input(kwargs: dict[str, object], error: type[Exception], name: str) -> None:
    """Bad constructor arguments raise, naming the parameter."""
    with pytest.raises(error, match=name):
        KeyedRateLimiter(**kwargs)  # type: ignore[arg-type]


def test_bad_tokens() -> None:
    """tokens above burst raises, naming tokens."""
    with pytest.raises(ValueError, match="tokens"):
        KeyedRateLimiter(1, burst=2).try_acquire("a", 3)


# -- hypothesis: the heap against a model that scans every key --------------------------------


class ScanModel:
    """The cap rule stated plainly: at the cap, drop the key full again the longest, or refuse."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.full_at: dict[object, tuple[float, int]] = {}  # key -> (full_at, arrival)
        self.arrivals = 0
        self.last_now = float("-inf")

    def reserve(self, key: object, now: float, tokens: int, max_wait: float) -> float | str:
        now = self.last_now = max(now, self.last_now)
        full_at, arrival = self.full_at.get(key, (float("-inf"), -1))
        new_full_at, wait = schedule(full_at, now, float(tokens), 2.0)
        if wait > max_wait:
            return wait
        if arrival < 0:
            if len(self.full_at) >= self.max_keys:
                victim = min(self.full_at, key=lambda k: self.full_at[k])
                if self.full_at[victim][0] > now:
                    return f"full {max(self.full_at[victim][0] - now, 2e-9)!r}"
                del self.full_at[victim]
            arrival, self.arrivals = self.arrivals, self.arrivals + 1
        self.full_at[key] = (new_full_at, arrival)
        return wait


keyed_step = st.tuples(
    st.sampled_from("abcdefg"),  # key
    # 1/64 s steps to move the clock (may go back): binary fractions keep every sum exact, so
    # the comparison is exact too (see KeyedBuckets.cancel on rounding).
    st.integers(min_value=-6, max_value=96),
    st.integers(min_value=1, max_value=2),  # tokens
    st.sampled_from([0.0, 1.5, INF]),  # max_wait
    st.booleans(),  # cancel it right away if it had to wait
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(keyed_step, min_size=1, max_size=80))
def test_heap_decides_like_a_full_scan(steps: list[tuple[str, int, int, float, bool]]) -> None:
    """Every grant, wait, refusal and eviction matches a model that scans all keys each time."""
    buckets, model = KeyedBuckets(1.0, 2.0, max_keys=3), ScanModel(max_keys=3)
    now = 0.0
    for key, move, tokens, max_wait, cancel in steps:
        now += move / 64
        try:
            got: float | str = buckets.reserve(key, now, tokens, max_wait)
        except KeysFull as full:
            got = f"full {full.retry_after!r}"
        assert got == model.reserve(key, now, tokens, max_wait)
        if cancel and isinstance(got, float) and 0.0 < got <= max_wait:
            ticket = buckets.full_at[key]
            if buckets.cancel(key, ticket, tokens):
                model.full_at[key] = (ticket - tokens, model.full_at[key][1])
        assert buckets.full_at == {k: v for k, (v, _) in model.full_at.items()}
        assert len(buckets.heap) == len(buckets.full_at)
