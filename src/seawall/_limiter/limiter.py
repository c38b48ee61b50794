"""RateLimiter: a token bucket for sync and async callers, and the ``rate_limiter`` decorator.

The arithmetic lives in :mod:`seawall._core.limiter` and the waiting in
:mod:`seawall._limiter.driver`; this module is the object users hold. Its granted fast paths
(``try_acquire``, and ``acquire``/``acquire_async`` when a token is there) take the lock once
and allocate nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from .._callables import is_async_callable as _is_async
from .._clock import Clock
from .._core.limiter import Bucket
from .._core.limiter_queue import Ticket, WaitQueue
from .._core.validate import check_number
from .._errors import RateLimitExceededError
from .._events import ACTIVE as _OBSERVED
from .._events import Rejected, emit
from .._wakeup import Waiter
from ..config import current
from ..stores._base import Store
from ..stores._open import store_for_policy
from .driver import (
    LimiterBase,
    RateLimiterStats,
    check_name,
    check_rate,
    check_tokens,
    max_wait_for,
    retry_after_seconds,
)

__all__ = ["RateLimitDecision", "RateLimiter", "RateLimiterStats", "rate_limiter"]

P = ParamSpec("P")
R = TypeVar("R")

#: Default cap on ``set_retry_after``: a server asking for more gets this much.
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True, slots=True, init=False)
class RateLimitDecision:
    """The outcome of :meth:`RateLimiter.consume`, shaped for ``RateLimit-*`` headers."""

    granted: bool
    limit: float
    remaining: int
    reset_after: float
    retry_after: float

    def __init__(
        self, granted: bool, limit: float, remaining: int, reset_after: float, retry_after: float
    ) -> None:
        # A frozen dataclass's own __init__ goes through object.__setattr__ for each field
        # (~550 ns for five); writing the slots directly costs half, and it is on every
        # request of the ASGI middleware. Assignment from outside still raises.
        _set_granted(self, granted)
        _set_limit(self, limit)
        _set_remaining(self, remaining)
        _set_reset_after(self, reset_after)
        _set_retry_after(self, retry_after)


_fields = vars(RateLimitDecision)  # the slot descriptors
_set_granted = _fields["granted"].__set__
_set_limit = _fields["limit"].__set__
_set_remaining = _fields["remaining"].__set__
_set_reset_after = _fields["reset_after"].__set__
_set_retry_after = _fields["retry_after"].__set__


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
        "_queue",
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
        store: Store | str | None = None,
        degraded: str | None = None,
    ) -> None:
        super().__init__(clock)
        interval, burst_f, self.rate, self.per = check_rate(rate, per, burst)
        self.name = check_name(name)
        if store is not None or degraded is not None:
            store_for_policy(store, degraded, self.name, "rate limiter")
        self._max_retry_after = check_number("max_retry_after", max_retry_after)
        self._bucket = Bucket(interval, burst_f)
        self._queue = WaitQueue(self._bucket)
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
            wait = self._bucket.reserve(now, tokens, 0.0)
            if wait == 0.0:
                self._acquired += 1
                return True
            self._rejected += 1
        finally:
            self._lock_release()
        if _OBSERVED:
            emit(Rejected("limiter", self.name, "rate_limited", wait))
        return False

    def consume(self, tokens: int = 1) -> RateLimitDecision:
        """Try to take ``tokens`` now and describe the outcome (for ``RateLimit-*`` headers)."""
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._bucket.burst)
        now = self._monotonic()
        bucket = self._bucket
        self._lock_acquire()
        try:
            wait = bucket.reserve(now, tokens, 0.0)
            if wait == 0.0:
                self._acquired += 1
            else:
                self._rejected += 1
            remaining, reset_after = bucket.describe(now)
        finally:
            self._lock_release()
        if _OBSERVED and wait:
            emit(Rejected("limiter", self.name, "rate_limited", wait))
        return RateLimitDecision(wait == 0.0, bucket.burst, remaining, reset_after, wait)

    async def aconsume(self, tokens: int = 1) -> RateLimitDecision:
        """:meth:`consume` for tasks; awaits only when the bucket lives in a store."""
        return self.consume(tokens)

    def acquire(
        self, tokens: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Take ``tokens``, waiting up to ``timeout`` seconds (None: as long as it takes).

        Returns False when ``blocking=False`` or ``timeout=0`` and no token is there. When the
        wait would exceed a positive ``timeout`` it raises :class:`RateLimitExceededError` at
        once, without sleeping, with ``retry_after`` set to the wait that would be needed.
        """
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._bucket.burst)
        if timeout is None and blocking is True and self._take_now(tokens):
            return True
        return self._wait_sync(None, tokens, max_wait_for(blocking, timeout), self.name)

    async def acquire_async(self, tokens: int = 1, *, timeout: float | None = None) -> bool:
        """Like :meth:`acquire`, for tasks (asyncio or trio): waits without blocking the loop."""
        if tokens.__class__ is not int or tokens != 1:
            check_tokens(tokens, self._bucket.burst)
        if timeout is None and self._take_now(tokens):
            return True
        return await self._wait_async(None, tokens, max_wait_for(True, timeout), self.name)

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
            self._queue.clear()

    def _take_now(self, tokens: int) -> bool:
        # The common case of a blocking acquire: a token is there. A miss is not counted, the
        # waiting path that follows does that.
        now = self._monotonic()
        self._lock_acquire()
        try:
            if self._bucket.reserve(now, tokens, 0.0) == 0.0:
                self._acquired += 1
                return True
            return False
        finally:
            self._lock_release()

    def _retry_after(self) -> float:
        now = self._monotonic()
        with self._lock:
            return max(0.0, (1.0 - self._bucket.tokens(now)) * self._bucket.interval)

    def _reserve(
        self, key: Hashable, tokens: int, max_wait: float
    ) -> tuple[float, Ticket | None, int]:
        now = self._monotonic()
        with self._lock:
            wait, ticket = self._queue.join(now, tokens, max_wait)
            if wait == 0.0:
                self._acquired += 1
            elif wait > max_wait:
                self._rejected += 1
            reservation = wait, ticket, self._bucket.epoch
        if _OBSERVED and wait > max_wait:
            emit(Rejected("limiter", self.name, "rate_limited", wait))
        return reservation

    def _cancel(self, key: Hashable, tokens: int, ticket: Ticket) -> None:
        now = self._monotonic()
        with self._lock:
            moved = self._queue.leave(ticket, now)
        for waiter in moved:  # outside the lock: waking a task may run code
            waiter.wake()

    def _follow(self, key: Hashable, ticket: Ticket, waiter: Waiter) -> tuple[float, bool]:
        now = self._monotonic()
        with self._lock:
            return self._queue.follow(ticket, now, waiter)

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


@overload
def rate_limiter(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def rate_limiter(
    fn: None = None,
    /,
    *,
    rate: float | None = None,
    per: float | None = None,
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
    rate: float | None = None,
    per: float | None = None,
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
    # Left out, rate and per come from seawall.config (rate_limiter.default_rate/default_per).
    defaults = current().rate_limiter
    rate = defaults.default_rate if rate is None else rate
    per = defaults.default_per if per is None else per

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
