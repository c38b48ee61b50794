"""Typed events and the process-wide listener registry.

Theory of operation
-------------------
Policies describe what happens to them as small frozen dataclasses (a rejection, a wait, a
breaker changing state, a store going away and coming back) and hand them to every listener
added with :func:`add_listener`. Listeners are plain callables; they run synchronously in the
thread (or task) where the event happened, after the policy has released its lock, so they may
read the policy's ``stats`` but should be quick.

With nobody listening an event costs one global test on the hot path::

    if ACTIVE:                       # a list, non-empty while anyone listens
        emit(Rejected(...))

so the event object is never even built. ``ACTIVE`` is mutated in place (never rebound), which
lets every module import it once and test it without an attribute lookup.

A listener that raises is logged on the ``seawall.events`` logger (the first failure with its
traceback, later ones only counted in :attr:`Subscription.failures`) and never disturbs the
policy or the other listeners.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import MISSING, dataclass, fields
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

from ._core.breaker import CircuitState
from ._core.validate import check_callable
from ._log import logger as _seawall_logger  # noqa: F401  # the NullHandler

__all__ = [
    "ACTIVE",
    "AdaptiveBulkheadChanged",
    "BulkheadChanged",
    "CallRecorded",
    "CircuitStateChange",
    "DegradedDecision",
    "Event",
    "LimiterWaited",
    "Listener",
    "LoopStalled",
    "Rejected",
    "StoreDegraded",
    "Subscription",
    "WatchdogFired",
    "add_listener",
    "emit",
    "listening",
]

logger = logging.getLogger("seawall.events")


_T = TypeVar("_T")


def _direct_init(cls: type[_T]) -> type[_T]:
    """Give a frozen slotted dataclass an ``__init__`` that writes its slots directly.

    The dataclass-made one calls ``object.__setattr__`` per field (frozen), which costs about
    half again as much; events on per-call paths (a breaker's outcome, a bulkhead's
    occupancy, a rejection under attack) are built often enough for that to show. Same
    signature and defaults; assigning from outside still raises ``FrozenInstanceError``.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, object] = {f"_set_{n}": vars(cls)[n].__set__ for n in names}
    params = []
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"\n    _set_{n}(self, {n})" for n in names)
    exec(f"def __init__(self, {', '.join(params)}):{body}", namespace)
    init: Any = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@dataclass(frozen=True, slots=True)
class CircuitStateChange:
    """A breaker changed state: given to its ``on_state_change`` listeners and to the ones here."""

    name: str | None
    old: CircuitState
    new: CircuitState
    reason: str
    at: float


@_direct_init
@dataclass(frozen=True, slots=True)
class Rejected:
    """A policy refused a call: your code did not run (or ``try_acquire`` said False)."""

    policy: str  #: "breaker", "limiter" or "bulkhead"
    name: str | None
    #: e.g. "open", "half_open", "rate_limited", "keys_full", "full", "timeout", or for an
    #: adaptive bulkhead "shed_sheddable", "shed_default", "shed_critical"
    reason: str
    retry_after: float  #: seconds until trying again makes sense (0.0 when unknown)
    key: Hashable | None = None  #: the key of a KeyedRateLimiter, else None


@_direct_init
@dataclass(frozen=True, slots=True)
class CallRecorded:
    """A breaker recorded the outcome of a call it admitted."""

    policy: str  #: "breaker"
    name: str | None
    outcome: str  #: "success", "failure" or "neutral"


@_direct_init
@dataclass(frozen=True, slots=True)
class LimiterWaited:
    """A rate limiter granted tokens after making the caller wait."""

    name: str | None
    seconds: float
    key: Hashable | None = None


@_direct_init
@dataclass(frozen=True, slots=True)
class BulkheadChanged:
    """A bulkhead's occupancy changed (values read right after the change)."""

    name: str | None
    in_flight: int
    queued: int


@_direct_init
@dataclass(frozen=True, slots=True)
class AdaptiveBulkheadChanged:
    """An adaptive bulkhead's limit or occupancy changed (values read right after the change)."""

    name: str | None
    limit: int  #: the current concurrency limit (the default priority's ceiling)
    in_flight: int


@dataclass(frozen=True, slots=True)
class StoreDegraded:
    """A policy's store stopped answering (``active=True``) or answers again (``False``)."""

    policy: str
    name: str | None
    store_url: str
    mode: str  #: the policy's ``degraded=`` mode: "local", "allow" or "deny"
    active: bool
    decisions: int = 0  #: on the closing event, decisions made in degraded mode meanwhile


@dataclass(frozen=True, slots=True)
class DegradedDecision:
    """One decision made in degraded mode, without the store."""

    policy: str
    name: str | None
    mode: str


@dataclass(frozen=True, slots=True)
class WatchdogFired:
    """A watchdog went ``timeout`` seconds without a ping."""

    name: str
    seconds_inactive: float
    timeout: float


@dataclass(frozen=True, slots=True)
class LoopStalled:
    """An event loop was blocked (``recovered=False``) or runs again (``recovered=True``)."""

    name: str
    duration: float
    recovered: bool
    stack: str = ""


Event: TypeAlias = (
    "Rejected | CallRecorded | LimiterWaited | BulkheadChanged | AdaptiveBulkheadChanged"
    " | StoreDegraded | DegradedDecision | WatchdogFired | LoopStalled | CircuitStateChange"
)
Listener: TypeAlias = Callable[["Event"], object]


class Subscription:
    """A registered listener; ``remove()`` (or leaving ``with``) unregisters it."""

    __slots__ = ("failures", "listener")

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.failures = 0  #: how many times the listener raised

    @property
    def active(self) -> bool:
        """Whether the listener still receives events."""
        return self in _subscriptions

    def remove(self) -> None:
        """Stop delivering events to the listener (idempotent)."""
        _remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Subscription({self.listener!r}, active={self.active})"


#: Non-empty while anyone listens. Mutated in place only: modules import it once and test it.
ACTIVE: list[Subscription] = []
# What emit() iterates: an immutable copy, so listeners may subscribe or unsubscribe from
# inside a listener (or another thread) without disturbing a delivery in progress.
_subscriptions: tuple[Subscription, ...] = ()
_lock = threading.Lock()


def add_listener(listener: Listener) -> Subscription:
    """Call ``listener(event)`` for every seawall event in this process until removed."""
    global _subscriptions
    subscription = Subscription(check_callable("listener", listener))
    with _lock:
        _subscriptions = (*_subscriptions, subscription)
        ACTIVE[:] = _subscriptions
    return subscription


def _remove(subscription: Subscription) -> None:
    global _subscriptions
    with _lock:
        _subscriptions = tuple(s for s in _subscriptions if s is not subscription)
        ACTIVE[:] = _subscriptions


def listening() -> bool:
    """Whether any listener is registered (build events only when this is True)."""
    return bool(ACTIVE)


def emit(event: Event) -> None:
    """Hand ``event`` to every listener; a listener that raises is logged, never propagated."""
    for subscription in _subscriptions:
        try:
            subscription.listener(event)
        except Exception:
            subscription.failures += 1
            if subscription.failures == 1:
                logger.exception(
                    "seawall event listener %r failed on %r (later failures are only counted)",
                    subscription.listener,
                    event,
                )
