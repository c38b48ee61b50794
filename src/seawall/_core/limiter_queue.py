"""The waiting line of one token bucket: who holds which future slot, and who moves up.

Theory of operation
-------------------
A caller that has to wait reserves its slot in time on arrival (see ``_limiter_core``): the
bucket's ``full_at`` moves on by its tokens, and the caller may go once the bucket would hold
them, at ``end - span``. Queued callers therefore hold back-to-back slots::

    start --[ A: 1 token ]--[ B: 2 tokens ]--[ C: 1 token ]-- full_at
              due at a.end - span     b.end - span    c.end - span

This module keeps that line as :class:`Ticket` objects, oldest first, so that a caller who
leaves (cancelled, interrupted) hands its slot to the ones behind it: each moves up by the
leaver's tokens, ``full_at`` moves back by as much, and the core returns whom to wake. Slots
stay back to back, so two grants never share a slot, and nobody is granted before the bucket
allows it:

* **Due tickets are spent.** A ticket whose time has come is dropped from the line
  (:meth:`WaitQueue.prune`): its caller is going ahead. If it leaves after all, it gives its
  tokens back only if nobody reserved after it (``Bucket.cancel``). Dropping due tickets also
  keeps the line back to back: an immediate grant can only happen when every queued ticket is
  already due.
* **Nothing moves into the past.** A queued ticket's slot starts (``end - tokens * interval``)
  no earlier than it is due (``end - span``), which is still ahead, so the line behind a
  leaver restarts at a time that has not come yet: no slot is credited twice.
* **A block is a floor** (``Retry-After``): no slot moves up into it (each restarts at the
  latest of the previous slot's end and the block's floor), and waiters whose slot fell inside
  it re-check when they wake (``Bucket.still_valid``), as before.
* **A reset voids the line**: queued tickets no longer move anyone, and no ticket issued
  before it gives anything back. A ticket is only a ``full_at`` value, and the line rebuilt
  after a reset can end at that same value: the old ticket would then give back a slot that
  a new reservation holds, and two grants would share it. Each reset starts a new
  ``generation`` of the bucket, and a ticket gives back only within its own.

``RateLimiter`` keeps one line over its ``Bucket``; ``KeyedRateLimiter`` one per key that has
waiters, over a :class:`KeyView` of its ``KeyedBuckets``. The file and Redis stores keep the
simpler rule of ``Bucket.cancel`` (only the last reservation gives back): they have no
waiters to wake.
Nothing here reads a clock, sleeps, locks or wakes anyone: the driver does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Protocol

from .limiter import EPSILON

if TYPE_CHECKING:
    from .limiter_keyed import KeyedBuckets

__all__ = ["KeyView", "Slots", "Ticket", "WaitQueue", "Wakeable"]


class Slots(Protocol):
    """What a line needs of its bucket: a ``Bucket``, or one key of ``KeyedBuckets``."""

    full_at: float

    @property
    def interval(self) -> float: ...

    @property
    def burst(self) -> float: ...

    @property
    def span(self) -> float: ...

    @property
    def blocked_until(self) -> float: ...

    @property
    def generation(self) -> int: ...

    def reserve(self, now: float, tokens: int, max_wait: float) -> float: ...

    def floor(self, now: float) -> float: ...

    def cancel(self, ticket: float, tokens: int) -> bool: ...


class Wakeable(Protocol):
    """What the driver hangs on a ticket so that a move-up can reach its caller."""

    def wake(self) -> None: ...


class Ticket:
    """One queued reservation: where its slot ends, how many tokens, whom to wake."""

    __slots__ = ("end", "generation", "queued", "tokens", "waiter")

    def __init__(self, end: float, tokens: int, generation: int = 0) -> None:
        self.end = end
        self.tokens = tokens
        self.generation = generation
        self.queued = True
        self.waiter: Wakeable | None = None


class WaitQueue:
    """The reservations of ``bucket`` still waiting for their time, oldest first."""

    __slots__ = ("bucket", "line")

    def __init__(self, bucket: Slots) -> None:
        self.bucket = bucket
        self.line: deque[Ticket] = deque()

    def join(self, now: float, tokens: int, max_wait: float) -> tuple[float, Ticket | None]:
        """``Bucket.reserve``, plus a ticket when the caller is committed to wait."""
        wait = self.bucket.reserve(now, tokens, max_wait)
        if wait == 0.0 or wait > max_wait:
            return wait, None
        return wait, self.enqueue(tokens)

    def enqueue(self, tokens: int) -> Ticket:
        """A ticket for the reservation of ``tokens`` the bucket has just committed."""
        ticket = Ticket(self.bucket.full_at, tokens, self.bucket.generation)
        self.line.append(ticket)
        return ticket

    def follow(self, ticket: Ticket, now: float, waiter: Wakeable) -> tuple[float, bool]:
        """``(seconds still to wait, first in line)``; 0.0 means go, and the ticket is spent.

        ``waiter`` is woken (by the driver) if the ticket moves up before then.
        """
        now = self.bucket.floor(now)
        self.prune(now)
        wait = ticket.end - self.bucket.span - now
        if wait <= EPSILON:
            return 0.0, True
        ticket.waiter = waiter
        return wait, not ticket.queued or self.line[0] is ticket

    def leave(self, ticket: Ticket, now: float) -> list[Wakeable]:
        """Take ``ticket`` out of the line; the ones behind move up. Returns whom to wake."""
        bucket = self.bucket
        now = bucket.floor(now)
        self.prune(now)
        if not ticket.queued:  # spent or voided: it gives back only if it was the last
            if ticket.generation == bucket.generation:
                bucket.cancel(ticket.end, ticket.tokens)
            return []
        interval = bucket.interval
        floor = bucket.blocked_until + (bucket.burst - 1.0) * interval
        line = self.line
        index = line.index(ticket)
        # Its slot starts at end - tokens * interval, never before its due time end - span,
        # which is still ahead (it was not pruned): the line never restarts in the past.
        start = ticket.end - ticket.tokens * interval
        del line[index]
        ticket.queued = False
        moved = []
        for later in list(line)[index:]:
            start = max(start, floor) + later.tokens * interval
            if start != later.end:
                later.end = start
                if later.waiter is not None:
                    moved.append(later.waiter)
        bucket.full_at = max(start, floor)  # the line's new end, or the block's floor
        return moved

    def prune(self, now: float) -> None:
        """Drop the tickets whose time has come (their slots are spent)."""
        line = self.line
        due = now + self.bucket.span + EPSILON
        while line and line[0].end <= due:
            line.popleft().queued = False

    def clear(self) -> None:
        """Void every ticket (a block or a reset changed the bucket under them)."""
        for ticket in self.line:
            ticket.queued = False
        self.line.clear()


class KeyView:
    """One key of ``KeyedBuckets`` seen as a bucket, so that its waiters can form a line.

    Keyed buckets have no ``Retry-After`` blocks. A key with waiters has a ``full_at`` in the
    future, so it is never evicted while its line exists.
    """

    __slots__ = ("buckets", "key")

    blocked_until = float("-inf")

    def __init__(self, buckets: KeyedBuckets, key: Hashable) -> None:
        self.buckets = buckets
        self.key = key

    @property
    def interval(self) -> float:
        return self.buckets.interval

    @property
    def burst(self) -> float:
        return self.buckets.burst

    @property
    def span(self) -> float:
        return self.buckets.span

    @property
    def generation(self) -> int:
        return self.buckets.generation

    @property
    def full_at(self) -> float:
        return self.buckets.full_at[self.key]

    @full_at.setter
    def full_at(self, value: float) -> None:
        self.buckets.full_at[self.key] = value

    def reserve(self, now: float, tokens: int, max_wait: float) -> float:
        return self.buckets.reserve(self.key, now, tokens, max_wait)

    def floor(self, now: float) -> float:
        if now < self.buckets.last_now:
            return self.buckets.last_now
        self.buckets.last_now = now
        return now

    def cancel(self, ticket: float, tokens: int) -> bool:
        return self.buckets.cancel(self.key, ticket, tokens)
