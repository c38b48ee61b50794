"""The rate limiter's pure core: a token bucket kept as one instant (GCRA).

Theory of operation
-------------------
A bucket holds at most ``burst`` tokens and earns one every ``interval = per / rate`` seconds.
Instead of a token count that is refilled (and drifts) on every call, the state is one instant,
``full_at``: the moment the bucket will be full again if nobody takes anything. So::

    tokens(t) = burst - max(0, full_at - t) / interval

Taking ``n`` tokens at ``t`` pushes that instant to ``max(full_at, t) + n * interval``. The
caller may act once the bucket would hold ``n`` tokens, i.e. ``wait`` seconds from ``t``::

    wait = new_full_at - t - burst * interval        (<= 0 means "now")

A reservation commits only when ``wait <= max_wait``; otherwise nothing changes and ``wait``
is the exact ``retry_after``. Callers that may wait reserve their slot in time on arrival
(tokens go negative), so waiters are served in arrival order and never overshoot.

Three more rules keep it honest:

* **Time never runs backwards.** ``last_now`` floors every reading, so a clock that steps
  back neither refunds nor grants tokens.
* **A cancelled waiter gives back its tokens only if nobody queued behind it** (its ticket,
  the ``full_at`` it created, is still the current one). Later waiters were promised slots
  that assume its tokens are spent; handing them to a newcomer as well would put two grants
  in one slot (the flaw of a plain ``full_at -= n * interval``). This is the rule of the
  stores, which have no waiters to wake; the in-process limiters keep their waiters in a
  line (``_limiter_queue``) and move the ones behind a leaver up instead.
* **A block** (``Retry-After``) moves ``full_at`` so that the bucket holds exactly one token
  when the block ends: callers resume at the steady rate, not as a herd.

Nothing here reads a clock, sleeps or locks: the drivers in ``_limiter`` and
``_keyed_limiter`` do that.
"""

from __future__ import annotations

import math

__all__ = ["EPSILON", "Bucket", "schedule"]

#: Waits shorter than this are "now": float rounding must never make a caller wait 1e-16 s.
EPSILON = 1e-9

_NEVER = float("-inf")


def schedule(full_at: float, now: float, cost: float, span: float) -> tuple[float, float]:
    """Return ``(new_full_at, wait)`` for taking ``cost`` seconds' worth of tokens at ``now``.

    ``span`` is the whole bucket in seconds (``burst * interval``). ``wait`` is 0.0 when the
    tokens are there now, else the seconds until they will be.
    """
    new_full_at = (full_at if full_at > now else now) + cost
    wait = new_full_at - now - span
    return new_full_at, (wait if wait > EPSILON else 0.0)


def _describe(ahead: float, burst: float, interval: float) -> tuple[int, float]:
    if ahead <= 0.0:
        return math.floor(burst + EPSILON), 0.0
    return max(0, math.floor(burst - ahead / interval + EPSILON)), ahead


class Bucket:
    """One token bucket's state and its transitions; every method takes ``now``."""

    __slots__ = (
        "blocked_until",
        "burst",
        "epoch",
        "full_at",
        "generation",
        "interval",
        "last_now",
        "span",
    )

    def __init__(self, interval: float, burst: float) -> None:
        self.interval = interval
        self.burst = burst
        self.span = burst * interval
        self.full_at = _NEVER  # starts full
        self.last_now = _NEVER
        self.blocked_until = _NEVER
        self.epoch = 0  # bumped by every block, so sleeping waiters can tell
        self.generation = 0  # bumped by every reset, so waiting lines can tell old tickets

    def reserve(self, now: float, tokens: int, max_wait: float) -> float:
        """Take ``tokens`` if they are there within ``max_wait`` seconds; return the wait.

        The reservation is committed exactly when the returned wait is ``<= max_wait``.
        """
        if now < self.last_now:
            now = self.last_now
        else:
            self.last_now = now
        # schedule(), inlined: this is every request's hot path.
        full_at = self.full_at
        new_full_at = (full_at if full_at > now else now) + tokens * self.interval
        wait = new_full_at - now - self.span
        if wait <= EPSILON:
            self.full_at = new_full_at
            return 0.0
        if wait <= max_wait:
            self.full_at = new_full_at
        return wait

    def cancel(self, ticket: float, tokens: int) -> bool:
        """Give back a reservation whose ``full_at`` was ``ticket``, if nobody queued after it."""
        if self.full_at != ticket:
            return False
        # Never below a block's floor: the tokens go back, the block stays.
        block_floor = self.blocked_until + (self.burst - 1.0) * self.interval
        self.full_at = max(ticket - tokens * self.interval, block_floor)
        return True

    def block(self, now: float, until: float) -> bool:
        """Refuse everything before ``until``; then hold one token. Extends only."""
        if until <= self.blocked_until or until <= self.floor(now):
            return False
        self.blocked_until = until
        self.full_at = max(self.full_at, until + (self.burst - 1.0) * self.interval)
        self.epoch += 1
        return True

    def still_valid(self, now: float, epoch: int) -> bool:
        """Whether a waiter that reserved at ``epoch`` and woke at ``now`` may go ahead."""
        return epoch == self.epoch or self.blocked_until <= self.floor(now)

    def tokens(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (negative while waiters hold reservations)."""
        ahead = self.full_at - self.floor(now)
        return self.burst - (ahead / self.interval if ahead > 0 else 0.0)

    def reset_after(self, now: float) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, self.full_at - self.floor(now))

    def describe(self, now: float) -> tuple[int, float]:
        """``(whole tokens left, seconds until full)`` at ``now``, for response headers."""
        return _describe(self.full_at - self.floor(now), self.burst, self.interval)

    def reset(self) -> None:
        """Refill the bucket and lift any block."""
        self.full_at = _NEVER
        self.blocked_until = _NEVER
        self.generation += 1

    def floor(self, now: float) -> float:
        """``now``, but never earlier than a reading already seen."""
        if now < self.last_now:
            return self.last_now
        self.last_now = now
        return now
