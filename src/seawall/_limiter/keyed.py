"""KeyedRateLimiter: one token bucket per key (client, API token, route), memory bounded.

Each key costs one float in a dict (the instant its bucket is full again, see
:mod:`seawall._core.limiter`) and one heap entry. A key whose bucket has refilled completely
is forgotten, since it is indistinguishable from a key never seen; a key still carrying
consumed quota is never forgotten, or its owner could reset its own limit by flooding the map
with new keys. When ``max_keys`` keys all carry quota, a *new* key is refused (fail-closed)
until the earliest of them is full again; known keys are served as usual. Finding a key to
drop, or refusing, costs the same at 1k keys as at 100k (see :mod:`seawall._core.limiter_keyed`).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .._clock import Clock
from .._core.limiter_keyed import KeyedBuckets, KeysFull
from .._core.limiter_queue import KeyView, Ticket, WaitQueue
from .._core.validate import check_int
from .._errors import RateLimitExceededError
from .._events import ACTIVE as _OBSERVED
from .._events import Rejected, emit
from .._wakeup import Waiter
from ..stores._base import Store
from ..stores._open import store_for_policy
from .driver import LimiterBase, check_name, check_rate, check_tokens, max_wait_for
from .limiter import RateLimitDecision

__all__ = ["KeyedRateLimiter"]


class KeyedRateLimiter(LimiterBase):
    """A token bucket per key: ``rate`` tokens per ``per`` seconds, at most ``burst`` each.

    Same methods as :class:`~seawall.RateLimiter` with a leading ``key`` argument. Memory is
    bounded by ``max_keys``; see the module docs for what happens at the cap.
    """

    __slots__ = (
        "_buckets",
        "_lines",
        "_lock_acquire",
        "_lock_release",
        "_monotonic",
        "name",
        "per",
        "rate",
    )

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: float | None = None,
        max_keys: int = 10_000,
        name: str | None = None,
        clock: Clock | None = None,
        store: Store | str | None = None,
        degraded: str | None = None,
    ) -> None:
        super().__init__(clock)
        interval, burst_f, self.rate, self.per = check_rate(rate, per, burst)
        self.name = check_name(name)
        if store is not None or degraded is not None:
            store_for_policy(store, degraded, self.name, "rate limiter")
        self._buckets = KeyedBuckets(interval, burst_f, check_int("max_keys", max_keys))
        self._lines: dict[Hashable, WaitQueue] = {}  # only keys that have waiters
        self._monotonic = self._clock.monotonic
        self._lock_acquire = self._lock.acquire
        self._lock_release = self._lock.release

    @property
    def burst(self) -> float:
        """Each bucket's capacity."""
        return self._buckets.burst

    @property
    def max_keys(self) -> int:
        """The most keys held at once."""
        return self._buckets.max_keys

    def __len__(self) -> int:
        """Keys currently held (some may be full already and not yet dropped)."""
        return len(self._buckets.full_at)

    def tokens(self, key: Hashable) -> float:
        """Tokens in ``key``'s bucket now; negative while its waiters hold reservations."""
        now = self._monotonic()
        with self._lock:
            return self._buckets.tokens(key, now)

    async def atokens(self, key: Hashable) -> float:
        """:meth:`tokens` for tasks; awaits only when the buckets live in a store."""
        return self.tokens(key)

    def try_acquire(self, key: Hashable, tokens: int = 1) -> bool:
        """Take ``tokens`` from ``key``'s bucket if they are there now; never waits."""
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._buckets.burst)
        now = self._monotonic()
        self._lock_acquire()
        try:
            wait = self._buckets.reserve(key, now, tokens, 0.0)
            if wait == 0.0:
                self._acquired += 1
                return True
            self._rejected += 1
            reason = "rate_limited"
        except KeysFull as full:
            self._rejected += 1
            wait, reason = full.retry_after, "keys_full"
        finally:
            self._lock_release()
        if _OBSERVED:
            emit(Rejected("limiter", self.name, reason, wait, key))
        return False

    def consume(self, key: Hashable, tokens: int = 1) -> RateLimitDecision:
        """Try to take ``tokens`` from ``key``'s bucket now and describe the outcome."""
        wait, remaining, reset_after = self.take(key, tokens)
        return RateLimitDecision(wait == 0.0, self._buckets.burst, remaining, reset_after, wait)

    def take(self, key: Hashable, tokens: int = 1) -> tuple[float, int, float]:
        """:meth:`consume`'s numbers without the decision object: ``(wait, remaining, reset)``.

        ``wait`` is 0.0 when the tokens were taken, else the seconds until they could be
        (nothing is taken then); ``remaining`` the whole tokens left, ``reset`` the seconds
        until the bucket is full. For callers answering on every request (the ASGI
        middleware), where building the decision costs as much as deciding.
        """
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._buckets.burst)
        now = self._monotonic()
        buckets = self._buckets
        self._lock_acquire()
        try:
            reason = "rate_limited"
            try:
                wait, remaining, reset_after = buckets.take(key, now, tokens)
            except KeysFull as full:
                wait, reason = full.retry_after, "keys_full"
                remaining, reset_after = buckets.describe(key, now)
            if wait == 0.0:
                self._acquired += 1
            else:
                self._rejected += 1
        finally:
            self._lock_release()
        if _OBSERVED and wait:
            emit(Rejected("limiter", self.name, reason, wait, key))
        return wait, remaining, reset_after

    async def aconsume(self, key: Hashable, tokens: int = 1) -> RateLimitDecision:
        """:meth:`consume` for tasks; awaits only when the buckets live in a store."""
        return self.consume(key, tokens)

    def acquire(
        self,
        key: Hashable,
        tokens: int = 1,
        *,
        blocking: bool = True,
        timeout: float | None = None,
    ) -> bool:
        """Take ``tokens`` from ``key``'s bucket, waiting as :meth:`RateLimiter.acquire` does.

        A new key refused at the cap raises :class:`RateLimitExceededError` when blocking
        (there is no slot in time to reserve), and returns False when not.
        """
        count = check_tokens(tokens, self._buckets.burst)
        return self._wait_sync(key, count, max_wait_for(blocking, timeout), self.name)

    async def acquire_async(
        self, key: Hashable, tokens: int = 1, *, timeout: float | None = None
    ) -> bool:
        """Like :meth:`acquire`, for tasks (asyncio or trio)."""
        count = check_tokens(tokens, self._buckets.burst)
        return await self._wait_async(key, count, max_wait_for(True, timeout), self.name)

    def reset(self) -> None:
        """Forget every key (all buckets full again); the stats are kept."""
        with self._lock:
            self._buckets.clear()
            for line in self._lines.values():
                line.clear()
            self._lines.clear()

    def _reserve(self, key: Hashable, tokens: int, max_wait: float) -> tuple[float, Any, int]:
        now = self._monotonic()
        full: KeysFull | None = None
        with self._lock:
            try:
                wait = self._buckets.reserve(key, now, tokens, max_wait)
            except KeysFull as error:
                self._rejected += 1
                full, wait = error, error.retry_after
            else:
                if wait == 0.0:
                    self._acquired += 1
                elif wait > max_wait:
                    self._rejected += 1
            ticket: Ticket | None = None
            if full is None and 0.0 < wait <= max_wait:
                ticket = self._line(key).enqueue(tokens)
        if _OBSERVED and (full is not None or wait > max_wait):
            reason = "rate_limited" if full is None else "keys_full"
            emit(Rejected("limiter", self.name, reason, wait, key))
        if full is None:
            return wait, ticket, 0
        if max_wait == 0.0:
            return wait, None, 0
        raise RateLimitExceededError(
            f"Rate limiter {self.name or ''}: {self.max_keys} keys all carry quota;"
            " new keys are refused until one refills",
            retry_after=wait,
        ) from None

    def _cancel(self, key: Hashable, tokens: int, ticket: Ticket) -> None:
        now = self._monotonic()
        with self._lock:
            line = self._line(key)
            moved = line.leave(ticket, now)
            if not line.line:
                del self._lines[key]
        for waiter in moved:  # outside the lock: waking a task may run code
            waiter.wake()

    def _follow(self, key: Hashable, ticket: Ticket, waiter: Waiter) -> tuple[float, bool]:
        now = self._monotonic()
        with self._lock:
            line = self._line(key)
            answer = line.follow(ticket, now, waiter)
            if not line.line:
                del self._lines[key]
            return answer

    def _line(self, key: Hashable) -> WaitQueue:
        # Under the lock. A key's waiting line, made when its first waiter queues.
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = WaitQueue(KeyView(self._buckets, key))
        return line

    def _valid(self, key: Hashable, epoch: int) -> bool:
        return True  # keyed buckets have no Retry-After blocks

    def __repr__(self) -> str:
        return (
            f"KeyedRateLimiter(rate={self.rate!r}, per={self.per!r}, burst={self.burst!r}, "
            f"max_keys={self.max_keys!r}, name={self.name!r})"
        )
