"""AdaptiveBulkhead: a bulkhead whose capacity follows the latency of the calls it admits.

The update rules live in :mod:`seawall._core.adaptive`; this module only locks, reads the
clock and counts. It never queues: a call that finds its priority's ceiling reached is shed at
once (:class:`~seawall.BulkheadFullError`), which is the point of load shedding. One
``threading.Lock`` guards the state for threads and tasks alike and is held only for counter
updates, so taking it from an event loop never blocks for long.

Every admission returns an :class:`AdaptivePermit` that is settled once: ``success()`` (its
latency is a sample), ``drop()`` (a timeout or a refusal downstream: the limit shrinks) or
``ignore()`` (no sample: an error that says nothing about load, a cancellation). Later
settlements of the same permit do nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from .._clock import SYSTEM_CLOCK, Clock
from .._core.adaptive import AIMDLimit, Gradient2Limit, LimitAlgorithm, VegasLimit
from .._core.adaptive_window import PRIORITIES, SampleWindow, ceilings
from .._errors import BulkheadFullError, RejectedError
from .._events import ACTIVE as _OBSERVED
from .._events import AdaptiveBulkheadChanged, Rejected, emit
from ..config import current

__all__ = ["AdaptiveBulkhead", "AdaptiveBulkheadStats", "AdaptivePermit"]

P = ParamSpec("P")
R = TypeVar("R")

_INDEX = {name: i for i, name in enumerate(PRIORITIES)}
_ALGORITHMS: dict[str, Callable[[], LimitAlgorithm]] = {
    "gradient2": Gradient2Limit,
    "vegas": VegasLimit,
    "aimd": AIMDLimit,
}
_SUCCESS, _DROP, _IGNORE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class AdaptiveBulkheadStats:
    """A snapshot of an adaptive bulkhead, taken under its lock."""

    limit: int
    in_flight: int
    rtt: float
    """Mean latency of the last window's calls, seconds (0.0 before the first window)."""
    total_admitted: int
    shed_sheddable: int
    shed_default: int
    shed_critical: int


class AdaptivePermit:
    """One admitted call's slot; settle it once with success(), drop() or ignore()."""

    __slots__ = ("_bulkhead", "_in_flight", "_open", "_start", "priority")

    def __init__(
        self, bulkhead: AdaptiveBulkhead, start: float, in_flight: int, priority: str
    ) -> None:
        self._bulkhead = bulkhead
        self._start = start
        self._in_flight = in_flight
        self._open = True
        self.priority = priority

    def success(self) -> None:
        """The call finished: free the slot; its latency is a sample."""
        self._settle(_SUCCESS)

    def drop(self) -> None:
        """The call timed out or was refused downstream: free the slot; the limit shrinks."""
        self._settle(_DROP)

    def ignore(self) -> None:
        """Free the slot without a sample (an error unrelated to load, a cancellation)."""
        self._settle(_IGNORE)

    def _settle(self, outcome: int) -> None:
        if self._open:
            self._open = False
            self._bulkhead._finish(self._start, self._in_flight, outcome)


class AdaptiveBulkhead:
    """A bulkhead whose limit is learned from latency; sheds by priority, never queues.

    ``limit`` is an update rule: ``"gradient2"`` (default), ``"vegas"``, ``"aimd"``, or an
    instance of :class:`~seawall.Gradient2Limit`, :class:`~seawall.VegasLimit` or
    :class:`~seawall.AIMDLimit` to choose its bounds (``initial_limit``, ``min_limit``,
    ``max_limit``) and tuning. Samples are gathered per ``window`` seconds (at least
    ``window_samples`` calls) before the rule sees them. A ``sheddable`` call is admitted only
    while fewer than ``sheddable_share`` x limit calls are in flight, a ``default`` one below
    the limit, a ``critical`` one below ``critical_share`` x limit (at least limit + 1).

    Options left out (and a rule given by name) take the ``adaptive`` section of
    :func:`seawall.config.current`: built-in defaults unless a file or ``SEAWALL_ADAPTIVE__*``
    variables say otherwise.
    """

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_algorithm",
        "_ceilings",
        "_clock",
        "_critical_share",
        "_in_flight",
        "_limit",
        "_lock",
        "_rtt",
        "_shed",
        "_sheddable_share",
        "_window",
        "name",
    )

    def __init__(
        self,
        limit: str | LimitAlgorithm | None = None,
        *,
        window: float | None = None,
        window_samples: int | None = None,
        sheddable_share: float | None = None,
        critical_share: float | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        d = current().adaptive
        window = d.window if window is None else window
        window_samples = d.window_samples if window_samples is None else window_samples
        sheddable_share = d.sheddable_share if sheddable_share is None else sheddable_share
        critical_share = d.critical_share if critical_share is None else critical_share
        if limit is None:
            algorithm = d.rule()
        elif isinstance(limit, str):
            if limit not in _ALGORITHMS:
                raise ValueError(
                    f"limit must be one of {sorted(_ALGORITHMS)} or a rule, got {limit!r}"
                )
            algorithm = d.rule(limit)
        elif isinstance(limit, Gradient2Limit | VegasLimit | AIMDLimit):
            algorithm = limit
        else:
            raise TypeError(
                "limit must be 'gradient2', 'vegas', 'aimd' or a Gradient2Limit, VegasLimit "
                f"or AIMDLimit, got {limit!r}"
            )
        self._window = SampleWindow(window, window_samples)
        self._sheddable_share = _share("sheddable_share", sheddable_share, 0.0, 1.0)
        self._critical_share = _share("critical_share", critical_share, 1.0, 10.0)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self.name = name
        self._algorithm = algorithm
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._admitted = 0
        self._shed = [0, 0, 0]
        self._rtt = 0.0
        self._limit = max(1, int(algorithm.limit))
        self._ceilings = ceilings(self._limit, self._sheddable_share, self._critical_share)

    # -- admission ------------------------------------------------------------------------

    def try_acquire(self, priority: str = "default") -> AdaptivePermit | None:
        """A permit if ``priority`` is under its ceiling now, else None (counted as shed)."""
        index = _priority(priority)
        with self._lock:
            if self._in_flight < self._ceilings[index]:
                self._in_flight += 1
                self._admitted += 1
                permit = AdaptivePermit(self, self._clock.monotonic(), self._in_flight, priority)
            else:
                self._shed[index] += 1
                permit = None
        if _OBSERVED:
            if permit is None:
                emit(Rejected("bulkhead", self.name, f"shed_{priority}", self._rtt))
            else:
                self._changed()
        return permit

    def acquire(self, priority: str = "default") -> AdaptivePermit:
        """A permit, or :class:`~seawall.BulkheadFullError` at once (this bulkhead never waits)."""
        permit = self.try_acquire(priority)
        if permit is None:
            raise self._full_error(priority)
        return permit

    async def acquire_async(self, priority: str = "default") -> AdaptivePermit:
        """:meth:`acquire` for asyncio and trio tasks (it never waits, so never checkpoints)."""
        return self.acquire(priority)

    # -- running calls --------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the sync ``fn`` with a default-priority slot; see :meth:`acall` for outcomes."""
        permit = self.acquire()
        try:
            result = fn(*args, **kwargs)
        except (TimeoutError, RejectedError):
            permit.drop()
            raise
        except BaseException:
            permit.ignore()
            raise
        permit.success()
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn`` with a default-priority slot.

        A return is a success (its latency is a sample); a ``TimeoutError`` or a seawall
        rejection (from a policy further down) is a drop; any other exception and a
        cancellation free the slot without a sample.
        """
        permit = self.acquire()
        try:
            result = await fn(*args, **kwargs)
        except (TimeoutError, RejectedError):
            permit.drop()
            raise
        except BaseException:
            permit.ignore()
            raise
        permit.success()
        return result

    # -- inspection -----------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The current limit: the ``default`` priority's in-flight ceiling."""
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def algorithm(self) -> LimitAlgorithm:
        """The update rule (read it, don't feed it: the bulkhead does)."""
        return self._algorithm

    @property
    def stats(self) -> AdaptiveBulkheadStats:
        """A consistent snapshot of the limit and the counters."""
        with self._lock:
            return AdaptiveBulkheadStats(
                limit=self._limit,
                in_flight=self._in_flight,
                rtt=self._rtt,
                total_admitted=self._admitted,
                shed_sheddable=self._shed[0],
                shed_default=self._shed[1],
                shed_critical=self._shed[2],
            )

    def __repr__(self) -> str:
        return (
            f"AdaptiveBulkhead(name={self.name!r}, limit={self._limit}, "
            f"in_flight={self._in_flight}, algorithm={self._algorithm!r})"
        )

    # -- settling -------------------------------------------------------------------------

    def _finish(self, start: float, in_flight: int, outcome: int) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._in_flight -= 1
            if outcome != _IGNORE:
                sample = self._window.add(now - start, in_flight, outcome == _DROP, now)
                if sample is not None:
                    rtt, peak, dropped = sample
                    self._rtt = rtt
                    limit = max(1, int(self._algorithm.update(rtt, peak, dropped)))
                    if limit != self._limit:
                        self._limit = limit
                        self._ceilings = ceilings(
                            limit, self._sheddable_share, self._critical_share
                        )
        if _OBSERVED:
            self._changed()

    def _changed(self) -> None:
        # Read without the lock, after the change: a later change may already show.
        emit(AdaptiveBulkheadChanged(self.name, self._limit, self._in_flight))

    def _full_error(self, priority: str) -> BulkheadFullError:
        label = f"AdaptiveBulkhead {self.name!r}" if self.name else "AdaptiveBulkhead"
        return BulkheadFullError(
            f"{label} sheds {priority} calls ({self._in_flight} in flight, limit {self._limit})",
            retry_after=self._rtt,
        )


def _priority(priority: str) -> int:
    index = _INDEX.get(priority) if isinstance(priority, str) else None
    if index is None:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    return index


def _share(name: str, value: object, low: float, high: float) -> float:
    # sheddable_share is in (0, 1]; critical_share in [1, 10].
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    inside = 0.0 < value <= 1.0 if high == 1.0 else low <= value <= high
    if not inside:
        bounds = "(0, 1]" if high == 1.0 else f"[{low:g}, {high:g}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return float(value)
