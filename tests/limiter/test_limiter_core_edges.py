"""The limiter core's edges that mutation testing found unpinned (``tox -e mutation``).

Most scenarios use an interval other than 1 s and a burst above 1: with interval 1 s, ``*`` and
``/`` by the interval give the same numbers, and with burst 1 a block's floor is the block's
end, so those slips would pass. ``docs/mutation.md`` lists the mutants left as equivalent.
"""

from __future__ import annotations

import pytest

from seawall._core.limiter import Bucket
from seawall._core.limiter_keyed import KeyedBuckets, KeysFull
from seawall._core.limiter_queue import KeyView, WaitQueue

INF = float("inf")


class Woken:
    """A stand-in waiter (the core only hands it back)."""

    def wake(self) -> None:
        pass


def test_a_full_bucket_describes_all_its_tokens_and_no_wait() -> None:
    """A full bucket of burst 5 has 5 whole tokens and 0.0 s until full."""
    assert Bucket(interval=0.5, burst=5.0).describe(3.0) == (5, 0.0)


def test_a_blocked_bucket_keeps_a_floor_of_burst_minus_one_intervals() -> None:
    """A line left behind a leaver restarts at the block's floor: its end + (burst - 1) * interval.

    Interval 0.5 s, burst 3: three tokens taken at t=0, A and B queue (ends 2.0 and 2.5), then
    a block until t=10 puts the floor at 11.0. A leaves: B moves to 11.5 (due at 10.0, the
    block's end), not into the block (floor 9.0) nor beyond it (floor 14.0).
    """
    b = Bucket(interval=0.5, burst=3.0)
    queue = WaitQueue(b)
    assert b.reserve(0.0, 3, 0.0) == 0.0
    _, a = queue.join(0.0, 1, INF)
    _, later = queue.join(0.0, 1, INF)
    assert a is not None
    assert later is not None
    assert b.block(0.0, 10.0) is True
    assert queue.leave(a, 0.0) == []  # B never followed: it has no waiter to wake
    assert (later.end, b.full_at) == (11.5, 11.5)


def test_a_moved_ticket_wakes_only_a_waiter_it_has() -> None:
    """A ticket that moves up is reported only with the waiter that followed it."""
    b = Bucket(interval=0.5, burst=1.0)
    queue = WaitQueue(b)
    b.reserve(0.0, 1, 0.0)
    _, a = queue.join(0.0, 1, INF)
    _, later = queue.join(0.0, 1, INF)
    assert a is not None
    assert later is not None
    woken = Woken()
    assert queue.follow(later, 0.0, woken) == (1.0, False)
    assert queue.leave(a, 0.0) == [woken]
    assert later.end == 1.0


def test_cancel_stops_at_the_block_floor() -> None:
    """Bucket.cancel gives tokens back down to blocked_until + (burst - 1) * interval, no lower."""
    b = Bucket(interval=0.5, burst=3.0)
    assert b.block(0.0, 10.0) is True
    assert b.full_at == 11.0
    assert b.reserve(0.0, 1, INF) == 10.0
    assert b.cancel(11.5, 1) is True
    assert b.full_at == 11.0


def test_block_refuses_an_end_it_already_has_or_one_already_past() -> None:
    """block() with the current end, or with an end equal to now, changes nothing."""
    b = Bucket(interval=0.5, burst=3.0)
    assert b.block(0.0, 10.0) is True
    assert (b.block(0.0, 10.0), b.epoch, b.full_at) == (False, 1, 11.0)
    fresh = Bucket(interval=0.5, burst=3.0)
    assert (fresh.block(5.0, 5.0), fresh.epoch, fresh.blocked_until) == (False, 0, -INF)


def test_every_block_starts_a_new_epoch() -> None:
    """A waiter that reserved after one block is not valid across a second, later one."""
    b = Bucket(interval=1.0, burst=1.0)
    assert b.block(0.0, 5.0) is True
    epoch = b.epoch
    assert b.block(1.0, 8.0) is True
    assert b.still_valid(6.0, epoch) is False


def test_every_reset_starts_a_new_generation() -> None:
    """A ticket from between two resets gives nothing back after the second one."""
    b = Bucket(interval=1.0, burst=1.0)
    queue = WaitQueue(b)
    b.reset()
    b.reserve(0.0, 1, 0.0)
    _, old = queue.join(0.0, 1, INF)
    assert old is not None
    queue.clear()
    b.reset()
    b.reserve(0.0, 1, 0.0)
    _, new = queue.join(0.0, 1, INF)
    assert new is not None
    assert (old.end, old.generation, new.generation) == (2.0, 1, 2)
    assert queue.leave(old, 0.5) == []
    assert b.full_at == 2.0


def test_a_spent_keyed_ticket_that_was_last_gives_its_tokens_back() -> None:
    """On one key, a due ticket that leaves while still last returns its tokens to the key."""
    buckets = KeyedBuckets(interval=0.5, burst=1.0, max_keys=10)
    queue = WaitQueue(KeyView(buckets, "k"))
    assert buckets.reserve("k", 0.0, 1, 0.0) == 0.0
    _, a = queue.join(0.0, 1, INF)
    assert a is not None
    assert queue.follow(a, 0.5, Woken()) == (0.0, True)  # due: spent
    assert queue.leave(a, 0.5) == []
    assert buckets.full_at == {"k": 0.5}


def test_every_clear_starts_a_new_keyed_generation() -> None:
    """KeyedBuckets.clear() bumps the generation each time: 0, 1, 2."""
    buckets = KeyedBuckets(interval=1.0, burst=1.0, max_keys=10)
    seen = [buckets.generation]
    for _ in range(2):
        buckets.clear()
        seen.append(buckets.generation)
    assert seen == [0, 1, 2]


def test_keyed_cancel_steps_back_by_tokens_times_interval() -> None:
    """A keyed reservation of 2 tokens at interval 0.5 s gives back exactly 1.0 s."""
    buckets = KeyedBuckets(interval=0.5, burst=2.0, max_keys=10)
    buckets.reserve("k", 4.0, 2, 0.0)
    assert buckets.full_at["k"] == 5.0
    assert buckets.cancel("k", 5.0, 2) is True
    assert buckets.full_at["k"] == 4.0


def test_keyed_tokens_and_describe_count_from_now() -> None:
    """At t=4 after taking 1 of 2 tokens (interval 0.5 s): 1.0 token, 1 whole, 0.5 s to full."""
    buckets = KeyedBuckets(interval=0.5, burst=2.0, max_keys=10)
    buckets.reserve("k", 4.0, 1, 0.0)
    assert buckets.tokens("k", 4.0) == 1.0
    assert buckets.describe("k", 4.0) == (1, 0.5)
    assert buckets.tokens("k", 4.25) == 1.5


def test_keys_full_carries_the_wait_until_the_first_key_is_full() -> None:
    """At the key cap, the refusal's retry_after is the time until the oldest key refills."""
    buckets = KeyedBuckets(interval=0.5, burst=1.0, max_keys=1)
    buckets.reserve("a", 0.0, 1, 0.0)
    with pytest.raises(KeysFull) as info:
        buckets.reserve("b", 0.25, 1, 0.0)
    assert (info.value.retry_after, info.value.args) == (0.25, (0.25,))


def test_reset_lifts_the_block_to_never() -> None:
    """After reset() no block remains: blocked_until is -inf and a cancel works against it."""
    b = Bucket(interval=0.5, burst=3.0)
    b.block(0.0, 10.0)
    b.reset()
    assert b.blocked_until == -INF
    assert b.reserve(0.0, 3, 0.0) == 0.0
    assert b.cancel(1.5, 3) is True
    assert b.full_at == 0.0
