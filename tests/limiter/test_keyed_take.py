"""KeyedBuckets.take: the keyed limiter's answer-at-once step equals reserve + describe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall._core.limiter_keyed import KeyedBuckets, KeysFull


def test_take_counts_down_then_refuses_without_spending() -> None:
    """Burst 3 at one token a second: three grants at t=0 leave 2, 1, 0; the fourth waits 1 s."""
    kb = KeyedBuckets(1.0, 3.0, max_keys=10)
    answers = [kb.take("a", 0.0, 1) for _ in range(4)]
    assert answers == [(0.0, 2, 1.0), (0.0, 1, 2.0), (0.0, 0, 3.0), (1.0, 0, 3.0)]
    assert kb.full_at == {"a": 3.0}


def test_take_at_the_cap_raises_keys_full_with_the_wait() -> None:
    """A new key with every slot carrying quota is refused with the wait until one is full."""
    kb = KeyedBuckets(1.0, 1.0, max_keys=1)
    kb.take("a", 0.0, 1)
    with pytest.raises(KeysFull) as refused:
        kb.take("b", 0.25, 1)
    assert refused.value.retry_after == 0.75
    assert kb.full_at == {"a": 1.0}


STEP = st.tuples(
    st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5]),  # seconds since the previous step
    st.sampled_from(["a", "b", "c", "d"]),
    st.integers(1, 3),
)


@given(st.lists(STEP, max_size=40), st.sampled_from([0.5, 1.0, 1 / 3]), st.integers(1, 3))
def test_take_is_reserve_then_describe(
    steps: list[tuple[float, str, int]], interval: float, max_keys: int
) -> None:
    """Over any steps, take answers and changes state exactly as reserve(max_wait=0) + describe."""
    fused, split = KeyedBuckets(interval, 3.0, max_keys), KeyedBuckets(interval, 3.0, max_keys)
    now = 0.0
    for dt, key, tokens in steps:
        now += dt
        try:
            got: object = fused.take(key, now, tokens)
        except KeysFull as full:
            got = ("full", full.retry_after)
        try:
            wait = split.reserve(key, now, tokens, 0.0)
            expected: object = (wait, *split.describe(key, now))
        except KeysFull as full:
            expected = ("full", full.retry_after)
        assert got == expected
        assert fused.full_at == split.full_at
        assert sorted(fused.heap, key=lambda e: e[:2]) == sorted(split.heap, key=lambda e: e[:2])
