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

from collections.abc import Callable, Hashable
from datetime import datetime

import anyio

from ._clock import Clock
from ._errors import RateLimitExceededError
from ._events import ACTIVE as _OBSERVED
from ._events import Rejected, emit
from ._keyed_limiter import KeyedRateLimiter
from ._limiter import RateLimitDecision, RateLimiter
from ._limiter_driver import (
    LimiterBase,
    RateLimiterStats,
    check_tokens,
    max_wait_for,
    retry_after_seconds,
    too_slow,
)
from .stores._base import LimiterSpec, Reservation, Store, StoreUnavailableError
from .stores._degraded import Degraded, StoreGuard
from .stores._open import store_for_policy

__all__ = ["SharedKeyedRateLimiter", "SharedRateLimiter", "key_text"]

# Stores take a finite wait bound: "as long as it takes" is a wait nobody will ever need.
_FOREVER = 1e12


def key_text(key: Hashable) -> str:
    """A stable text for a per-key limiter key, equal in every process.

    Strings are used as they are; ints, bytes and tuples of those get a typed ``repr`` (so the
    int 5 and the string "5" stay different keys). Other objects have no identity that
    survives the process, so they are refused.
    """
    if isinstance(key, str):
        return key
    if _portable(key):
        return f"{type(key).__name__}:{key!r}"
    raise TypeError(
        f"key must be a str, int, bytes or a tuple of those to be kept in a store, got {key!r}"
    )


def _portable(key: object) -> bool:
    if isinstance(key, str | int | bytes) and not isinstance(key, bool):
        return True
    return isinstance(key, tuple) and all(_portable(part) for part in key)


class StoreLimiting:
    """One limiter's link to its store: decisions, degraded fallbacks and waiting."""

    __slots__ = ("clock", "guard", "name", "spec", "store")

    def __init__(self, store: Store, spec: LimiterSpec, mode: str, clock: Clock) -> None:
        self.store = store
        self.spec = spec
        self.clock = clock
        self.name = spec.name
        self.guard = StoreGuard(store, mode, "rate limiter", spec.name, clock)

    def decide(self, key: str | None, tokens: int, max_wait: float) -> Reservation | None:
        """The store's answer, or None when the store failed (decide in degraded mode)."""
        bound = min(max_wait, _FOREVER)
        answer = self.guard.ask(lambda: self.store.reserve(self.spec, key, tokens, bound))
        return None if isinstance(answer, Degraded) else answer

    async def adecide(self, key: str | None, tokens: int, max_wait: float) -> Reservation | None:
        """:meth:`decide` for tasks."""
        bound = min(max_wait, _FOREVER)
        answer = await self.guard.aask(lambda: self.store.areserve(self.spec, key, tokens, bound))
        return None if isinstance(answer, Degraded) else answer

    def give_back(self, key: str | None, answer: Reservation, tokens: int) -> None:
        """Hand back an interrupted waiter's reservation (best effort: the store may be down)."""
        try:
            self.store.cancel(self.spec, key, answer.ticket, tokens)
        except (StoreUnavailableError, OSError) as exc:
            self.guard.failed(exc)

    async def agive_back(self, key: str | None, answer: Reservation, tokens: int) -> None:
        """:meth:`give_back` for tasks; runs even while the task is being cancelled."""
        with anyio.CancelScope(shield=True):
            try:
                await self.store.acancel(self.spec, key, answer.ticket, tokens)
            except (StoreUnavailableError, OSError) as exc:
                self.guard.failed(exc)

    def degraded_grant(self, max_wait: float) -> bool:
        """The ``allow``/``deny`` answer; raise as a refused wait would for ``deny``."""
        if self.guard.mode == "allow":
            return True
        if max_wait == 0.0:
            return False
        raise RateLimitExceededError(
            f"Rate limiter {self.name!r}: its store is unavailable and degraded='deny'",
            retry_after=self.spec.interval,
        )

    def finish(
        self, owner: LimiterBase, answer: Reservation, max_wait: float, polite: bool
    ) -> bool | None:
        """Count an immediate answer; None when the caller must sleep ``answer.wait``."""
        if answer.wait > max_wait:
            owner._count(False)
            if _OBSERVED:
                emit(Rejected("limiter", self.name, "rate_limited", answer.wait))
            if polite:
                return False
            raise too_slow(self.name, answer.wait, max_wait)
        if answer.wait == 0.0:
            owner._count(True)
            return True
        return None


class _SharedMixin:
    """The overrides both shared limiters need, keyed by store key text."""

    _link: StoreLimiting

    def _shared_try(self, key: str | None, tokens: int, local: Callable[[], bool]) -> bool:
        owner = self._owner()
        answer = self._link.decide(key, tokens, 0.0)
        if answer is None:
            return local() if self._link.guard.mode == "local" else self._counted_fallback(0.0)
        granted = answer.wait == 0.0
        owner._count(granted)
        if not granted:
            self._refused(answer.wait)
        return granted

    def _shared_consume(
        self, key: str | None, tokens: int, local: Callable[[], RateLimitDecision]
    ) -> RateLimitDecision:
        answer = self._link.decide(key, tokens, 0.0)
        if answer is None:
            return self._fallback_decision(local)
        return self._decision(answer)

    async def _shared_consume_async(
        self, key: str | None, tokens: int, local: Callable[[], RateLimitDecision]
    ) -> RateLimitDecision:
        link = self._link
        answer = await link.adecide(key, tokens, 0.0)
        if answer is None:
            return self._fallback_decision(local)
        return self._decision(answer)

    def _fallback_decision(self, local: Callable[[], RateLimitDecision]) -> RateLimitDecision:
        link = self._link
        if link.guard.mode == "local":
            return local()
        granted = self._counted_fallback(0.0)
        return RateLimitDecision(
            granted, link.spec.burst, 0, 0.0, 0.0 if granted else link.spec.interval
        )

    def _decision(self, answer: Reservation) -> RateLimitDecision:
        granted = answer.wait == 0.0
        self._owner()._count(granted)
        if not granted:
            self._refused(answer.wait)
        return RateLimitDecision(
            granted, self._link.spec.burst, answer.remaining, answer.reset_after, answer.wait
        )

    def _shared_acquire(
        self, key: str | None, tokens: int, max_wait: float, local: Callable[[], bool]
    ) -> bool:
        link = self._link
        answer = link.decide(key, tokens, max_wait)
        if answer is None:
            return local() if link.guard.mode == "local" else self._counted_fallback(max_wait)
        done = link.finish(self._owner(), answer, max_wait, max_wait == 0.0)
        if done is not None:
            return done
        try:
            link.clock.sleep(answer.wait)
        except BaseException:
            link.give_back(key, answer, tokens)
            raise
        self._owner()._granted(answer.wait)
        return True

    async def _shared_acquire_async(
        self, key: str | None, tokens: int, max_wait: float, local: Callable[[], object]
    ) -> bool:
        link = self._link
        answer = await link.adecide(key, tokens, max_wait)
        if answer is None:
            if link.guard.mode == "local":
                return bool(await local())  # type: ignore[misc]
            return self._counted_fallback(max_wait)
        done = link.finish(self._owner(), answer, max_wait, max_wait == 0.0)
        if done is not None:
            return done
        try:
            await link.clock.asleep(answer.wait)
        except BaseException:
            await link.agive_back(key, answer, tokens)
            raise
        self._owner()._granted(answer.wait)
        return True

    def _counted_fallback(self, max_wait: float) -> bool:
        try:
            granted = self._link.degraded_grant(max_wait)
        except RateLimitExceededError:
            self._owner()._count(False)
            raise
        self._owner()._count(granted)
        return granted

    def _refused(self, wait: float) -> None:
        if _OBSERVED:
            emit(Rejected("limiter", self._link.name, "rate_limited", wait))

    def _owner(self) -> LimiterBase:
        return self  # type: ignore[return-value]

    def _shared_stats(self, local: RateLimiterStats) -> RateLimiterStats:
        return RateLimiterStats(
            local.total_acquired,
            local.total_rejected,
            local.total_waited,
            local.total_wait_seconds,
            self._link.guard.degraded_decisions,
        )


class SharedRateLimiter(_SharedMixin, RateLimiter):
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
        try:
            tokens, _ = self._link.store.peek(self._link.spec, None)
        except (StoreUnavailableError, OSError):
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
        try:
            self._link.store.block(self._link.spec, None, seconds)
        except (StoreUnavailableError, OSError) as exc:
            self._link.guard.failed(exc)

    def reset(self) -> None:
        """Refill the shared bucket and lift any block, for every process."""
        RateLimiter.reset(self)
        try:
            self._link.store.reset(self._link.spec.name)
        except (StoreUnavailableError, OSError) as exc:
            self._link.guard.failed(exc)

    def __repr__(self) -> str:
        return f"{RateLimiter.__repr__(self)[:-1]}, store={self._link.store.url!r})"


class SharedKeyedRateLimiter(_SharedMixin, KeyedRateLimiter):
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
        try:
            tokens, _ = self._link.store.peek(self._link.spec, key_text(key))
        except (StoreUnavailableError, OSError):
            return KeyedRateLimiter.tokens(self, key)
        return tokens

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
        return f"{KeyedRateLimiter.__repr__(self)[:-1]}, store={self._link.store.url!r})"
