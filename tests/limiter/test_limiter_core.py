"""The rate limiter's pure core: exact transitions, and a reference model under hypothesis."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall._core.limiter import Bucket, schedule
from seawall._core.limiter_keyed import KeyedBuckets, KeysFull

INF = math.inf


def bucket(rate: float = 1.0, burst: float = 3.0) -> Bucket:
    return Bucket(1.0 / rate, burst)


# (steps, expected waits): each step is (now, tokens, max_wait); interval 1 s, burst 3.
TRANSITIONS = [
    pytest.param([(0, 1, 0)], [0.0], id="full-bucket-grants"),
    pytest.param([(0, 1, 0)] * 4, [0.0, 0.0, 0.0, 1.0], id="empty-bucket-rejects-with-wait"),
    pytest.param([(0, 3, 0), (0, 1, 0), (1, 1, 0)], [0.0, 1.0, 0.0], id="refill-one-per-s"),
    pytest.param([(0, 3, 0), (0, 1, 5), (0, 1, 5)], [0.0, 1.0, 2.0], id="waiters-queue-in-time"),
    pytest.param([(0, 3, 0), (0, 2, 1.5)], [0.0, 2.0], id="wait-over-max-not-committed"),
    pytest.param([(0, 3, 0), (0, 2, 1.5), (0, 1, 1)], [0.0, 2.0, 1.0], id="reject-keeps-state"),
    pytest.param([(0, 3, 0), (100, 3, 0), (100, 1, 0)], [0.0, 0.0, 1.0], id="capacity-caps-refill"),
    pytest.param([(10, 3, 0), (5, 1, 0), (11, 1, 0)], [0.0, 1.0, 0.0], id="backward-time-floored"),
    pytest.param([(0, 3, 0), (0.5, 1, 0)], [0.0, 0.5], id="fractional-wait"),
]


@pytest.mark.parametrize(("steps", "expected"), TRANSITIONS)
def test_transition_table(steps: list[tuple[float, int, float]], expected: list[float]) -> None:
    """Each reservation returns exactly the tabled wait (0.0 = granted now)."""
    b = bucket()
    assert [b.reserve(now, n, mw) for now, n, mw in steps] == expected


def test_tokens_go_negative_for_waiters() -> None:
    """Reservations beyond the bucket show as negative tokens until time pays them off."""
    b = bucket()
    for _ in range(5):
        b.reserve(0.0, 1, INF)
    assert b.tokens(0.0) == -2.0
    assert b.reset_after(0.0) == 5.0
    assert b.tokens(4.0) == 2.0


def test_cancel_last_reservation_returns_tokens() -> None:
    """A waiter with nobody behind it gets its tokens back."""
    b = bucket()
    b.reserve(0.0, 3, 0.0)
    assert b.reserve(0.0, 2, INF) == 2.0
    assert b.cancel(b.full_at, 2) is True
    assert b.tokens(0.0) == 0.0
    assert b.reserve(0.0, 1, INF) == 1.0


def test_cancel_with_waiters_behind_returns_nothing() -> None:
    """A waiter with someone queued behind it cannot give tokens back (no double slot)."""
    b = bucket(burst=1.0)
    b.reserve(0.0, 1, 0.0)
    b.reserve(0.0, 1, INF)
    first = b.full_at
    b.reserve(0.0, 1, INF)
    assert b.cancel(first, 1) is False
    assert b.reserve(0.0, 1, INF) == 3.0


def test_block_leaves_one_token_when_it_ends() -> None:
    """A block refuses everything until it ends, then releases one token at a time."""
    b = bucket()
    assert b.block(0.0, 10.0) is True
    assert b.reserve(9.5, 1, 0.0) == 0.5
    assert b.tokens(10.0) == 1.0
    assert b.reserve(10.0, 1, 0.0) == 0.0
    assert b.reserve(10.0, 1, 0.0) == 1.0


def test_cancel_never_undoes_a_block() -> None:
    """Tokens given back during a block still leave the bucket blocked until it ends."""
    b = bucket(burst=2.0)
    b.reserve(0.0, 2, 0.0)
    assert b.reserve(0.0, 1, INF) == 1.0
    ticket = b.full_at
    b.block(0.5, 1.25)
    assert b.cancel(ticket, 1) is True
    assert b.reserve(1.0, 1, INF) == 0.25


def test_block_only_extends() -> None:
    """A shorter block than the current one changes nothing."""
    b = bucket()
    b.block(0.0, 10.0)
    epoch = b.epoch
    assert b.block(0.0, 5.0) is False
    assert (b.blocked_until, b.epoch) == (10.0, epoch)
    assert b.block(0.0, 12.0) is True
    assert b.blocked_until == 12.0


def test_still_valid_after_block() -> None:
    """A waiter whose epoch predates a block may go only once the block is over."""
    b = bucket()
    epoch = b.epoch
    b.block(0.0, 10.0)
    assert b.still_valid(5.0, epoch) is False
    assert b.still_valid(10.0, epoch) is True
    assert b.still_valid(5.0, b.epoch) is True


def test_reset_refills_and_lifts_block() -> None:
    """reset() makes the bucket full and unblocked."""
    b = bucket()
    b.block(0.0, 10.0)
    b.reset()
    assert b.tokens(0.0) == 3.0
    assert b.reserve(0.0, 3, 0.0) == 0.0


def test_odd_rate_does_not_drift() -> None:
    """At 0.769/s, polled every 0.25 s for 20,000 s, grants are exactly burst + floor(rate*t)."""
    b = Bucket(1 / 0.769, 2.0)
    granted = sum(b.reserve(k * 0.25, 1, 0.0) == 0.0 for k in range(80_000))
    assert granted == 2 + math.floor(0.769 * 79_999 * 0.25)


def test_schedule_is_exact() -> None:
    """schedule() returns the new full instant and the wait."""
    assert schedule(-INF, 5.0, 1.0, 3.0) == (6.0, 0.0)
    assert schedule(8.0, 5.0, 1.0, 3.0) == (9.0, 1.0)


# -- keyed ------------------------------------------------------------------------------------


def test_keyed_evicts_full_keys_at_cap() -> None:
    """At the cap, a key whose bucket refilled is dropped to make room."""
    kb = KeyedBuckets(1.0, 1.0, max_keys=2)
    kb.reserve("a", 0.0, 1, 0.0)
    kb.reserve("b", 0.0, 1, 0.0)
    assert kb.reserve("c", 1.0, 1, 0.0) == 0.0
    assert set(kb.full_at) == {"b", "c"}


def test_keyed_never_evicts_keys_with_quota() -> None:
    """At the cap with every key carrying quota, a new key is refused and nothing dropped."""
    kb = KeyedBuckets(1.0, 1.0, max_keys=2)
    kb.reserve("a", 0.0, 1, 0.0)
    kb.reserve("b", 0.5, 1, 0.0)
    with pytest.raises(KeysFull) as info:
        kb.reserve("c", 0.5, 1, 0.0)
    assert info.value.retry_after == 0.5
    assert set(kb.full_at) == {"a", "b"}
    assert kb.reserve("a", 0.5, 1, 0.0) == 0.5  # known keys still served as usual


# -- hypothesis: the core against an exact token-bucket model ---------------------------------


class Model:
    """A textbook token bucket in exact arithmetic (tokens may go negative for waiters)."""

    def __init__(self, rate: Fraction, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = Fraction(burst)
        self.last: Fraction | None = None

    def reserve(self, now: Fraction, n: int, max_wait: float) -> tuple[bool, Fraction]:
        if self.last is not None:
            now = max(now, self.last)
            self.tokens = min(Fraction(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        wait = max(Fraction(0), (n - self.tokens) / self.rate)
        if wait <= max_wait:
            self.tokens -= n
            return True, wait
        return False, wait


step = st.tuples(
    st.integers(min_value=-200, max_value=3000),  # milliseconds to move the clock (may go back)
    st.integers(min_value=1, max_value=4),  # tokens
    st.sampled_from([0.0, 0.70710678, 2.2360679, INF]),  # max_wait
    st.booleans(),  # cancel it right away if it had to wait
)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([Fraction(1, 2), Fraction(1), Fraction(3), Fraction(10), Fraction(7, 2)]),
    burst=st.integers(min_value=4, max_value=12),
    steps=st.lists(step, min_size=1, max_size=60),
)
def test_core_agrees_with_model_and_never_overshoots(
    rate: Fraction, burst: int, steps: list[tuple[int, int, float, bool]]
) -> None:
    """For any event sequence the core matches the exact model and no window sees too much."""
    b = Bucket(float(1 / rate), float(burst))
    model = Model(rate, burst)
    now = Fraction(0)
    grants: list[tuple[Fraction, int]] = []
    for dt_ms, n, max_wait, cancel in steps:
        now += Fraction(dt_ms, 1000)
        wait = b.reserve(float(now), n, max_wait)
        granted, model_wait = model.reserve(now, n, max_wait)
        assert (wait <= max_wait) == granted
        assert wait == pytest.approx(float(model_wait), abs=1e-6)
        if not granted:
            continue
        if cancel and wait > 0:
            assert b.cancel(b.full_at, n) is True
            model.tokens = min(Fraction(burst), model.tokens + n)
        else:
            assert model.last is not None
            grants.append((model.last + model_wait, n))
    assert_never_overshoots(grants, rate, burst)


def assert_never_overshoots(grants: list[tuple[Fraction, int]], rate: Fraction, burst: int) -> None:
    """In every window [t1, t2] the grants total at most burst + rate * (t2 - t1)."""
    grants.sort()
    for i, (start, _) in enumerate(grants):
        total = 0
        for end, n in grants[i:]:
            total += n
            assert total <= burst + rate * (end - start), (start, end, total)
