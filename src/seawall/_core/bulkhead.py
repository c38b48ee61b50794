"""The bulkhead's admission logic, with no locks, no clock and no waiting.

Theory of operation
-------------------
A bulkhead has ``max_concurrent`` slots. A caller that finds a slot free takes it at once. A
caller that does not may join a FIFO queue (if it is willing to wait and the queue has room);
otherwise it is rejected. When a holder releases its slot and someone is queued, the slot is
**handed over**: the first waiter is marked ``granted`` and the in-flight count does not drop.
That keeps one invariant that makes barging impossible::

    queue non-empty  =>  in_flight == max_concurrent

so "a slot is free" (``in_flight < max_concurrent``) already implies "nobody is queued". The
one exception is the instant between a lock-free release and its :meth:`~BulkheadCore.fill`
(see below); :meth:`~BulkheadCore.try_admit` looks at the queue too, so a newcomer cannot take
that slot either.

A waiter's wait ends in one of three ways, and the driver reports which:

* woken or timed out: :meth:`BulkheadCore.claim` keeps the slot if it was granted (a grant
  that races the timeout wins: the slot was handed over first) or leaves the queue;
* cancelled: :meth:`BulkheadCore.abandon` leaves the queue, or, if it was granted at that
  instant, passes the slot on to the next waiter (or frees it), so nothing leaks.

Free slots are kept as a pool: a list with one entry per slot released and not yet taken
again, plus ``issued``, the slots handed out so far (the pool grows only to the peak in
flight, so a huge ``max_concurrent`` costs nothing up front). ``list.pop`` and
``list.append`` are each one atomic step, on free-threaded builds too, which lets a driver
take a released slot and give one back without its lock (see :meth:`BulkheadCore.fill` for
the one race that leaves open); everything else happens under the driver's lock. A slot is
in flight when it is issued and not in the pool::

    in_flight == issued - len(free)

``retry_after`` is an estimate of when a slot frees: the mean interval between releases seen
while the bulkhead was full (an exponentially weighted average), times the caller's place in
line. Sampling happens only under saturation, so an uncontended bulkhead never needs the time;
before the first sample the estimate is 0.0 ("no estimate yet").
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Generic, Protocol, TypeVar

from .counting import count_value

__all__ = ["BulkheadCore", "Ticket"]

#: Weight of the newest sample in the release-interval average.
_ALPHA = 0.25


class Ticket(Protocol):
    """What the core needs from a queued waiter: a flag it sets on hand-over."""

    granted: bool


W = TypeVar("W", bound=Ticket)


class BulkheadCore(Generic[W]):
    """Slot counts, the FIFO queue of waiters, counters and the ``retry_after`` estimate."""

    __slots__ = (
        "_interval",
        "admitted",
        "busy_since",
        "free",
        "issued",
        "max_concurrent",
        "max_queue",
        "queue",
        "quick",
        "rejected",
        "waited",
    )

    def __init__(self, max_concurrent: int, max_queue: int | None) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        # Released slots not taken again; a driver may pop or append without its lock.
        self.free: list[None] = []
        self.issued = 0  # slots handed out so far, at most max_concurrent
        self.queue: deque[W] = deque()
        self.admitted = 0  # admissions under the driver's lock
        # Admissions a driver made without its lock (a slot popped from the pool): next() on
        # an itertools.count is atomic. See total_admitted().
        self.quick = itertools.count()
        self.rejected = 0
        self.waited = 0
        # When the bulkhead was last seen full (a rejection, an enqueue or a hand-over); None
        # while it has not been full. The driver passes ``now`` to release() only when set.
        self.busy_since: float | None = None
        self._interval: float | None = None

    @property
    def in_flight(self) -> int:
        """Slots held (handed over to a waiter included)."""
        return self.issued - len(self.free)

    def total_admitted(self) -> int:
        """Every admission: under the driver's lock, quick, and after a wait."""
        return self.admitted + count_value(self.quick)

    # -- admission ------------------------------------------------------------------------

    def try_admit(self) -> bool:
        """Take a free slot if there is one and nobody is queued (a newcomer never passes a
        waiter, even in the instant a slot given back without the lock waits for fill)."""
        if not self.queue and self._take():
            self.admitted += 1
            return True
        return False

    def _take(self) -> bool:
        try:
            self.free.pop()  # may race a driver's lock-free pop: whoever pops first has it
        except IndexError:
            if self.issued == self.max_concurrent:
                return False
            self.issued += 1
        return True

    def can_queue(self) -> bool:
        """Whether one more waiter fits in the queue."""
        return self.max_queue is None or len(self.queue) < self.max_queue

    def enqueue(self, waiter: W, now: float) -> list[W]:
        """Put ``waiter`` at the back of the line (the caller found no free slot).

        Returns the waiters :meth:`fill` granted a slot meanwhile (to wake; ``waiter`` may be
        one of them).
        """
        self.queue.append(waiter)
        self._watch(now)
        return self.fill()

    def fill(self) -> list[W]:
        """Hand slots that are in the pool to the waiters at the front of the line.

        A driver that gives a slot back without its lock appends it to the pool, then looks
        at the queue and calls this (under its lock) if anyone waits. A waiter queued between
        those two steps would be missed, so :meth:`enqueue` calls it too: whichever of the two
        comes second sees the other. Returns the waiters granted a slot, to wake.
        """
        granted = []
        while self.queue:
            try:
                self.free.pop()
            except IndexError:  # none left (or taken by a lock-free pop)
                break
            waiter = self.queue.popleft()
            waiter.granted = True
            granted.append(waiter)
        return granted

    def reject(self, now: float) -> None:
        """Count a refusal; the bulkhead is full, so start timing releases."""
        self.rejected += 1
        self._watch(now)

    # -- a waiter's wait ends -------------------------------------------------------------

    def claim(self, waiter: W) -> bool:
        """The wait ended normally or timed out: keep a granted slot, else leave the line."""
        if waiter.granted:
            self.admitted += 1
            self.waited += 1
            return True
        self.queue.remove(waiter)
        return False

    def abandon(self, waiter: W, now: float | None) -> W | None:
        """The wait was cancelled: leave the line, or pass a just-granted slot on.

        Returns the next waiter to wake, if the slot went to one.
        """
        if waiter.granted:
            return self.release(now)
        self.queue.remove(waiter)
        return None

    # -- release --------------------------------------------------------------------------

    def release(self, now: float | None) -> W | None:
        """Give one slot back: hand it to the first waiter (returned, to wake) or free it."""
        if self.in_flight == 0:
            raise RuntimeError(
                "Bulkhead released more times than it was acquired (no slot is held)"
            )
        if now is not None:
            self._sample(now)
        if self.queue:
            waiter = self.queue.popleft()
            waiter.granted = True
            return waiter
        self.free.append(None)
        # A free slot ends the busy period; the next gap says nothing about hold times.
        self.busy_since = None
        return None

    # -- retry_after ----------------------------------------------------------------------

    def retry_after(self) -> float:
        """Estimated seconds until a slot would be free for a newcomer (0.0 if unknown)."""
        if self._interval is None:
            return 0.0
        return self._interval * (len(self.queue) + 1)

    def _watch(self, now: float) -> None:
        if self.busy_since is None:
            self.busy_since = now

    def _sample(self, now: float) -> None:
        if self.busy_since is None:
            return
        gap = max(0.0, now - self.busy_since)
        previous = self._interval
        self._interval = gap if previous is None else previous + _ALPHA * (gap - previous)
        self.busy_since = now
