"""The bulkhead's pure core: admission, hand-over, withdrawal and the retry_after estimate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall._core.bulkhead import BulkheadCore


class Ticket:
    """A minimal queued waiter."""

    def __init__(self) -> None:
        self.granted = False


def test_try_admit_fills_slots_then_refuses() -> None:
    """Exactly max_concurrent admissions succeed; the next one is refused and nothing moves."""
    core: BulkheadCore[Ticket] = BulkheadCore(2, None)
    assert [core.try_admit() for _ in range(3)] == [True, True, False]
    assert (core.in_flight, core.admitted, core.rejected) == (2, 2, 0)


def test_release_hands_the_slot_to_the_first_waiter() -> None:
    """With waiters queued, release marks the first granted and in_flight stays full."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    first, second = Ticket(), Ticket()
    core.enqueue(first, 0.0)
    core.enqueue(second, 0.0)
    assert core.release(0.0) is first
    assert (first.granted, second.granted, core.in_flight, list(core.queue)) == (
        True,
        False,
        1,
        [second],
    )


def test_release_with_no_waiter_frees_the_slot() -> None:
    """With nobody queued, release lowers in_flight and returns no waiter."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    assert core.release(None) is None
    assert core.in_flight == 0


def test_release_without_a_held_slot_raises() -> None:
    """Releasing more than was acquired is a RuntimeError that says so."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    with pytest.raises(RuntimeError, match="released more times than it was acquired"):
        core.release(None)


def test_claim_keeps_a_granted_slot_and_counts_the_wait() -> None:
    """A granted waiter's claim counts one admission that waited."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    waiter = Ticket()
    core.enqueue(waiter, 0.0)
    core.release(0.0)
    assert core.claim(waiter) is True
    assert (core.admitted, core.waited, core.in_flight) == (2, 1, 1)


def test_claim_of_an_ungranted_waiter_leaves_the_queue() -> None:
    """A waiter that timed out without a grant is removed and holds nothing."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    waiter = Ticket()
    core.enqueue(waiter, 0.0)
    assert core.claim(waiter) is False
    assert (len(core.queue), core.in_flight, core.admitted) == (0, 1, 1)


def test_abandon_of_a_granted_waiter_passes_the_slot_on() -> None:
    """A waiter cancelled just after its grant hands the slot to the next waiter."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    first, second = Ticket(), Ticket()
    core.enqueue(first, 0.0)
    core.enqueue(second, 0.0)
    core.release(0.0)
    assert core.abandon(first, 0.0) is second
    assert (second.granted, core.in_flight, len(core.queue), core.admitted) == (True, 1, 0, 1)


def test_abandon_of_the_last_granted_waiter_frees_the_slot() -> None:
    """A granted waiter cancelled with nobody behind it frees the slot."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    waiter = Ticket()
    core.enqueue(waiter, 0.0)
    core.release(0.0)
    assert core.abandon(waiter, 0.0) is None
    assert core.in_flight == 0


def test_can_queue_honours_max_queue() -> None:
    """max_queue=1 admits one waiter to the line and no second; max_queue=0 none at all."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, 1)
    assert core.can_queue() is True
    core.enqueue(Ticket(), 0.0)
    assert core.can_queue() is False
    assert BulkheadCore[Ticket](1, 0).can_queue() is False


def test_retry_after_is_the_release_interval_times_the_place_in_line() -> None:
    """Full at t=0, a release at t=2 and another at t=3 give an average of 2 + 0.25 * (1 - 2)."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    assert core.retry_after() == 0.0
    core.try_admit()
    core.reject(0.0)
    waiter = Ticket()
    core.enqueue(waiter, 0.0)
    core.release(2.0)
    assert core.retry_after() == 2.0
    core.claim(waiter)
    core.enqueue(Ticket(), 2.5)
    core.release(3.0)
    assert core.retry_after() == 1.75
    core.enqueue(Ticket(), 3.0)
    assert core.retry_after() == 3.5


def test_a_free_slot_ends_the_busy_period() -> None:
    """Releasing to an empty queue stops release timing until the bulkhead is full again."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    core.reject(0.0)
    core.release(4.0)
    assert (core.busy_since, core.retry_after()) == (None, 4.0)
    core.try_admit()
    core.release(None)
    assert core.retry_after() == 4.0


def test_a_slot_given_back_before_a_waiter_queues_is_handed_to_it() -> None:
    """A lock-free release that lands after try_admit refused, before enqueue: enqueue grants it."""
    core: BulkheadCore[Ticket] = BulkheadCore(1, None)
    core.try_admit()
    assert core.try_admit() is False  # the newcomer finds no slot...
    core.free.append(None)  # ...the holder gives it back without the lock, sees nobody queued...
    waiter = Ticket()
    assert core.enqueue(waiter, 0.0) == [waiter]  # ...and the newcomer's enqueue takes it
    assert (waiter.granted, core.in_flight, len(core.queue)) == (True, 1, 0)


def test_a_slot_given_back_after_a_waiter_queued_goes_to_the_first_in_line() -> None:
    """A lock-free release that finds the queue non-empty: fill grants the first waiter only.

    Until then a newcomer is refused: the slot in the pool is the first waiter's.
    """
    core: BulkheadCore[Ticket] = BulkheadCore(2, None)
    core.try_admit()
    core.try_admit()
    first, second = Ticket(), Ticket()
    assert core.enqueue(first, 0.0) == []
    assert core.enqueue(second, 0.0) == []
    core.free.append(None)
    assert core.try_admit() is False  # a newcomer does not pass them, even now
    assert core.fill() == [first]
    assert (first.granted, second.granted, core.in_flight, list(core.queue)) == (
        True,
        False,
        2,
        [second],
    )
    assert core.fill() == []  # the other fill of the race finds nothing left to hand over


def test_slots_are_issued_as_needed_and_kept_in_the_pool() -> None:
    """A bulkhead of 10**12 slots allocates only what was in flight at once, and reuses it."""
    core: BulkheadCore[Ticket] = BulkheadCore(10**12, None)
    assert [core.try_admit() for _ in range(3)] == [True, True, True]
    core.release(None)
    core.release(None)
    assert (core.issued, len(core.free), core.in_flight) == (3, 2, 1)
    assert core.try_admit() is True
    assert (core.issued, len(core.free), core.in_flight) == (3, 1, 2)


def test_total_admitted_counts_quick_admissions_too() -> None:
    """Admissions counted on the quick counter add to those made by try_admit and claim."""
    core: BulkheadCore[Ticket] = BulkheadCore(2, None)
    core.try_admit()
    core.release(None)
    core.free.pop()  # a driver's lock-free take...
    next(core.quick)  # ...and its count
    assert (core.admitted, core.total_admitted(), core.in_flight) == (1, 2, 1)


operations = st.lists(
    st.sampled_from(
        ["admit", "enqueue", "release", "claim", "abandon", "quick take", "quick release"]
    )
)


@given(st.integers(min_value=1, max_value=3), operations)
def test_invariants_hold_under_any_sequence(limit: int, ops: list[str]) -> None:
    """No overshoot, no barging state, and every slot accounted for, whatever the order.

    The quick operations are what a driver does without its lock, each run to its end.
    """
    core: BulkheadCore[Ticket] = BulkheadCore(limit, None)
    waiting: list[Ticket] = []
    for op in ops:
        if op == "admit":
            core.try_admit()
        elif op == "enqueue" and core.in_flight == limit:
            waiting.append(Ticket())
            core.enqueue(waiting[-1], 0.0)
        elif op == "release" and core.in_flight > len([w for w in waiting if w.granted]):
            core.release(1.0)
        elif op in ("claim", "abandon") and waiting:
            ticket = waiting.pop(0)
            (core.claim(ticket) if op == "claim" else core.abandon(ticket, 1.0))
        elif op == "quick take" and core.free and not core.queue:
            core.free.pop()  # what a driver does without its lock
        elif op == "quick release" and core.in_flight > len([w for w in waiting if w.granted]):
            core.free.append(None)
            if core.queue:
                core.fill()
        assert 0 <= core.in_flight <= limit
        assert len(core.free) <= core.issued <= limit
        assert not core.queue or core.in_flight == limit
        assert all(not w.granted for w in core.queue)
