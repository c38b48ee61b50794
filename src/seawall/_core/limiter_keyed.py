"""The keyed limiter's pure core: one ``full_at`` instant per key, at most ``max_keys`` keys.

Theory of operation
-------------------
Each key's bucket is the instant it is full again (see :mod:`seawall._core.limiter`). A key
whose bucket is full again (``full_at <= now``) is indistinguishable from a key never seen,
so it may be dropped; a key still carrying consumed quota never is, or its owner could reset
its own limit by flooding the map with new keys. When the map is at ``max_keys``, a new key
takes the place of a key that is full again, or is refused (fail-closed) with the exact wait
until the earliest one will be.

Finding that key must not cost more as the map grows (a flood of new clients would multiply
the CPU spent per request), so a min-heap files every key under a *lower bound* of its
``full_at``: one entry per key, pushed when the key arrives. Serving a known key only moves
its ``full_at`` later (a cancelled reservation gives back no more than it took), so its entry
stays a lower bound and the hot path never touches the heap. A new key at the cap looks at
the heap's top only:

* the entry is stale (the key was served since): file it again at its real ``full_at``, look
  at the new top;
* the entry is current and due (``<= now``): drop that key, the new one takes its place;
* the entry is current and in the future: every key carries quota until then: refuse.

Each re-filing is paid for by an earlier reservation of that key, so a refusal is a look at
the top (O(1) amortized) and an eviction one heap step (O(log n)), at 1k keys as at 100k;
nothing ever walks the map. Nothing here reads a clock, sleeps or locks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable
from heapq import heappop, heappush, heapreplace

from .limiter import EPSILON, _describe, schedule

__all__ = ["KeyedBuckets", "KeysFull"]

_NEVER = float("-inf")


class KeysFull(Exception):
    """Internal: a new key cannot get a bucket because every slot carries quota."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class KeyedBuckets:
    """One ``full_at`` float per key, at most ``max_keys`` of them; see the module docs."""

    __slots__ = (
        "burst",
        "full_at",
        "generation",
        "heap",
        "interval",
        "last_now",
        "max_keys",
        "seq",
        "span",
    )

    def __init__(self, interval: float, burst: float, max_keys: int) -> None:
        self.interval = interval
        self.burst = burst
        self.span = burst * interval
        self.max_keys = max_keys
        self.full_at: dict[Hashable, float] = {}
        # (a lower bound of full_at, arrival number, key): the number breaks ties, so keys
        # themselves are never compared (they need only be hashable).
        self.heap: list[tuple[float, int, Hashable]] = []
        self.seq = itertools.count()
        self.last_now = _NEVER
        self.generation = 0  # bumped by clear(), so waiting lines can tell old tickets

    def reserve(self, key: Hashable, now: float, tokens: int, max_wait: float) -> float:
        """Like :meth:`Bucket.reserve` for ``key``; raises :class:`KeysFull` at the cap."""
        if now < self.last_now:
            now = self.last_now
        else:
            self.last_now = now
        full_at = self.full_at.get(key, _NEVER)
        new_full_at, wait = schedule(full_at, now, tokens * self.interval, self.span)
        if wait <= max_wait:
            if full_at == _NEVER:  # a new key (a held key's full_at is always finite)
                if len(self.full_at) >= self.max_keys:
                    self._make_room(now)
                heappush(self.heap, (new_full_at, next(self.seq), key))
            self.full_at[key] = new_full_at
        return wait

    def take(self, key: Hashable, now: float, tokens: int) -> tuple[float, int, float]:
        """:meth:`reserve` without waiting, then :meth:`describe`, in one step.

        Returns ``(wait, whole tokens left, seconds until full)``: what a limiter answering
        at once (the ASGI middleware, on every request) needs, for the price of one lookup.
        Raises :class:`KeysFull` at the cap, as :meth:`reserve` does.
        """
        if now < self.last_now:
            now = self.last_now
        else:
            self.last_now = now
        buckets = self.full_at
        full_at = buckets.get(key, _NEVER)
        new_full_at = (full_at if full_at > now else now) + tokens * self.interval
        wait = new_full_at - now - self.span
        if wait > EPSILON:  # refused: the bucket is left as it was
            remaining, reset_after = _describe(full_at - now, self.burst, self.interval)
            return wait, remaining, reset_after
        if full_at == _NEVER:  # a new key (a held key's full_at is always finite)
            if len(buckets) >= self.max_keys:
                self._make_room(now)
            heappush(self.heap, (new_full_at, next(self.seq), key))
        buckets[key] = new_full_at
        ahead = new_full_at - now  # > 0: at least one token was taken
        left = math.floor(self.burst - ahead / self.interval + EPSILON)
        return 0.0, (left if left > 0 else 0), ahead

    def cancel(self, key: Hashable, ticket: float, tokens: int) -> bool:
        """Give back a reservation of ``key`` whose ``full_at`` was ``ticket``, if it was last."""
        if self.full_at.get(key) != ticket:
            return False
        # Back to what it was before that reservation (or ``now`` then), so the key's heap
        # entry stays a lower bound; float rounding may put it one ulp below, which can only
        # make an eviction or a refusal's wait one ulp late.
        self.full_at[key] = ticket - tokens * self.interval
        return True

    def tokens(self, key: Hashable, now: float) -> float:
        """Tokens in ``key``'s bucket at ``now`` (``burst`` for an unknown key)."""
        ahead = self.full_at.get(key, _NEVER) - max(now, self.last_now)
        return self.burst - (ahead / self.interval if ahead > 0 else 0.0)

    def describe(self, key: Hashable, now: float) -> tuple[int, float]:
        """``(whole tokens left, seconds until full)`` for ``key`` at ``now``."""
        ahead = self.full_at.get(key, _NEVER) - max(now, self.last_now)
        return _describe(ahead, self.burst, self.interval)

    def clear(self) -> None:
        """Forget every key."""
        self.full_at.clear()
        self.heap.clear()
        self.generation += 1

    def _make_room(self, now: float) -> None:
        heap, buckets = self.heap, self.full_at
        while True:
            filed, seq, key = heap[0]
            full_at = buckets[key]
            if full_at != filed:
                heapreplace(heap, (full_at, seq, key))  # served since: file it again
            elif full_at <= now:
                heappop(heap)
                del buckets[key]
                return
            else:
                raise KeysFull(max(full_at - now, 2 * EPSILON))  # never 0.0 (reads as granted)
