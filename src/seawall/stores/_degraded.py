"""What a store-backed policy does while its store does not answer.

Each store-backed policy owns one :class:`StoreGuard`. When a store operation fails (a lock
wait ran out, Redis is down, slow or erroring) the policy decides by its ``degraded`` mode:

* ``"local"`` (default): the policy's own in-process state decides, as if it had no store;
* ``"allow"``: the call is admitted;
* ``"deny"``: the call is rejected.

The guard is a small breaker around the store: after a failure it skips the store for a short
backoff (0.1 s, doubling up to 1 s) so a dead store does not add its timeout to every call,
then tries it again; the first answer ends the episode. Each episode is logged once when it
starts and once when it ends, with the number of decisions made in degraded mode; every such
decision is counted (``degraded_decisions``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._clock import Clock
from .._events import ACTIVE, DegradedDecision, StoreDegraded, emit
from .._log import logger as _seawall_logger  # noqa: F401  # the NullHandler
from .._redact import redact_url
from ._base import Store, StoreUnavailableError

__all__ = ["DEGRADED", "DEGRADED_MODES", "Degraded", "StoreGuard", "check_degraded"]

T = TypeVar("T")


class Degraded:
    """The type of :data:`DEGRADED`: "the store did not answer; decide in degraded mode"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEGRADED"


DEGRADED = Degraded()

DEGRADED_MODES = ("local", "allow", "deny")

logger = logging.getLogger("seawall.stores")

# Event names of the policy kinds (log lines use the longer human names).
_EVENT_KIND = {"rate limiter": "limiter", "circuit breaker": "breaker", "bulkhead": "bulkhead"}

_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 1.0


def check_degraded(mode: object) -> str:
    """Validate a ``degraded=`` argument."""
    if mode not in DEGRADED_MODES:
        raise ValueError(f"degraded must be one of 'local', 'allow', 'deny'; got {mode!r}")
    return str(mode)


class StoreGuard:
    """Health of one policy's store: episodes, backoff and the degraded-decision count."""

    __slots__ = (
        "_backoff",
        "_clock",
        "_episode_count",
        "_lock",
        "_retry_at",
        "degraded_decisions",
        "kind",
        "mode",
        "name",
        "store",
    )

    def __init__(self, store: Store, mode: str, kind: str, name: str, clock: Clock) -> None:
        self.store = store
        self.mode = mode
        self.kind = kind
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._retry_at: float | None = None  # monotonic; None while the store answers
        self._backoff = _FIRST_BACKOFF
        self._episode_count = 0
        self.degraded_decisions = 0

    @property
    def degraded(self) -> bool:
        """Whether an episode is running (the last store call failed)."""
        return self._retry_at is not None

    def ask(self, operation: Callable[[], T]) -> T | Degraded:
        """Run one store operation; :data:`DEGRADED` (counted) if the store cannot be asked.

        Only a store that is unavailable degrades the decision; any other error (a
        misconfigured store, a bug) propagates.
        """
        if self.usable():
            try:
                answer = operation()
            except (StoreUnavailableError, OSError) as exc:
                self.failed(exc)
            else:
                self.answered()
                return answer
        self.count()
        return DEGRADED

    async def aask(self, operation: Callable[[], Awaitable[T]]) -> T | Degraded:
        """:meth:`ask` for an async store operation."""
        if self.usable():
            try:
                answer = await operation()
            except (StoreUnavailableError, OSError) as exc:
                self.failed(exc)
            else:
                self.answered()
                return answer
        self.count()
        return DEGRADED

    def usable(self) -> bool:
        """Whether to ask the store now (always, unless backing off after a failure)."""
        retry_at = self._retry_at
        return retry_at is None or self._clock.monotonic() >= retry_at

    @property
    def where(self) -> str:
        """The store's URL as logs and events show it (never a password)."""
        return redact_url(self.store.url)

    def failed(self, exc: BaseException) -> None:
        """Record a failed store call; log the start of an episode."""
        with self._lock:
            starting = self._retry_at is None
            if not starting:
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            self._retry_at = self._clock.monotonic() + self._backoff
        if starting:
            logger.warning(
                "%s %r: store %s unavailable (%s); deciding with degraded=%r until it answers",
                self.kind,
                self.name,
                self.where,
                exc,
                self.mode,
            )
            if ACTIVE:
                emit(StoreDegraded(self._event_kind, self.name, self.where, self.mode, True))

    def answered(self) -> None:
        """Record a store answer; log the end of an episode if one was running."""
        if self._retry_at is None:
            return
        with self._lock:
            if self._retry_at is None:
                return
            self._retry_at = None
            self._backoff = _FIRST_BACKOFF
            count = self.degraded_decisions - self._episode_count
            self._episode_count = self.degraded_decisions
        logger.info(
            "%s %r: store %s answers again; %d decisions were made with degraded=%r",
            self.kind,
            self.name,
            self.where,
            count,
            self.mode,
        )
        if ACTIVE:
            emit(StoreDegraded(self._event_kind, self.name, self.where, self.mode, False, count))

    def count(self) -> None:
        """Count one decision made in degraded mode."""
        with self._lock:
            self.degraded_decisions += 1
        if ACTIVE:
            emit(DegradedDecision(self._event_kind, self.name, self.mode))

    @property
    def _event_kind(self) -> str:
        return _EVENT_KIND.get(self.kind, self.kind)
