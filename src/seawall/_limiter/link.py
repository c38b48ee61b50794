"""A store-backed limiter's link to its store: one decision, its degraded fallback, waiting.

:class:`StoreLimiting` asks the store (through the policy's :class:`StoreGuard`) and turns
its answers into grants, refusals and waits; :class:`SharedMixin` is what
:class:`~seawall._limiter.shared.SharedRateLimiter` and ``SharedKeyedRateLimiter`` share on
top of it, keyed by the store key text (None for a plain limiter).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import anyio

from .._clock import Clock
from .._errors import RateLimitExceededError
from .._events import ACTIVE as _OBSERVED
from .._events import Rejected, emit
from ..stores._base import LimiterSpec, Reservation, Store, StoreUnavailableError
from ..stores._degraded import Degraded, StoreGuard
from .driver import LimiterBase, RateLimiterStats, too_slow
from .limiter import RateLimitDecision

__all__ = ["SharedMixin", "StoreLimiting", "key_text"]

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

    def peek(self, key: str | None) -> float | None:
        """The tokens of ``key``'s shared bucket, or None when the store is not asked or failed.

        A read, not a decision: it follows the guard's backoff (a dead store costs its
        timeout once per backoff period, not once per read) but counts nothing.
        """
        guard = self.guard
        if not guard.usable():
            return None
        try:
            tokens, _ = self.store.peek(self.spec, key)
        except (StoreUnavailableError, OSError) as exc:
            guard.failed(exc)
            return None
        guard.answered()
        return tokens

    def block(self, key: str | None, seconds: float) -> None:
        """Block ``key``'s shared bucket for ``seconds``; skipped while the guard backs off.

        The caller's local bucket learns the block as well, so a skipped or failed write still
        holds this process back; other processes learn it from their own upstream answers.
        """
        guard = self.guard
        if not guard.usable():
            return
        try:
            self.store.block(self.spec, key, seconds)
        except (StoreUnavailableError, OSError) as exc:
            guard.failed(exc)
        else:
            guard.answered()

    async def apeek(self, key: str | None) -> float | None:
        """The tokens of ``key``'s shared bucket, or None when the store is not asked or failed.

        A read, not a decision: it follows the guard's backoff but counts nothing. The
        store's peek runs in a worker thread, so a stalled store never blocks the loop.
        """
        guard = self.guard
        if not guard.usable():
            return None
        try:
            tokens, _ = await anyio.to_thread.run_sync(self.store.peek, self.spec, key)
        except (StoreUnavailableError, OSError) as exc:
            guard.failed(exc)
            return None
        guard.answered()
        return tokens

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


class SharedMixin:
    """The overrides both shared limiters need, keyed by store key text."""

    _link: StoreLimiting

    @property
    def degraded_decisions(self) -> int:
        """Decisions made without the store."""
        return self._link.guard.degraded_decisions

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
            local.total_waits,
            self._link.guard.degraded_decisions,
        )
