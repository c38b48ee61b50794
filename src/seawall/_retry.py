"""Retry: exponential backoff with full jitter, an attempt cap, a deadline and a budget.

The arithmetic lives in :mod:`seawall._core.retry`; this module holds the settings
(:class:`Retry`), one small state object per call (:class:`RetryRun`) and the two drivers,
``call`` (sleeps with ``clock.sleep``) and ``acall`` (sleeps with ``await clock.asleep``, so it
runs on asyncio and trio and a fake clock makes it instant).

What is never retried, whatever ``retry_on`` says:

* cancellation and every other ``BaseException`` that is not an ``Exception``
  (``CancelledError``, trio ``Cancelled``, ``KeyboardInterrupt``): only ``Exception`` is caught;
* :class:`~seawall.CircuitOpenError`: the breaker has just said it will not admit anyone for a
  while, so an immediate retry is pointless and a retry after ``remaining_seconds`` outlives
  any sensible deadline.

When the attempts, the deadline or the budget run out, the last exception is re-raised
unchanged (``except`` clauses keep working) and, when retrying on results, the last result is
returned.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import random as _random
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import CoroutineType
from typing import Any, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from ._callables import decorate_with
from ._clock import SYSTEM_CLOCK, Clock
from ._core.retry import Backoff, BudgetWindow, next_wait, usable_hint
from ._core.validate import check_callable, check_int, check_number, check_optional_number
from ._errors import CircuitOpenError
from .stores._base import Store
from .stores._budget import SharedBudget
from .stores._open import store_for_policy

__all__ = ["Retry", "RetryBudget", "RetryBudgetLike", "RetryRun", "retry", "testing_mode"]

P = ParamSpec("P")
T = TypeVar("T")

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[Exception], bool]

_waits_disabled = 0
_waits_lock = threading.Lock()


@contextlib.contextmanager
def testing_mode() -> Iterator[None]:
    """Within this block every :class:`Retry` skips its waits (process-wide; nests)."""
    global _waits_disabled
    with _waits_lock:
        _waits_disabled += 1
    try:
        yield
    finally:
        with _waits_lock:
            _waits_disabled -= 1


@runtime_checkable
class RetryBudgetLike(Protocol):
    """What :class:`Retry` needs from a budget (so a shared, store-backed one can plug in)."""

    def record_call(self) -> None:
        """Count one call (its first attempt)."""
        ...

    def try_retry(self) -> bool:
        """Count one retry and return True if allowed; False means do not retry."""
        ...

    # A budget may also offer ``async def atry_retry() -> bool``: Retry.acall awaits it
    # instead of calling try_retry(), so a budget kept in a store never blocks the loop.


class RetryBudget:
    """Limits retries to a share of calls so a fleet cannot amplify an outage.

    A retry is allowed while the retries in the last ``window`` seconds, this one included,
    are at most ``ratio`` times the calls in that window plus ``minimum_per_second * window``
    (so a quiet service can still retry). Share one budget between the Retry objects that call
    the same dependency. Thread-safe.

    With ``store=`` and ``name=`` the budget is kept in a store and shared by every process
    using that name: a token bucket that calls deposit into and retries withdraw from (see
    ``docs/retry-timeout.md``), one round trip per retry decision and none per call;
    ``degraded`` says what to do while the store does not answer (``"local"``: this
    process's own window, ``"allow"`` or ``"deny"``).
    """

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        minimum_per_second: float = 1.0,
        window: int = 10,
        clock: Clock | None = None,
        store: Store | str | None = None,
        name: str | None = None,
        degraded: str | None = None,
    ) -> None:
        self._core = BudgetWindow(ratio=ratio, minimum_per_second=minimum_per_second, window=window)
        self._shape = (
            f"ratio={ratio!r}, minimum_per_second={minimum_per_second!r}, window={window!r}"
        )
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self.name = name
        self._shared: SharedBudget | None = None
        if store is not None or degraded is not None:
            found, mode = store_for_policy(store, degraded, name, "retry budget")
            if found is not None and name is not None:
                self._shared = SharedBudget(
                    found,
                    mode,
                    name,
                    ratio=float(ratio),
                    minimum_per_second=float(minimum_per_second),
                    window=window,
                    clock=self._clock,
                )

    @property
    def store(self) -> Store | None:
        """The store the budget is kept in; None when it lives in this process."""
        return None if self._shared is None else self._shared.guard.store

    @property
    def degraded_decisions(self) -> int:
        """Retry decisions made without the store (always 0 in memory)."""
        return 0 if self._shared is None else self._shared.guard.degraded_decisions

    def record_call(self) -> None:
        with self._lock:
            self._core.record_call(self._clock.monotonic())
        if self._shared is not None:
            self._shared.record_call()  # no I/O: the deposit goes with the next retry

    def try_retry(self) -> bool:
        shared = self._shared
        if shared is None:
            return self._local_retry()
        return self._decided(shared.withdraw())

    async def atry_retry(self) -> bool:
        """:meth:`try_retry` without blocking the event loop (one awaited round trip if shared)."""
        shared = self._shared
        if shared is None:
            return self._local_retry()
        return self._decided(await shared.awithdraw())

    def _local_retry(self) -> bool:
        with self._lock:
            return self._core.try_retry(self._clock.monotonic())

    def _decided(self, granted: bool | None) -> bool:
        if granted is not None:
            return granted
        mode = self._shared.guard.mode if self._shared is not None else "local"
        if mode == "local":
            return self._local_retry()
        return mode == "allow"

    @property
    def counts(self) -> tuple[int, int]:
        """``(calls, retries)`` of this process in the current window.

        A shared budget counts them too (its ``degraded="local"`` fallback decides on them),
        but its retries are granted by the store and not counted here.
        """
        with self._lock:
            return self._core.counts(self._clock.monotonic())

    def __repr__(self) -> str:
        shared = self._shared
        where = "" if shared is None else f", name={self.name!r}, store={shared.guard.where!r}"
        return f"RetryBudget({self._shape}{where})"


class Retry:
    """Retries a callable with exponential backoff and full jitter.

    Parameters (all keyword-only):

    * ``attempts``: total attempts including the first (default 3).
    * ``initial``, ``maximum``, ``multiplier``: the backoff ceiling before retry n is
      ``min(maximum, initial * multiplier ** (n - 1))`` (defaults 0.1 s, 10 s, 2).
    * ``jitter``: True (default) waits a uniform random time in [0, ceiling] ("full jitter");
      False waits the ceiling.
    * ``deadline``: seconds for the whole call, waits included; a wait that would reach it
      stops the call at once. None (default) means no deadline.
    * ``retry_on``: exception types, or a predicate taking the exception (default
      ``Exception``).
    * ``retry_on_result``: predicate on a returned value; True means retry (default None:
      results are never retried).
    * ``delay_hint``: function taking the failed exception or the rejected result and
      returning the delay the server asked for (e.g. parsed ``Retry-After``) or None. By
      default an exception's numeric ``retry_after`` attribute is used.
    * ``max_retry_after``: cap on any hinted delay, in seconds (default 60).
    * ``budget``: a :class:`RetryBudget` (or anything with ``record_call``/``try_retry``).
    * ``wait``: False skips every wait (for tests); see also :func:`testing_mode`.
    * ``clock``, ``random``: injected time and randomness (``random()`` returns [0, 1)).
    """

    def __init__(
        self,
        *,
        attempts: int = 3,
        initial: float = 0.1,
        maximum: float = 10.0,
        multiplier: float = 2.0,
        jitter: bool = True,
        deadline: float | None = None,
        retry_on: RetryOn = Exception,
        retry_on_result: Callable[[Any], bool] | None = None,
        delay_hint: Callable[[object], float | None] | None = None,
        max_retry_after: float = 60.0,
        budget: RetryBudgetLike | None = None,
        wait: bool = True,
        clock: Clock | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.attempts = check_int("attempts", attempts)
        self.backoff = Backoff(initial, maximum, multiplier, bool(jitter))
        self.deadline = check_optional_number("deadline", deadline)
        self._retry_on = _exception_predicate(retry_on)
        self._retry_on_result = _optional_callable("retry_on_result", retry_on_result)
        self._delay_hint = _optional_callable("delay_hint", delay_hint)
        self.max_retry_after = check_number("max_retry_after", max_retry_after, inclusive=True)
        if budget is not None and not isinstance(budget, RetryBudgetLike):
            raise TypeError(f"budget must have record_call() and try_retry(), got {budget!r}")
        self.budget = budget
        self.wait = bool(wait)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._random = _random.random if random is None else check_callable("random", random)

    # -- the per-call state ---------------------------------------------------------------

    def start(self, *, deadline_at: float | None = None) -> RetryRun:
        """Begin one call; ``deadline_at`` (monotonic) may tighten the deadline."""
        return RetryRun(self, deadline_at)

    def retries_exception(self, exc: Exception) -> bool:
        """Whether ``exc`` is worth another attempt (ignoring attempts, deadline, budget)."""
        return not isinstance(exc, CircuitOpenError) and self._retry_on(exc)

    def retries_result(self, result: object) -> bool:
        """Whether ``result`` is worth another attempt."""
        return self._retry_on_result is not None and bool(self._retry_on_result(result))

    def hint_for(self, outcome: object) -> float | None:
        """The server-requested delay carried by ``outcome``, if any."""
        if self._delay_hint is not None:
            return usable_hint(self._delay_hint(outcome))
        if isinstance(outcome, BaseException):
            return usable_hint(getattr(outcome, "retry_after", None))
        return None

    def with_rules(
        self,
        *,
        retry_on: RetryOn,
        retry_on_result: Callable[[Any], bool] | None,
        delay_hint: Callable[[object], float | None] | None,
    ) -> Retry:
        """A copy with other rules for what to retry; backoff, budget and clock are shared."""
        clone = copy.copy(self)
        clone._retry_on = _exception_predicate(retry_on)
        clone._retry_on_result = _optional_callable("retry_on_result", retry_on_result)
        clone._delay_hint = _optional_callable("delay_hint", delay_hint)
        return clone

    def draw(self) -> float:
        return float(self._random())

    # -- drivers --------------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying as configured; sync waits."""
        return self.start().drive(functools.partial(fn, *args, **kwargs))

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, retrying as configured; waits via the clock."""
        return await self.start().adrive(functools.partial(fn, *args, **kwargs))

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through this policy."""
        return decorate_with(self, fn)

    def __repr__(self) -> str:
        return (
            f"Retry(attempts={self.attempts}, initial={self.backoff.initial}, "
            f"maximum={self.backoff.maximum}, deadline={self.deadline})"
        )


#: Decorator spelling: ``@retry(attempts=5)`` is ``@Retry(attempts=5)``.
retry = Retry


class RetryRun:
    """The state of one retried call: attempts made and the deadline.

    ``after_exception``/``after_result`` return the seconds to wait before the next attempt,
    or None when the caller must stop (re-raise the exception / return the result).
    """

    __slots__ = ("_policy", "attempts", "deadline_at")

    def __init__(self, policy: Retry, deadline_at: float | None) -> None:
        self._policy = policy
        self.attempts = 1
        own = None if policy.deadline is None else policy.clock.monotonic() + policy.deadline
        self.deadline_at = _earliest(own, deadline_at)
        if policy.budget is not None:
            policy.budget.record_call()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline_at is None:
            return None
        return max(0.0, self.deadline_at - self._policy.clock.monotonic())

    def after_exception(self, exc: Exception) -> float | None:
        if not self._policy.retries_exception(exc):
            return None
        return self._next(self._policy.hint_for(exc))

    def after_result(self, result: object) -> float | None:
        if not self._policy.retries_result(result):
            return None
        return self._next(self._policy.hint_for(result))

    def _next(self, hint: float | None) -> float | None:
        policy = self._policy
        wait = self._wait(hint)
        if wait is None or (policy.budget is not None and not policy.budget.try_retry()):
            return None
        self.attempts += 1
        return wait

    async def _anext(self, hint: float | None) -> float | None:
        wait = self._wait(hint)
        if wait is None:
            return None
        budget = self._policy.budget
        if budget is not None:
            atry = getattr(budget, "atry_retry", None)
            if not (await atry() if atry is not None else budget.try_retry()):
                return None
        self.attempts += 1
        return wait

    async def aafter_exception(self, exc: Exception) -> float | None:
        """:meth:`after_exception` that asks a budget kept in a store without blocking."""
        if not self._policy.retries_exception(exc):
            return None
        return await self._anext(self._policy.hint_for(exc))

    async def aafter_result(self, result: object) -> float | None:
        """:meth:`after_result` that asks a budget kept in a store without blocking."""
        if not self._policy.retries_result(result):
            return None
        return await self._anext(self._policy.hint_for(result))

    def _wait(self, hint: float | None) -> float | None:
        policy = self._policy
        return next_wait(
            backoff=policy.backoff,
            attempts_made=self.attempts,
            max_attempts=policy.attempts,
            draw=policy.draw(),
            hint=hint,
            max_hint=policy.max_retry_after,
            now=policy.clock.monotonic(),
            deadline_at=self.deadline_at,
        )

    def drive(self, attempt: Callable[[], T], discard: Callable[[T], object] | None = None) -> T:
        """Run ``attempt`` until it succeeds or this run stops; ``discard`` gets retried results."""
        while True:
            try:
                result = attempt()
            except Exception as exc:
                wait = self.after_exception(exc)
                if wait is None:
                    raise
            else:
                if type(result) is CoroutineType:
                    _refuse_awaitable(result)
                wait = self.after_result(result)
                if wait is None:
                    return result
                if discard is not None:
                    discard(result)
            self.sleep(wait)

    async def adrive(
        self,
        attempt: Callable[[], Awaitable[T]],
        discard: Callable[[T], object] | None = None,
    ) -> T:
        """Async :meth:`drive`; an awaitable returned by ``discard`` is awaited."""
        while True:
            try:
                result = await attempt()
            except Exception as exc:
                wait = await self.aafter_exception(exc)
                if wait is None:
                    raise
            else:
                wait = await self.aafter_result(result)
                if wait is None:
                    return result
                if discard is not None:
                    closing = discard(result)
                    if inspect.isawaitable(closing):
                        await closing
            await self.asleep(wait)

    def sleep(self, seconds: float) -> None:
        if self._policy.wait and not _waits_disabled:
            self._policy.clock.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if self._policy.wait and not _waits_disabled:
            await self._policy.clock.asleep(seconds)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _exception_predicate(retry_on: RetryOn) -> Callable[[Exception], bool]:
    if isinstance(retry_on, type | tuple):
        types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        if not types or not all(_is_exception_type(t) for t in types):
            raise TypeError(f"retry_on must be exception types or a predicate, got {retry_on!r}")
        return lambda exc: isinstance(exc, types)
    return check_callable("retry_on", retry_on)


def _is_exception_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _optional_callable(name: str, value: Any) -> Any:
    return None if value is None else check_callable(name, value)


def _refuse_awaitable(result: object) -> None:
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("call() got an async function; use 'await acall(...)' instead")
