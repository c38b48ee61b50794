"""CircuitBreaker: the sync and async drivers around ``_breaker_core``.

Both drivers follow the same protocol (ask permission, run the call outside any lock, report
the outcome) and share one state behind one ``threading.Lock``; they differ only in ``await``.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import threading
import types
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from math import floor
from typing import Any, ParamSpec, TypeVar, overload

from .._callables import COROUTINE, refuse_coroutine, refuse_sync
from .._callables import is_async_callable as _is_async
from .._clock import SYSTEM_CLOCK, Clock
from .._core import breaker as core
from .._core.breaker import FAILURE, NEUTRAL, SUCCESS, CircuitState, Ticket, Transition
from .._core.counting import count_value
from .._core.validate import (
    check_callable,
    check_int,
    check_number,
    check_optional_number,
    check_time_window,
)
from .._errors import CircuitOpenError
from .._events import ACTIVE as _OBSERVED
from .._events import CallRecorded, CircuitStateChange, Rejected, emit
from .._log import logger
from .._store_variant import StoreBacked
from ..config import current
from ..stores._base import Store
from ..stores._open import store_for_policy

__all__ = [
    "CircuitBreaker",
    "CircuitPermit",
    "CircuitStateChange",
    "CircuitStats",
    "circuit_breaker",
]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CircuitStats:
    """A snapshot of a breaker's counters (the first five fields are the guide's)."""

    total_calls: int
    successful_calls: int
    failed_calls: int
    rejected_calls: int
    state_changes: int
    neutral_calls: int = 0
    state: CircuitState = CircuitState.CLOSED
    failure_count: int = 0


# Tickets of the calls running inside ``with breaker:`` blocks, innermost last, kept per
# thread and per task by the context machinery.
_entered: contextvars.ContextVar[tuple[tuple[CircuitBreaker, Ticket, float], ...]] = (
    contextvars.ContextVar("seawall_breaker_entered", default=())
)


class CircuitBreaker(StoreBacked):
    """Fail fast while a dependency is failing, and probe it carefully when it may be back.

    ``call``/``acall`` run a function under the breaker; it also works as a decorator and as a
    ``with`` / ``async with`` block, and integrations use ``admit()`` to get a
    :class:`CircuitPermit` and settle it themselves. See ``docs/circuit-breaker.md``.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_config",
        "_excluded",
        "_fast_successes",
        "_folded",
        "_listeners",
        "_lock",
        "_open_message",
        "_state",
        "_timed",
        "_window_successes",
        "name",
    )

    def __init__(
        self,
        *,
        max_failures: int | None = None,
        reset_timeout: float | None = None,
        half_open_max_calls: int | None = None,
        success_threshold: int | None = None,
        excluded_exceptions: tuple[type[BaseException], ...] = (),
        failure_rate_threshold: float | None = None,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        window_size: int | None = None,
        minimum_calls: int | None = None,
        window_duration: float | None = None,
        window_buckets: int | None = None,
        stale_attempt_timeout: float | None = None,
        name: str | None = None,
        on_state_change: Callable[[CircuitStateChange], object] | None = None,
        clock: Clock | None = None,
        store: Store | str | None = None,
        degraded: str | None = None,
    ) -> None:
        if store is not None or degraded is not None:
            store_for_policy(store, degraded, name, "circuit breaker")
        # Options left out come from seawall.config (its built-in defaults unless configured).
        d = current().circuit_breaker
        has_threshold = failure_rate_threshold is not None or slow_call_rate_threshold is not None
        if window_duration is None and window_size is None and has_threshold:
            window_duration = d.window_duration  # the configured kind of window, if any
        size, duration, buckets = _window_settings(
            window_size,
            window_duration,
            d.window_buckets if window_buckets is None and window_duration else window_buckets,
            has_threshold,
        )
        reset = check_number(
            "reset_timeout", d.reset_timeout if reset_timeout is None else reset_timeout
        )
        self._config = core.BreakerConfig(
            max_failures=check_int(
                "max_failures", d.max_failures if max_failures is None else max_failures
            ),
            reset_timeout=reset,
            half_open_max_calls=check_int(
                "half_open_max_calls",
                d.half_open_max_calls if half_open_max_calls is None else half_open_max_calls,
            ),
            success_threshold=check_int(
                "success_threshold",
                d.success_threshold if success_threshold is None else success_threshold,
            ),
            stale_attempt_timeout=reset
            if stale_attempt_timeout is None
            else check_number("stale_attempt_timeout", stale_attempt_timeout),
            failure_rate_threshold=_check_ratio("failure_rate_threshold", failure_rate_threshold),
            slow_call_duration=check_optional_number("slow_call_duration", slow_call_duration),
            slow_call_rate_threshold=_check_ratio(
                "slow_call_rate_threshold", slow_call_rate_threshold
            ),
            window_size=size,
            minimum_calls=check_int(
                "minimum_calls", size if minimum_calls is None else minimum_calls
            ),
            window_duration=duration,
            window_buckets=buckets,
        )
        if (slow_call_duration is None) != (slow_call_rate_threshold is None):
            raise ValueError(
                "slow_call_duration and slow_call_rate_threshold must be given together, got "
                f"slow_call_duration={slow_call_duration!r}, "
                f"slow_call_rate_threshold={slow_call_rate_threshold!r}"
            )
        self._excluded = _check_exception_types(excluded_exceptions)
        self._timed = slow_call_duration is not None
        self.name = name
        self._open_message = f"Circuit breaker '{name or 'unnamed'}' is open"
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._state = core.BreakerState()
        # Successes counted on the lock-free paths; next() on itertools.count is atomic.
        # Quiet ones only ever change the success counter; those in a time window
        # (``quorum_bucket``) are handed to the core under the lock (_fold) before it next
        # reads the state, the first _folded of them already were.
        self._fast_successes = itertools.count()
        self._window_successes = itertools.count()
        self._folded = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[CircuitStateChange], object]] = []
        if on_state_change is not None:
            self.add_listener(on_state_change)

    # -- reading ------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state a call arriving now would find (reading it changes nothing)."""
        with self._lock:
            return core.peek_state(self._state, self._config, self._clock.monotonic())

    @property
    def failure_count(self) -> int:
        """Consecutive counted failures while closed."""
        return self._state.failure_count

    @property
    def stats(self) -> CircuitStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            self._fold()
            s = self._state
            successes = s.successful_calls + count_value(self._fast_successes)
            return CircuitStats(
                total_calls=successes + s.failed_calls + s.rejected_calls,
                successful_calls=successes,
                failed_calls=s.failed_calls,
                rejected_calls=s.rejected_calls,
                state_changes=s.state_changes,
                neutral_calls=s.neutral_calls,
                state=core.peek_state(s, self._config, self._clock.monotonic()),
                failure_count=s.failure_count,
            )

    def add_listener(self, listener: Callable[[CircuitStateChange], object]) -> None:
        """Call ``listener(event)`` after every state change (outside the lock)."""
        self._listeners.append(check_callable("listener", listener))

    def remove_listener(self, listener: Callable[[CircuitStateChange], object]) -> None:
        """Stop calling ``listener``; a ValueError if it was not added."""
        self._listeners.remove(listener)

    # -- manual control -----------------------------------------------------------------

    def reset(self) -> None:
        """Close the breaker and forget its failures (a state change if it was not closed)."""
        self._force("reset")

    def force_open(self) -> None:
        """Open the breaker and keep it open (no probes) until ``reset()`` or ``force_closed()``."""
        self._force("open")

    def force_closed(self) -> None:
        """Close the breaker and keep it closed whatever fails, until ``reset()``."""
        self._force("closed")

    def _force(self, action: str) -> None:
        with self._lock:
            self._fold()
            transition = core.force(self._state, action, self._clock.monotonic())
        if transition is not None:
            self._announce(transition)

    # -- the permission protocol --------------------------------------------------------

    def admit(self) -> CircuitPermit:
        """Ask to run one call; raise :class:`CircuitOpenError` if the breaker refuses.

        The returned permit must be settled exactly once.
        """
        ticket = self._acquire()
        return CircuitPermit(self, ticket, self._clock.monotonic() if self._timed else 0.0)

    async def aadmit(self) -> CircuitPermit:
        """:meth:`admit` for tasks: a breaker kept in a store asks it without blocking the loop.

        Settle the permit with its ``a``-methods (``await permit.asettle(exc)``) to report
        without blocking too.
        """
        return self.admit()

    async def _asettle(self, ticket: Ticket, outcome: int, started: float = 0.0) -> None:
        self._settle(ticket, outcome, started)

    def _acquire(self) -> Ticket:
        # The httpx engine repeats the closed case inline: tests/test_httpx_engine.py holds
        # the two together.
        ticket = self._state.closed_ticket
        if ticket is not None:
            return ticket
        decision = self._admit_slow()
        if isinstance(decision, float):
            raise CircuitOpenError(self._open_message, retry_after=decision)
        return decision

    def _admit_slow(self) -> Ticket | float:
        with self._lock:
            self._fold()
            decision, transition = core.admit(self._state, self._config, self._clock.monotonic())
        if transition is not None:
            self._announce(transition)
        if _OBSERVED and decision.__class__ is float:
            s = self._state  # read after the lock: a later change may show, which is harmless
            reason = "forced_open" if s.isolated else s.state.name.lower()
            emit(Rejected("breaker", self.name, reason, decision))
        return decision

    def _settle(self, ticket: Ticket, outcome: int, started: float = 0.0) -> None:
        duration = self._clock.monotonic() - started if self._timed else 0.0
        with self._lock:
            self._fold()
            transition = core.record(
                self._state, self._config, self._clock.monotonic(), ticket, outcome, duration
            )
        if _OBSERVED:
            emit(CallRecorded("breaker", self.name, _OUTCOME_NAMES[outcome]))
        if transition is not None:
            self._announce(transition)

    def _succeeded(self, ticket: Ticket, started: float) -> None:
        s = self._state
        if ticket is not s.closed_ticket:
            self._settle(ticket, SUCCESS, started)
            return
        if s.quiet:
            # The core says a success changes nothing but the counter: skip the lock.
            next(self._fast_successes)
        elif s.quorum_bucket is not None and (
            floor(self._clock.monotonic() / self._config.bucket_width) == s.quorum_bucket
        ):  # = breaker_window.bucket_index
            # The core says a success in this bucket changes nothing but counters: count it
            # without the lock; _fold hands it over before the core next reads the state.
            next(self._window_successes)
        elif s.window_quorum:
            # A time window at its quorum: the core may count the success without judging
            # the rates (rechecked under the lock; False sends it the long way).
            now = self._clock.monotonic()
            lock = self._lock
            lock.acquire()  # not ``with``: cheaper on CPython 3.11, and this is the hot path
            try:
                self._fold()
                counted = core.count_success(
                    s, self._config, now, ticket, now - started if self._timed else 0.0
                )
            finally:
                lock.release()
            if not counted:
                self._settle(ticket, SUCCESS, started)
                return
        else:
            self._settle(ticket, SUCCESS, started)
            return
        if _OBSERVED:
            emit(CallRecorded("breaker", self.name, "success"))

    def _fold(self) -> None:
        # Under the lock: the successes counted without it since the last fold, to the core.
        pending = count_value(self._window_successes) - self._folded
        if pending:
            self._folded += pending
            core.add_successes(self._state, pending)

    def _outcome(self, exc: BaseException) -> int:
        # Cancellation, KeyboardInterrupt and SystemExit are BaseExceptions: neutral.
        if not isinstance(exc, Exception) or isinstance(exc, self._excluded):
            return NEUTRAL
        return FAILURE

    def report_transition(self, transition: Transition) -> None:
        """Log a transition a store decided for this breaker and tell the listeners.

        For integrations that decide several gates in one store operation (the ASGI
        middleware's admission): the breaker's own methods announce their transitions.
        """
        self._announce(transition)

    def _announce(self, transition: Transition) -> None:
        log = logger.warning if transition.new is CircuitState.OPEN else logger.info
        log(
            "circuit breaker %r: %s -> %s (%s)",
            self.name or "unnamed",
            transition.old.name,
            transition.new.name,
            transition.reason,
        )
        if not self._listeners and not _OBSERVED:
            return
        event = CircuitStateChange(
            self.name, transition.old, transition.new, transition.reason, transition.at
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("state-change listener %r failed", listener)
        if _OBSERVED:
            emit(event)

    # -- running calls --------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` under the breaker (sync functions only)."""
        ticket = self._state.closed_ticket
        if ticket is None:
            # Not closed: ask the core. Raising here rather than in a helper keeps the
            # rejection path one frame shorter.
            decision = self._admit_slow()
            if isinstance(decision, float):
                raise CircuitOpenError(self._open_message, retry_after=decision)
            ticket = decision
        started = self._clock.monotonic() if self._timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, self._outcome(exc), started)
            raise
        if result.__class__ is COROUTINE:
            # An async function (or an object with an async __call__) passed to the sync
            # path: its body has not run. Refuse loudly instead of recording a success.
            self._settle(ticket, NEUTRAL)
            refuse_coroutine(result, fn, "breaker")
        self._succeeded(ticket, started)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under the breaker (asyncio or trio)."""
        ticket = self._state.closed_ticket
        if ticket is None:
            decision = self._admit_slow()
            if isinstance(decision, float):
                raise CircuitOpenError(self._open_message, retry_after=decision)
            ticket = decision
        started = self._clock.monotonic() if self._timed else 0.0
        try:
            awaitable = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, self._outcome(exc), started)
            raise
        if awaitable.__class__ is not COROUTINE and not hasattr(awaitable, "__await__"):
            self._settle(ticket, NEUTRAL)
            refuse_sync(fn, "breaker")
        try:
            result = await awaitable
        except BaseException as exc:
            self._settle(ticket, self._outcome(exc), started)
            raise
        self._succeeded(ticket, started)
        return result

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any], /) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through this breaker."""
        return _decorate(self, fn)

    def __enter__(self) -> CircuitBreaker:
        ticket = self._acquire()
        started = self._clock.monotonic() if self._timed else 0.0
        _entered.set((*_entered.get(), (self, ticket, started)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        ticket, started = self._pop_entered()
        self._settle(ticket, SUCCESS if exc is None else self._outcome(exc), started)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _pop_entered(self) -> tuple[Ticket, float]:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                _entered.set(stack[:index] + stack[index + 1 :])
                return stack[index][1], stack[index][2]
        raise RuntimeError("breaker exited without a matching enter in this context")

    def __repr__(self) -> str:
        c = self._config
        return (
            f"CircuitBreaker(name={self.name!r}, state={self._state.state.name}, "
            f"max_failures={c.max_failures}, reset_timeout={c.reset_timeout})"
        )


class CircuitPermit:
    """Permission to run one call; settle it exactly once with the outcome."""

    __slots__ = ("_breaker", "_started", "_ticket")

    def __init__(self, breaker: CircuitBreaker, ticket: Ticket, started: float) -> None:
        self._breaker = breaker
        self._ticket: Ticket | None = ticket
        self._started = started

    @property
    def settled(self) -> bool:
        """Whether an outcome has been reported."""
        return self._ticket is None

    def success(self) -> None:
        """The call succeeded."""
        ticket = self._ticket  # _take(), inlined: this is every healthy call's path
        if ticket is None:
            raise RuntimeError("this permit was already settled")
        self._ticket = None
        self._breaker._succeeded(ticket, self._started)  # skips the lock when it can

    def failure(self) -> None:
        """The call failed in a way that counts against the dependency."""
        self._report(FAILURE)

    def neutral(self) -> None:
        """The call ended without saying anything about the dependency (e.g. cancelled)."""
        self._report(NEUTRAL)

    def settle(self, exc: BaseException | None) -> None:
        """Report by exception: None is a success; cancellation or excluded types are neutral."""
        self._report(SUCCESS if exc is None else self._breaker._outcome(exc))

    async def asuccess(self) -> None:
        """:meth:`success`, reported without blocking the event loop."""
        await self._areport(SUCCESS)

    async def afailure(self) -> None:
        """:meth:`failure`, reported without blocking the event loop."""
        await self._areport(FAILURE)

    async def aneutral(self) -> None:
        """:meth:`neutral`, reported without blocking the event loop."""
        await self._areport(NEUTRAL)

    async def asettle(self, exc: BaseException | None) -> None:
        """:meth:`settle`, reported without blocking the event loop."""
        await self._areport(SUCCESS if exc is None else self._breaker._outcome(exc))

    def _take(self) -> Ticket:
        ticket = self._ticket
        if ticket is None:
            raise RuntimeError("this permit was already settled")
        self._ticket = None
        return ticket

    def _report(self, outcome: int) -> None:
        self._breaker._settle(self._take(), outcome, self._started)

    async def _areport(self, outcome: int) -> None:
        await self._breaker._asettle(self._take(), outcome, self._started)


def _decorate(breaker: CircuitBreaker, fn: Callable[P, Any]) -> Callable[P, Any]:
    check_callable("fn", fn)
    if _is_async(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return await breaker.acall(fn, *args, **kwargs)

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return breaker.call(fn, *args, **kwargs)

        wrapper = sync_wrapper
    wrapper.breaker = breaker
    wrapper._circuit_breaker = breaker
    return wrapper  # type: ignore[no-any-return]


@overload
def circuit_breaker(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def circuit_breaker(
    func: None = None,
    /,
    *,
    max_failures: int | None = None,
    reset_timeout: float | None = None,
    half_open_max_calls: int | None = None,
    excluded_exceptions: tuple[type[BaseException], ...] = (),
    name: str | None = None,
    **options: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def circuit_breaker(
    func: Callable[..., Any] | None = None,
    /,
    *,
    max_failures: int | None = None,
    reset_timeout: float | None = None,
    half_open_max_calls: int | None = None,
    excluded_exceptions: tuple[type[BaseException], ...] = (),
    name: str | None = None,
    **options: Any,
) -> Any:
    """Give a function its own breaker, bare or with options (``max_failures=3``).

    The breaker is reachable as ``wrapper.breaker`` to inspect or reset it.
    """

    def decorate(fn: Callable[..., Any]) -> Any:
        breaker = CircuitBreaker(
            max_failures=max_failures,
            reset_timeout=reset_timeout,
            half_open_max_calls=half_open_max_calls,
            excluded_exceptions=excluded_exceptions,
            name=name or getattr(fn, "__qualname__", None),
            **options,
        )
        return _decorate(breaker, fn)

    return decorate if func is None else decorate(func)


_OUTCOME_NAMES = {SUCCESS: "success", FAILURE: "failure", NEUTRAL: "neutral"}


def _check_ratio(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    ratio = check_number(name, value)
    if ratio > 1:
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return ratio


_DEFAULT_WINDOW = 100  # calls in a count window; also minimum_calls' default for both kinds


def _window_settings(
    size: object, duration: object, buckets: object, has_threshold: bool
) -> tuple[int, float | None, int]:
    """``(window_size, window_duration, window_buckets)``: a count window or a time window."""
    if duration is None:
        if buckets is not None:
            raise ValueError(
                f"window_buckets cuts a time window: give window_duration too, got "
                f"window_buckets={buckets!r}"
            )
        return check_int("window_size", _DEFAULT_WINDOW if size is None else size), None, 10
    if size is not None:
        raise ValueError(
            "window_size (the last N calls) and window_duration (the last N seconds) "
            f"exclude each other, got window_size={size!r}, window_duration={duration!r}"
        )
    seconds, count = check_time_window(duration, buckets)
    if not has_threshold:
        raise ValueError(
            "window_duration needs failure_rate_threshold or slow_call_rate_threshold, got "
            f"window_duration={duration!r} with neither"
        )
    return _DEFAULT_WINDOW, seconds, count


def _check_exception_types(value: object) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        raise TypeError(f"excluded_exceptions must be a tuple of exception types, got {value!r}")
    return value
