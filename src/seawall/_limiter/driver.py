"""What RateLimiter and KeyedRateLimiter share: argument checks, stats, and the waiting drivers.

A caller that has to wait reserves its slot under the lock (see ``_limiter_core``), then waits
outside the lock for exactly the time it was given: no polling, and waiters are served in
arrival order. If the wait is interrupted (task cancelled, ``KeyboardInterrupt``) the
reservation is handed back before the exception propagates, and where the limiter keeps a
waiting line (``_limiter_queue``) the waiters behind it are woken to wait less. So a waiter
first in line simply sleeps (nobody ahead can leave), while one further back waits on an event
that a move-up sets. A waiter whose slot fell inside a ``Retry-After`` block that arrived
while it waited queues again behind the block.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_int, check_number, check_optional_number
from .._errors import RateLimitExceededError
from .._events import ACTIVE as _OBSERVED
from .._events import LimiterWaited, emit
from .._store_variant import StoreBacked
from .._wakeup import AsyncWaiter, SyncWaiter, Waiter

__all__ = [
    "LimiterBase",
    "RateLimiterStats",
    "check_name",
    "check_rate",
    "check_tokens",
    "max_wait_for",
    "retry_after_seconds",
    "too_slow",
]

_INF = float("inf")


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """A snapshot of a limiter's counters (grants and rejections are calls, not tokens).

    ``total_waited`` is the seconds spent waiting for grants, summed (the guide's field and
    meaning); ``total_waits`` is how many grants had to wait at all.
    """

    total_acquired: int
    total_rejected: int
    total_waited: float
    total_waits: int
    degraded_decisions: int = 0
    """Decisions made without the store (store-backed limiters only)."""


def check_rate(rate: object, per: object, burst: object) -> tuple[float, float, float, float]:
    """Validate ``rate``, ``per`` and ``burst``; return ``(interval, burst, rate, per)``."""
    rate_f = _check_positive("rate", rate)
    per_f = _check_positive("per", per)
    if burst is None:
        burst_f = rate_f if rate_f >= 1.0 else 1.0
    else:
        burst_f = check_number("burst", burst, minimum=1.0, inclusive=True)
    interval = per_f / rate_f
    if not (interval > 0 and math.isfinite(interval)):
        raise ValueError(f"rate/per must give a finite refill interval, got {rate!r}/{per!r}")
    return interval, burst_f, rate_f, per_f


def _check_positive(name: str, value: object) -> float:
    # The guide's wording ("rate must be positive") is what its users' tests match on.
    result = check_number(name, value, minimum=-_INF, inclusive=True)  # type, NaN, infinity
    if result <= 0:
        raise ValueError(f"{name} must be positive (> 0), got {value!r}")
    return result


def check_tokens(tokens: object, burst: float) -> int:
    """Validate a token count: an int from 1 to ``burst``."""
    count = check_int("tokens", tokens)
    if count > burst:
        raise ValueError(f"tokens must be <= burst ({burst:g}), got {tokens!r}")
    return count


def check_name(name: object) -> str | None:
    """Validate an optional name."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r} ({type(name).__name__})")
    return name


def max_wait_for(blocking: object, timeout: object) -> float:
    """Turn ``acquire``'s ``blocking``/``timeout`` into the longest acceptable wait."""
    if not isinstance(blocking, bool):
        raise TypeError(f"blocking must be a bool, got {blocking!r}")
    limit = check_optional_number("timeout", timeout, inclusive=True)
    if not blocking:
        if limit is not None:
            raise ValueError(f"timeout={timeout!r} makes no sense with blocking=False")
        return 0.0
    return _INF if limit is None else limit


def too_slow(name: str | None, wait: float, timeout: float) -> RateLimitExceededError:
    """A fresh error for a wait longer than the caller's timeout."""
    who = f" {name!r}" if name else ""
    return RateLimitExceededError(
        f"Rate limiter{who}: a token needs {wait:.3f}s, more than timeout={timeout:g}s",
        retry_after=wait,
    )


class LimiterBase(StoreBacked):
    """The waiting drivers shared by :class:`RateLimiter` and ``KeyedRateLimiter``.

    Subclasses provide ``_reserve`` (under the lock: returns ``(wait, ticket, epoch)``,
    committed iff ``wait <= max_wait``; counts immediate grants and rejections), ``_cancel``
    and ``_valid``, and ``_follow`` if they keep a waiting line that lets waiters move up.
    """

    __slots__ = ("_acquired", "_clock", "_lock", "_rejected", "_wait_seconds", "_waited")

    def __init__(self, clock: Clock | None) -> None:
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._acquired = 0
        self._rejected = 0
        self._waited = 0
        self._wait_seconds = 0.0

    @property
    def stats(self) -> RateLimiterStats:
        """A snapshot of the counters."""
        with self._lock:
            return RateLimiterStats(
                self._acquired, self._rejected, self._wait_seconds, self._waited
            )

    def _reserve(
        self, key: Hashable, tokens: int, max_wait: float
    ) -> tuple[float, Any, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cancel(self, key: Hashable, tokens: int, ticket: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _valid(self, key: Hashable, epoch: int) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _follow(self, key: Hashable, ticket: Any, waiter: Waiter) -> tuple[float, bool] | None:
        """``(seconds still to wait, first in line)`` for a queued ``ticket``.

        None: this limiter keeps no waiting line, its waiters sleep the wait they were given.
        """
        return None

    def _sleep_sync(self, key: Hashable, ticket: Any, wait: float) -> None:
        while True:
            waiter = SyncWaiter()  # fresh each round: a fake clock's timeout sets the event
            follow = self._follow(key, ticket, waiter)
            if follow is None:
                self._clock.sleep(wait)
                return
            wait, first = follow
            if wait == 0.0:
                return
            if first:
                self._clock.sleep(wait)  # nobody ahead can leave: nothing will wake us early
            else:
                self._clock.wait_for(waiter.event, wait)

    async def _sleep_async(self, key: Hashable, ticket: Any, wait: float) -> None:
        while True:
            waiter = AsyncWaiter()
            follow = self._follow(key, ticket, waiter)
            if follow is None:
                await self._clock.asleep(wait)
                return
            wait, first = follow
            if wait == 0.0:
                return
            if first:
                await self._clock.asleep(wait)
            else:
                await self._clock.await_event(waiter.event, wait)

    def _count(self, granted: bool) -> None:
        with self._lock:
            if granted:
                self._acquired += 1
            else:
                self._rejected += 1

    def _granted(self, waited: float, *, counted: bool = False, key: Hashable = None) -> None:
        with self._lock:
            if not counted:
                self._acquired += 1
            if waited > 0:
                self._waited += 1
                self._wait_seconds += waited
        if waited > 0 and _OBSERVED:
            emit(LimiterWaited(getattr(self, "name", None), waited, key))

    def _wait_sync(self, key: Hashable, tokens: int, max_wait: float, name: str | None) -> bool:
        waited = 0.0
        polite = max_wait == 0.0  # non-blocking callers get False, not an exception
        while True:
            wait, ticket, epoch = self._reserve(key, tokens, max_wait)
            if wait > max_wait:
                if polite:
                    return False
                raise too_slow(name, wait, max_wait)
            if wait == 0.0:  # granted now (and counted by _reserve)
                if waited:  # after sleeping through a block that has ended since
                    self._granted(waited, counted=True, key=key)
                return True
            started = self._clock.monotonic()
            try:
                self._sleep_sync(key, ticket, wait)
            except BaseException:
                self._cancel(key, tokens, ticket)
                raise
            waited += max(0.0, self._clock.monotonic() - started)
            if self._valid(key, epoch):
                self._granted(waited, key=key)
                return True
            # A Retry-After block arrived while we slept: queue again behind it.
            self._cancel(key, tokens, ticket)
            max_wait = max(0.0, max_wait - wait) if max_wait != _INF else _INF

    async def _wait_async(
        self, key: Hashable, tokens: int, max_wait: float, name: str | None
    ) -> bool:
        waited = 0.0
        polite = max_wait == 0.0  # non-blocking callers get False, not an exception
        while True:
            wait, ticket, epoch = self._reserve(key, tokens, max_wait)
            if wait > max_wait:
                if polite:
                    return False
                raise too_slow(name, wait, max_wait)
            if wait == 0.0:  # granted now (and counted by _reserve)
                if waited:  # after sleeping through a block that has ended since
                    self._granted(waited, counted=True, key=key)
                return True
            started = self._clock.monotonic()
            try:
                await self._sleep_async(key, ticket, wait)
            except BaseException:
                # Plain code, no await: runs even while the task is being cancelled.
                self._cancel(key, tokens, ticket)
                raise
            waited += max(0.0, self._clock.monotonic() - started)
            if self._valid(key, epoch):
                self._granted(waited, key=key)
                return True
            self._cancel(key, tokens, ticket)
            max_wait = max(0.0, max_wait - wait) if max_wait != _INF else _INF


def retry_after_seconds(value: object, clock: Clock) -> float:
    """Seconds from now for ``set_retry_after``: a number of seconds or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"retry_after must be a timezone-aware datetime, got {value!r}")
        return max(0.0, value.timestamp() - clock.time())
    return check_number("retry_after", value, inclusive=True, allow_inf=True)
