"""Circuit breakers whose state lives in a store (file or Redis), shared across processes.

``CircuitBreaker(..., name="db", store=url)`` builds a :class:`SharedCircuitBreaker`: the same
public object, but admission and outcomes are store operations running the same core rules on
the shared record, so a breaker opened by one process rejects in all of them, and half-open
admits ``half_open_max_calls`` probes across all of them. The in-process state the object still
carries is the ``degraded="local"`` fallback.

State changes are announced (logged, and sent to listeners) by the process whose call caused
them. Each call costs two store operations: one to be admitted, one to report the outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio

from .._callables import COROUTINE, refuse_coroutine, refuse_sync
from .._core.breaker import NEUTRAL, SUCCESS, CircuitState, Ticket, Transition
from .._errors import CircuitOpenError
from .._events import ACTIVE as _OBSERVED
from .._events import CallRecorded, Rejected, emit
from .._redact import redact_url
from ..stores._base import BreakerSpec, Store, StoreUnavailableError
from ..stores._degraded import Degraded, StoreGuard
from ..stores._open import store_for_policy
from .breaker import _OUTCOME_NAMES, CircuitBreaker, CircuitPermit, CircuitStats, _entered

__all__ = ["SharedCircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")


class LocalTicket(tuple[int, int]):
    """A ticket from the in-process fallback state (degraded="local")."""

    __slots__ = ()


class AllowedTicket(tuple[int, int]):
    """A call let through by degraded="allow": its outcome goes nowhere."""

    __slots__ = ()


_ALLOWED = AllowedTicket((-1, -1))

#: ``retry_after`` of a call refused by degraded="deny": the store's longest backoff.
_DENY_RETRY = 1.0


class SharedCircuitBreaker(CircuitBreaker, variant_of=CircuitBreaker):
    """A :class:`CircuitBreaker` whose state lives in a store; see the module docstring."""

    __slots__ = ("_guard", "_spec", "_store")

    def __init__(
        self, *, store: Store | str | None = None, degraded: str | None = None, **options: Any
    ) -> None:
        name = options.get("name")
        found, degraded = store_for_policy(store, degraded, name, "circuit breaker")
        if found is None or name is None:  # pragma: no cover - __new__ sends only these here
            raise TypeError("SharedCircuitBreaker needs a store and a name")
        super().__init__(**options)
        if self._config.uses_window and not found.supports_breaker_windows:
            raise ValueError(
                f"store {found.url!r} keeps consecutive-failure breakers only; "
                "failure_rate_threshold and slow_call_rate_threshold need the memory or file store"
            )
        self._store = found
        self._spec = BreakerSpec(name, self._config)
        self._guard = StoreGuard(found, degraded, "circuit breaker", name, self._clock)

    # -- reading ----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """Where the state lives."""
        return self._store

    @property
    def store_spec(self) -> BreakerSpec:
        """What the store knows this policy by."""
        return self._spec

    @property
    def degraded_decisions(self) -> int:
        """Admissions decided without the store."""
        return self._guard.degraded_decisions

    @property
    def state(self) -> CircuitState:
        """The shared state a call arriving now would find (the local one if the store is down)."""
        try:
            return CircuitState[self._store.view(self._spec).state.upper()]
        except (StoreUnavailableError, OSError):
            return CircuitBreaker.state.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    def failure_count(self) -> int:
        """Consecutive counted failures in the shared state."""
        try:
            return self._store.view(self._spec).failure_count
        except (StoreUnavailableError, OSError):
            return self._state.failure_count

    @property
    def stats(self) -> CircuitStats:
        """The shared counters (every process's calls); local ones while the store is down."""
        try:
            view = self._store.view(self._spec)
        except (StoreUnavailableError, OSError):
            return CircuitBreaker.stats.fget(self)  # type: ignore[attr-defined,no-any-return]
        return CircuitStats(
            total_calls=view.successful_calls + view.failed_calls + view.rejected_calls,
            successful_calls=view.successful_calls,
            failed_calls=view.failed_calls,
            rejected_calls=view.rejected_calls,
            state_changes=view.state_changes,
            state=CircuitState[view.state.upper()],
            failure_count=view.failure_count,
        )

    def _force(self, action: str) -> None:
        CircuitBreaker._force(self, action)  # the local fallback follows manual control too
        try:
            transition = self._store.force(self._spec, action)
        except (StoreUnavailableError, OSError) as exc:
            self._guard.failed(exc)
            return
        if transition is not None:
            self._announce(transition)

    # -- admission and outcomes -------------------------------------------------------------

    def _acquire(self) -> Ticket:
        decision = self._decide()
        if isinstance(decision, float):
            raise CircuitOpenError(self._open_message, retry_after=decision)
        return decision

    async def aadmit(self) -> CircuitPermit:
        """Ask the store to run one call without blocking the loop; settle with ``a``-methods."""
        ticket = await self._aacquire()
        return CircuitPermit(self, ticket, self._clock.monotonic() if self._timed else 0.0)

    async def _aacquire(self) -> Ticket:
        decision = await self._adecide()
        if isinstance(decision, float):
            raise CircuitOpenError(self._open_message, retry_after=decision)
        return decision

    def _decide(self) -> Ticket | float:
        return self._admitted(self._guard.ask(lambda: self._store.admit(self._spec)))

    async def _adecide(self) -> Ticket | float:
        return self._admitted(await self._guard.aask(lambda: self._store.aadmit(self._spec)))

    def _admitted(
        self, answer: tuple[Ticket | float, Transition | None] | Degraded
    ) -> Ticket | float:
        if isinstance(answer, Degraded):
            decision = self._degraded_admit()
        else:
            decision, transition = answer
            if transition is not None:
                self._announce(transition)
        if _OBSERVED and isinstance(decision, float):
            emit(Rejected("breaker", self.name, "open", decision))
        return decision

    def _degraded_admit(self) -> Ticket | float:
        mode = self._guard.mode
        if mode == "allow":
            return _ALLOWED
        if mode == "deny":
            return _DENY_RETRY
        decision = CircuitBreaker._admit_slow(self)
        return decision if isinstance(decision, float) else LocalTicket(decision)

    def _admit_slow(self) -> Ticket | float:
        return self._decide()

    def _settle(self, ticket: Ticket, outcome: int, started: float = 0.0) -> None:
        if _OBSERVED and ticket.__class__ is not LocalTicket:  # the local path emits its own
            emit(CallRecorded("breaker", self.name, _OUTCOME_NAMES[outcome]))
        kind = ticket.__class__
        if kind is AllowedTicket:
            return
        if kind is LocalTicket:
            CircuitBreaker._settle(self, ticket, outcome, started)
            return
        duration = self._clock.monotonic() - started if self._timed else 0.0
        try:
            transition = self._store.record(self._spec, ticket, outcome, duration)
        except (StoreUnavailableError, OSError) as exc:
            self._guard.failed(exc)
            return
        if transition is not None:
            self._announce(transition)

    async def _asettle(self, ticket: Ticket, outcome: int, started: float = 0.0) -> None:
        kind = ticket.__class__
        if kind is LocalTicket or kind is AllowedTicket:
            self._settle(ticket, outcome, started)
            return
        if _OBSERVED:
            emit(CallRecorded("breaker", self.name, _OUTCOME_NAMES[outcome]))
        duration = self._clock.monotonic() - started if self._timed else 0.0
        # Shielded: the outcome of a cancelled call is still reported (as neutral).
        with anyio.CancelScope(shield=True):
            try:
                transition = await self._store.arecord(self._spec, ticket, outcome, duration)
            except (StoreUnavailableError, OSError) as exc:
                self._guard.failed(exc)
                return
        if transition is not None:
            self._announce(transition)

    def _succeeded(self, ticket: Ticket, started: float) -> None:
        self._settle(ticket, SUCCESS, started)

    # -- running calls ------------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` under the shared breaker (sync functions only)."""
        ticket = self._acquire()
        started = self._clock.monotonic() if self._timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, self._outcome(exc), started)
            raise
        if result.__class__ is COROUTINE:
            self._settle(ticket, NEUTRAL)
            refuse_coroutine(result, fn, "breaker")
        self._settle(ticket, SUCCESS, started)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under the shared breaker (asyncio or trio)."""
        ticket = await self._aacquire()
        started = self._clock.monotonic() if self._timed else 0.0
        try:
            awaitable = fn(*args, **kwargs)
        except BaseException as exc:
            await self._asettle(ticket, self._outcome(exc), started)
            raise
        if awaitable.__class__ is not COROUTINE and not hasattr(awaitable, "__await__"):
            await self._asettle(ticket, NEUTRAL)
            refuse_sync(fn, "breaker")
        try:
            result = await awaitable
        except BaseException as exc:
            await self._asettle(ticket, self._outcome(exc), started)
            raise
        await self._asettle(ticket, SUCCESS, started)
        return result

    async def __aenter__(self) -> SharedCircuitBreaker:
        ticket = await self._aacquire()
        started = self._clock.monotonic() if self._timed else 0.0
        _entered.set((*_entered.get(), (self, ticket, started)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, started = self._pop_entered()
        await self._asettle(ticket, SUCCESS if exc is None else self._outcome(exc), started)

    def __repr__(self) -> str:
        return f"{CircuitBreaker.__repr__(self)[:-1]}, store={redact_url(self._store.url)!r})"
