"""A shared limiter's reads and blocks follow its store guard's backoff, as its decisions do."""

from __future__ import annotations

from tests._flaky_store import FlakyStore

from seawall import KeyedRateLimiter, RateLimiter
from seawall.testing import FakeClock


def test_tokens_of_a_dead_store_costs_one_call_per_backoff(clock: FakeClock) -> None:
    """Reading `tokens` while the store is down asks it once, then not until 0.1 s later."""
    store = FlakyStore(clock=clock)
    limiter = RateLimiter(10, burst=10, name="reads", store=store, clock=clock)
    limiter.try_acquire(3)
    store.down = True
    store.calls = 0
    assert [limiter.tokens for _ in range(4)] == [10.0] * 4  # the local bucket answers
    assert store.calls == 1
    clock.advance(0.1)
    assert limiter.tokens == 10.0
    assert store.calls == 2


def test_tokens_after_recovery_reads_the_shared_bucket(clock: FakeClock) -> None:
    """Once the backoff has passed and the store answers, `tokens` is the shared count again."""
    store = FlakyStore(clock=clock)
    limiter = RateLimiter(1, burst=10, name="back", store=store, clock=clock)
    limiter.try_acquire(4)
    store.down = True
    assert limiter.tokens == 10.0
    store.down = False
    clock.advance(1)
    assert limiter.tokens == 7.0  # 4 taken, then one second of refill at one token a second
    assert not limiter.stats.degraded_decisions  # reads count no decision


def test_keyed_tokens_of_a_dead_store_follow_the_backoff(clock: FakeClock) -> None:
    """A keyed limiter's `tokens(key)` during an outage asks the store once per backoff."""
    store = FlakyStore(clock=clock)
    limiter = KeyedRateLimiter(10, burst=5, name="keyed-reads", store=store, clock=clock)
    store.down = True
    assert [limiter.tokens("a") for _ in range(3)] == [5.0] * 3
    assert store.calls == 1


def test_set_retry_after_skips_a_dead_store_but_blocks_locally(clock: FakeClock) -> None:
    """During the backoff `set_retry_after` writes nothing, yet this process is held back."""
    store = FlakyStore(clock=clock)
    limiter = RateLimiter(10, burst=10, name="block", store=store, clock=clock, degraded="local")
    store.down = True
    limiter.set_retry_after(5)
    limiter.set_retry_after(5)
    assert store.calls == 1  # the first write failed; the second waited for the backoff
    assert limiter.try_acquire() is False  # the local fallback learnt the block


def test_set_retry_after_reaches_the_store_when_it_answers(clock: FakeClock) -> None:
    """A healthy store gets the block: a second limiter of the same name is refused too."""
    store = FlakyStore(clock=clock)
    first = RateLimiter(10, burst=10, name="shared-block", store=store, clock=clock)
    second = RateLimiter(10, burst=10, name="shared-block", store=store, clock=clock)
    first.set_retry_after(2)
    assert second.try_acquire() is False
    clock.advance(2)
    assert second.try_acquire() is True
