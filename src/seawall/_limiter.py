"""RateLimiter: a token bucket for sync and async callers, and the ``rate_limiter`` decorator.

The arithmetic lives in :mod:`seawall._limiter_core`; this module reads the clock, holds the
lock and sleeps. A caller that has to wait reserves its slot under the lock, then sleeps
exactly once, outside the lock, for exactly the time it was given: no polling, and waiters are
served in arrival order. If the sleep is interrupted (task cancelled, ``KeyboardInterrupt``)
the reservation is handed back before the exception propagates.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from ._clock import SYSTEM_CLOCK, Clock
from ._errors import RateLimitExceededError
from ._limiter_core import Bucket
from ._validate import check_int, check_number, check_optional_number

__all__ = ["RateLimitDecision", "RateLimiter", "RateLimiterStats", "rate_limiter"]

P = ParamSpec("P")
R = TypeVar("R")

#: Default cap on ``set_retry_after``: a server asking for more gets this much.
MAX_RETRY_AFTER = 300.0

_INF = float("inf")


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """A snapshot of a limiter's counters (grants and rejections are calls, not tokens)."""

    total_acquired: int
    total_rejected: int
    total_waited: int
    total_wait_seconds: float


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The outcome of :meth:`RateLimiter.consume`, shaped for ``RateLimit-*`` headers."""

    granted: bool
    limit: float
    remaining: int
    reset_after: float
    retry_after: float


def check_rate(rate: object, per: object, burst: object) -> tuple[float, float, float, float]:
    """Validate ``rate``, ``per`` and ``burst``; return ``(interval, burst, rate, per)``."""
    rate_f = check_number("rate", rate)
    per_f = check_number("per", per)
    if burst is None:
        burst_f = rate_f if rate_f >= 1.0 else 1.0
    else:
        burst_f = check_number("burst", burst, minimum=1.0, inclusive=True)
    interval = per_f / rate_f
    if not (interval > 0 and math.isfinite(interval)):
        raise ValueError(f"rate/per must give a finite refill interval, got {rate!r}/{per!r}")
    return interval, burst_f, rate_f, per_f


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


class LimiterBase:
    """The waiting drivers shared by :class:`RateLimiter` and ``KeyedRateLimiter``.

    Subclasses provide ``_reserve`` (under the lock: returns ``(wait, ticket, epoch)``,
    committed iff ``wait <= max_wait``), ``_cancel`` and ``_valid``.
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
                self._acquired, self._rejected, self._waited, self._wait_seconds
            )

    def _reserve(
        self, key: Hashable, tokens: int, max_wait: float
    ) -> tuple[float, float, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cancel(self, key: Hashable, tokens: int, ticket: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def _valid(self, key: Hashable, epoch: int) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _granted(self, waited: float) -> None:
        with self._lock:
            self._acquired += 1
            if waited > 0:
                self._waited += 1
                self._wait_seconds += waited

    def _wait_sync(self, key: Hashable, tokens: int, max_wait: float, name: str | None) -> bool:
        waited = 0.0
        polite = max_wait == 0.0  # non-blocking callers get False, not an exception
        while True:
            wait, ticket, epoch = self._reserve(key, tokens, max_wait)
            if wait > max_wait:
                if polite:
                    return False
                raise too_slow(name, wait, max_wait)
            if wait == 0.0:
                self._granted(waited)
                return True
            try:
                self._clock.sleep(wait)
            except BaseException:
                self._cancel(key, tokens, ticket)
                raise
            waited += wait
            if self._valid(key, epoch):
                self._granted(waited)
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
            if wait == 0.0:
                self._granted(waited)
                return True
            try:
                await self._clock.asleep(wait)
            except BaseException:
                # Plain code, no await: runs even while the task is being cancelled.
                self._cancel(key, tokens, ticket)
                raise
            waited += wait
            if self._valid(key, epoch):
                self._granted(waited)
                return True
            self._cancel(key, tokens, ticket)
            max_wait = max(0.0, max_wait - wait) if max_wait != _INF else _INF


class RateLimiter(LimiterBase):
    """A token bucket: ``rate`` tokens per ``per`` seconds, holding at most ``burst``.

    ``burst`` defaults to ``rate`` (or 1 when ``rate < 1``); the bucket starts full. One
    object serves threads (``acquire``, ``with``) and tasks on asyncio or trio
    (``acquire_async``, ``async with``) over the same state.
    """

    __slots__ = (
        "_bucket",
        "_lock_acquire",
        "_lock_release",
        "_max_retry_after",
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
        max_retry_after: float = MAX_RETRY_AFTER,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        interval, burst_f, self.rate, self.per = check_rate(rate, per, burst)
        self.name = check_name(name)
        self._max_retry_after = check_number("max_retry_after", max_retry_after)
        self._bucket = Bucket(interval, burst_f)
        self._monotonic = self._clock.monotonic
        self._lock_acquire = self._lock.acquire
        self._lock_release = self._lock.release

    @property
    def burst(self) -> float:
        """The bucket's capacity."""
        return self._bucket.burst

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now; negative while waiters hold reservations."""
        now = self._monotonic()
        with self._lock:
            return self._bucket.tokens(now)

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` if they are there now; never waits, never raises for lack of them."""
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._bucket.burst)
        now = self._monotonic()
        # acquire/release with try/finally: half the cost of ``with lock`` on CPython 3.11.
        self._lock_acquire()
        try:
            if self._bucket.reserve(now, tokens, 0.0) == 0.0:
                self._acquired += 1
                return True
            self._rejected += 1
            return False
        finally:
            self._lock_release()

    def consume(self, tokens: int = 1) -> RateLimitDecision:
        """Try to take ``tokens`` now and describe the outcome (for ``RateLimit-*`` headers)."""
        count = check_tokens(tokens, self._bucket.burst)
        now = self._monotonic()
        bucket = self._bucket
        with self._lock:
            wait = bucket.reserve(now, count, 0.0)
            if wait == 0.0:
                self._acquired += 1
            else:
                self._rejected += 1
            left = bucket.tokens(now)
            reset_after = bucket.reset_after(now)
        return RateLimitDecision(
            wait == 0.0, bucket.burst, max(0, math.floor(left + 1e-9)), reset_after, wait
        )

    def acquire(
        self, tokens: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Take ``tokens``, waiting up to ``timeout`` seconds (None: as long as it takes).

        Returns False when ``blocking=False`` or ``timeout=0`` and no token is there. When the
        wait would exceed a positive ``timeout`` it raises :class:`RateLimitExceededError` at
        once, without sleeping, with ``retry_after`` set to the wait that would be needed.
        """
        count = check_tokens(tokens, self._bucket.burst)
        return self._wait_sync(None, count, max_wait_for(blocking, timeout), self.name)

    async def acquire_async(self, tokens: int = 1, *, timeout: float | None = None) -> bool:
        """Like :meth:`acquire`, for tasks (asyncio or trio): waits without blocking the loop."""
        count = check_tokens(tokens, self._bucket.burst)
        return await self._wait_async(None, count, max_wait_for(True, timeout), self.name)

    def set_retry_after(self, retry_after: float | datetime) -> None:
        """Refuse everything until ``retry_after`` (seconds from now, or an aware datetime).

        Blocks only extend, and no block lasts longer than ``max_retry_after``. When it ends
        the bucket holds one token, so callers resume at the steady rate.
        """
        seconds = retry_after_seconds(retry_after, self._clock)
        now = self._monotonic()
        with self._lock:
            self._bucket.block(now, now + min(seconds, self._max_retry_after))

    def reset(self) -> None:
        """Refill the bucket and lift any block; the stats are kept."""
        with self._lock:
            self._bucket.reset()

    def _retry_after(self) -> float:
        now = self._monotonic()
        with self._lock:
            return max(0.0, (1.0 - self._bucket.tokens(now)) * self._bucket.interval)

    def _reserve(self, key: Hashable, tokens: int, max_wait: float) -> tuple[float, float, int]:
        now = self._monotonic()
        with self._lock:
            wait = self._bucket.reserve(now, tokens, max_wait)
            if wait > max_wait:
                self._rejected += 1
            return wait, self._bucket.full_at, self._bucket.epoch

    def _cancel(self, key: Hashable, tokens: int, ticket: float) -> None:
        with self._lock:
            self._bucket.cancel(ticket, tokens)

    def _valid(self, key: Hashable, epoch: int) -> bool:
        now = self._monotonic()
        with self._lock:
            return self._bucket.still_valid(now, epoch)

    def __enter__(self) -> RateLimiter:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> RateLimiter:
        await self.acquire_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        return (
            f"RateLimiter(rate={self.rate!r}, per={self.per!r}, "
            f"burst={self._bucket.burst!r}, name={self.name!r})"
        )


def retry_after_seconds(value: object, clock: Clock) -> float:
    """Seconds from now for ``set_retry_after``: a number of seconds or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"retry_after must be a timezone-aware datetime, got {value!r}")
        return max(0.0, value.timestamp() - clock.time())
    return check_number("retry_after", value, inclusive=True, allow_inf=True)


def _is_async(fn: object) -> bool:
    # An object whose __call__ is async is not a coroutine function to inspect.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


@overload
def rate_limiter(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def rate_limiter(
    fn: None = None,
    /,
    *,
    rate: float = 10.0,
    per: float = 1.0,
    burst: float | None = None,
    blocking: bool = True,
    timeout: float | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def rate_limiter(
    fn: Callable[P, R] | None = None,
    /,
    *,
    rate: float = 10.0,
    per: float = 1.0,
    burst: float | None = None,
    blocking: bool = True,
    timeout: float | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit calls of a sync or async function; bare (``@rate_limiter``) or with options.

    Each decorated function gets its own limiter, kept at ``wrapper.limiter`` (and
    ``wrapper._rate_limiter``, the reference guide's name). With ``blocking=False`` (or
    ``timeout=0``) a call that finds no token raises :class:`RateLimitExceededError` without
    running the function.
    """
    max_wait = max_wait_for(blocking, timeout)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        label = getattr(func, "__qualname__", None) or repr(func)
        limiter = RateLimiter(rate, per, burst=burst, name=name or label, clock=clock)
        message = f"Rate limit exceeded for {label}"
        wrapper: Any
        if _is_async(func):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not await limiter._wait_async(None, 1, max_wait, limiter.name):
                    raise RateLimitExceededError(message, retry_after=limiter._retry_after())
                return await func(*args, **kwargs)  # type: ignore[misc]

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not limiter._wait_sync(None, 1, max_wait, limiter.name):
                    raise RateLimitExceededError(message, retry_after=limiter._retry_after())
                return func(*args, **kwargs)

        functools.update_wrapper(wrapper, func)
        wrapper.limiter = wrapper._rate_limiter = limiter
        return cast(Callable[P, R], wrapper)

    return decorate if fn is None else decorate(fn)
