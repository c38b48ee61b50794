"""Rate limiters whose buckets live in a store (file or Redis), shared across processes.

``RateLimiter(..., name="api", store=url)`` builds a :class:`SharedRateLimiter` (and
``KeyedRateLimiter`` a :class:`SharedKeyedRateLimiter`): the same public object, whose every
decision is one store operation running the same GCRA rule as the in-process bucket. The
in-process bucket the object still carries is the ``degraded="local"`` fallback.

Waiting works as in memory, with one round trip: the store reserves the slot in time and says
how long to sleep; a waiter interrupted while sleeping hands its reservation back if nobody
reserved after it. (Retry-After blocks set by other processes while a waiter sleeps do not
move its slot: that would cost a second round trip per wait.)
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime

from .._clock import Clock
from .._redact import redact_url
from ..stores._base import LimiterSpec, Store, StoreUnavailableError
from ..stores._open import store_for_policy
from .driver import (
    LimiterBase,
    RateLimiterStats,
    check_tokens,
    max_wait_for,
    retry_after_seconds,
)
from .keyed import KeyedRateLimiter
from .limiter import RateLimitDecision, RateLimiter
from .link import SharedMixin, StoreLimiting, key_text

__all__ = ["SharedKeyedRateLimiter", "SharedRateLimiter"]


class SharedRateLimiter(SharedMixin, RateLimiter, variant_of=RateLimiter):
    """A :class:`RateLimiter` whose bucket lives in a store; see the module docstring."""

    __slots__ = ("_link",)

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        store: Store | str | None = None,
        degraded: str | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        **options: float | None,
    ) -> None:
        found, degraded = store_for_policy(store, degraded, name, "rate limiter")
        if found is None or name is None:  # pragma: no cover - __new__ sends only these here
            raise TypeError("SharedRateLimiter needs a store and a name")
        super().__init__(rate, per, name=name, clock=clock, **options)  # type: ignore[arg-type]
        bucket = self._bucket
        spec = LimiterSpec(name, bucket.interval, bucket.burst, False, self._max_retry_after)
        self._link = StoreLimiting(found, spec, degraded, self._clock)

    @property
    def store(self) -> Store:
        """Where the bucket lives."""
        return self._link.store

    @property
    def tokens(self) -> float:
        """Tokens in the shared bucket now (the local one while the store is down)."""
        tokens = self._link.peek(None)
        if tokens is None:
            return RateLimiter.tokens.fget(self)  # type: ignore[attr-defined,no-any-return]
        return tokens

    @property
    def stats(self) -> RateLimiterStats:
        """Counters of this process's decisions, with the degraded ones."""
        return self._shared_stats(LimiterBase.stats.fget(self))  # type: ignore[attr-defined]

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` from the shared bucket if they are there now; never waits."""
        check_tokens(tokens, self._bucket.burst)
        return self._shared_try(None, tokens, lambda: RateLimiter.try_acquire(self, tokens))

    def consume(self, tokens: int = 1) -> RateLimitDecision:
        """Try to take ``tokens`` now and describe the outcome (for ``RateLimit-*`` headers)."""
        check_tokens(tokens, self._bucket.burst)
        return self._shared_consume(None, tokens, lambda: RateLimiter.consume(self, tokens))

    async def aconsume(self, tokens: int = 1) -> RateLimitDecision:
        """:meth:`consume` for tasks: the store call does not block the event loop."""
        check_tokens(tokens, self._bucket.burst)
        return await self._shared_consume_async(
            None, tokens, lambda: RateLimiter.consume(self, tokens)
        )

    def acquire(
        self, tokens: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Take ``tokens`` from the shared bucket, waiting up to ``timeout`` seconds."""
        check_tokens(tokens, self._bucket.burst)
        max_wait = max_wait_for(blocking, timeout)
        return self._shared_acquire(
            None,
            tokens,
            max_wait,
            lambda: RateLimiter.acquire(self, tokens, blocking=blocking, timeout=timeout),
        )

    async def acquire_async(self, tokens: int = 1, *, timeout: float | None = None) -> bool:
        """Like :meth:`acquire`, for tasks (asyncio or trio)."""
        check_tokens(tokens, self._bucket.burst)
        return await self._shared_acquire_async(
            None,
            tokens,
            max_wait_for(True, timeout),
            lambda: RateLimiter.acquire_async(self, tokens, timeout=timeout),
        )

    def set_retry_after(self, retry_after: float | datetime) -> None:
        """Block the shared bucket (every process) until ``retry_after``; extends only."""
        seconds = retry_after_seconds(retry_after, self._clock)
        RateLimiter.set_retry_after(self, seconds)  # the local fallback learns it too
        self._link.block(None, seconds)

    def reset(self) -> None:
        """Refill the shared bucket and lift any block, for every process."""
        RateLimiter.reset(self)
        try:
            self._link.store.reset(self._link.spec.name)
        except (StoreUnavailableError, OSError) as exc:
            self._link.guard.failed(exc)

    def __repr__(self) -> str:
        return f"{RateLimiter.__repr__(self)[:-1]}, store={redact_url(self._link.store.url)!r})"


class SharedKeyedRateLimiter(SharedMixin, KeyedRateLimiter, variant_of=KeyedRateLimiter):
    """A :class:`KeyedRateLimiter` whose buckets live in a store; see the module docstring."""

    __slots__ = ("_link",)

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        store: Store | str | None = None,
        degraded: str | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        **options: float | None,
    ) -> None:
        found, degraded = store_for_policy(store, degraded, name, "rate limiter")
        if found is None or name is None:  # pragma: no cover - __new__ sends only these here
            raise TypeError("SharedRateLimiter needs a store and a name")
        super().__init__(rate, per, name=name, clock=clock, **options)  # type: ignore[arg-type]
        spec = LimiterSpec(name, self._buckets.interval, self._buckets.burst, True)
        self._link = StoreLimiting(found, spec, degraded, self._clock)

    @property
    def store(self) -> Store:
        """Where the buckets live."""
        return self._link.store

    @property
    def stats(self) -> RateLimiterStats:
        """Counters of this process's decisions, with the degraded ones."""
        return self._shared_stats(LimiterBase.stats.fget(self))  # type: ignore[attr-defined]

    def tokens(self, key: Hashable) -> float:
        """Tokens in ``key``'s shared bucket now (the local one while the store is down)."""
        tokens = self._link.peek(key_text(key))
        return KeyedRateLimiter.tokens(self, key) if tokens is None else tokens

    async def atokens(self, key: Hashable) -> float:
        """:meth:`tokens` for tasks: the store is asked off the loop, through the guard."""
        tokens = await self._link.apeek(key_text(key))
        return KeyedRateLimiter.tokens(self, key) if tokens is None else tokens

    def try_acquire(self, key: Hashable, tokens: int = 1) -> bool:
        """Take ``tokens`` from ``key``'s shared bucket if they are there now."""
        check_tokens(tokens, self._buckets.burst)
        return self._shared_try(
            key_text(key), tokens, lambda: KeyedRateLimiter.try_acquire(self, key, tokens)
        )

    def consume(self, key: Hashable, tokens: int = 1) -> RateLimitDecision:
        """Try to take ``tokens`` from ``key``'s shared bucket now and describe the outcome."""
        check_tokens(tokens, self._buckets.burst)
        return self._shared_consume(
            key_text(key), tokens, lambda: KeyedRateLimiter.consume(self, key, tokens)
        )

    async def aconsume(self, key: Hashable, tokens: int = 1) -> RateLimitDecision:
        """:meth:`consume` for tasks: the store call does not block the event loop."""
        check_tokens(tokens, self._buckets.burst)
        return await self._shared_consume_async(
            key_text(key), tokens, lambda: KeyedRateLimiter.consume(self, key, tokens)
        )

    def acquire(
        self,
        key: Hashable,
        tokens: int = 1,
        *,
        blocking: bool = True,
        timeout: float | None = None,
    ) -> bool:
        """Take ``tokens`` from ``key``'s shared bucket, waiting up to ``timeout`` seconds."""
        check_tokens(tokens, self._buckets.burst)
        return self._shared_acquire(
            key_text(key),
            tokens,
            max_wait_for(blocking, timeout),
            lambda: KeyedRateLimiter.acquire(self, key, tokens, blocking=blocking, timeout=timeout),
        )

    async def acquire_async(
        self, key: Hashable, tokens: int = 1, *, timeout: float | None = None
    ) -> bool:
        """Like :meth:`acquire`, for tasks (asyncio or trio)."""
        check_tokens(tokens, self._buckets.burst)
        return await self._shared_acquire_async(
            key_text(key),
            tokens,
            max_wait_for(True, timeout),
            lambda: KeyedRateLimiter.acquire_async(self, key, tokens, timeout=timeout),
        )

    def reset(self) -> None:
        """Forget every key's shared bucket, for every process."""
        KeyedRateLimiter.reset(self)
        try:
            self._link.store.reset(self._link.spec.name)
        except (StoreUnavailableError, OSError) as exc:
            self._link.guard.failed(exc)

    def __repr__(self) -> str:
        return (
            f"{KeyedRateLimiter.__repr__(self)[:-1]}, store={redact_url(self._link.store.url)!r})"
        )
