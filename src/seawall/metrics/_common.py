"""What both exporters share: one listener that keeps every value they report.

:class:`Recorder` listens to seawall's events and keeps counters and gauges in plain Python
objects; the exporters only render them when metrics are collected (a Prometheus scrape, an
OpenTelemetry collection). Counting is an ``itertools.count`` step (atomic under the GIL and
lock-free), so an event costs about what building it costs, whatever the exporter.

Gauges hold the last value an event reported, overridden by a live reading for the policies
passed to ``watch()`` (which also gives limiter tokens and keyed-limiter sizes).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .._breaker.breaker import CircuitBreaker
from .._bulkhead.adaptive import AdaptiveBulkhead
from .._bulkhead.bulkhead import Bulkhead
from .._core.breaker import CircuitState
from .._core.counting import count_value
from .._events import (
    AdaptiveBulkheadChanged,
    BulkheadChanged,
    CallRecorded,
    CircuitStateChange,
    DegradedDecision,
    Event,
    LimiterWaited,
    LoopStalled,
    Rejected,
    StoreDegraded,
    WatchdogFired,
)
from .._limiter.keyed import KeyedRateLimiter
from .._limiter.limiter import RateLimiter

__all__ = ["COUNTERS", "STATE_VALUES", "Labels", "Recorder", "label"]

#: The breaker-state gauge's values: 0 closed, 1 open, 2 half-open (alert on ``== 1``).
STATE_VALUES = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}

#: Counter id -> (label names, description), in the order exporters list them.
COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "calls": (("policy", "name", "outcome"), "Calls whose outcome a breaker recorded."),
    "rejections": (("policy", "name", "reason"), "Calls a policy refused."),
    "breaker_transitions": (("name", "from_state", "to_state"), "Breaker state changes."),
    "limiter_waits": (("name",), "Rate limiter grants that had to wait."),
    "store_degraded_decisions": (("policy", "name", "mode"), "Decisions made without the store."),
    "watchdog_firings": (("name",), "Watchdog firings."),
    "loop_stalls": (("name",), "Event loop stalls noticed."),
}

Labels = tuple[str, ...]
Policy = CircuitBreaker | RateLimiter | KeyedRateLimiter | Bulkhead | AdaptiveBulkhead


def label(name: str | None) -> str:
    """A policy name as a label value ("" for an unnamed policy)."""
    return "" if name is None else name


class Recorder:
    """The values behind every seawall metric, fed by events and by watched policies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[Policy] = []
        self._counts: dict[str, dict[Labels, itertools.count[int]]] = {c: {} for c in COUNTERS}
        self.wait_seconds: dict[str, float] = {}
        self.breaker_state: dict[str, int] = {}
        self.bulkhead: dict[str, tuple[int, int]] = {}
        self.adaptive: dict[str, tuple[int, int]] = {}
        self.degraded: dict[Labels, int] = {}
        self.stalled: dict[str, int] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            CallRecorded: self._on_call,
            Rejected: self._on_rejected,
            CircuitStateChange: self._on_state,
            LimiterWaited: self._on_wait,
            BulkheadChanged: self._on_bulkhead,
            AdaptiveBulkheadChanged: self._on_adaptive,
            StoreDegraded: self._on_degraded,
            DegradedDecision: self._on_decision,
            WatchdogFired: self._on_firing,
            LoopStalled: self._on_stall,
        }

    # -- the listener -------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.__class__)
        if handler is not None:
            handler(event)

    def _count(self, counter: str, labels: Labels) -> None:
        counts = self._counts[counter]
        step = counts.get(labels)
        if step is None:
            with self._lock:
                step = counts.setdefault(labels, itertools.count())
        next(step)

    def _on_call(self, event: CallRecorded) -> None:
        self._count("calls", (event.policy, label(event.name), event.outcome))

    def _on_rejected(self, event: Rejected) -> None:
        self._count("rejections", (event.policy, label(event.name), event.reason))

    def _on_state(self, event: CircuitStateChange) -> None:
        name = label(event.name)
        self.breaker_state[name] = STATE_VALUES[event.new]
        old, new = event.old.name.lower(), event.new.name.lower()
        self._count("breaker_transitions", (name, old, new))

    def _on_wait(self, event: LimiterWaited) -> None:
        name = label(event.name)
        self._count("limiter_waits", (name,))
        with self._lock:  # a float sum is not atomic; waits are rare next to their sleeps
            self.wait_seconds[name] = self.wait_seconds.get(name, 0.0) + event.seconds

    def _on_bulkhead(self, event: BulkheadChanged) -> None:
        self.bulkhead[label(event.name)] = (event.in_flight, event.queued)

    def _on_adaptive(self, event: AdaptiveBulkheadChanged) -> None:
        self.adaptive[label(event.name)] = (event.limit, event.in_flight)

    def _on_degraded(self, event: StoreDegraded) -> None:
        self.degraded[event.policy, label(event.name)] = int(event.active)

    def _on_decision(self, event: DegradedDecision) -> None:
        self._count("store_degraded_decisions", (event.policy, label(event.name), event.mode))

    def _on_firing(self, event: WatchdogFired) -> None:
        self._count("watchdog_firings", (event.name,))

    def _on_stall(self, event: LoopStalled) -> None:
        self.stalled[event.name] = int(not event.recovered)
        if not event.recovered:
            self._count("loop_stalls", (event.name,))

    # -- watching -----------------------------------------------------------------------

    def watch(self, policy: object) -> None:
        """Read ``policy`` live at every collection (holds a reference until ``forget()``)."""
        if not isinstance(policy, Policy):
            raise TypeError(
                "watch() takes CircuitBreaker, RateLimiter, KeyedRateLimiter, Bulkhead or "
                f"AdaptiveBulkhead objects, got {policy!r}"
            )
        with self._lock:
            if all(p is not policy for p in self._watched):
                self._watched.append(policy)

    def forget(self) -> None:
        """Drop every watched policy."""
        with self._lock:
            self._watched.clear()

    # -- reading ------------------------------------------------------------------------

    def counts(self, counter: str) -> Iterator[tuple[Labels, int]]:
        """``(labels, value)`` of one counter, sorted by labels."""
        with self._lock:
            items = sorted(self._counts[counter].items())
        for labels, step in items:
            yield labels, count_value(step)

    def breakers(self) -> dict[str, int]:
        """Breaker state values by name."""
        states = dict(self.breaker_state)
        for p in self._snapshot():
            if isinstance(p, CircuitBreaker):
                states[label(p.name)] = STATE_VALUES[p.state]
        return states

    def bulkheads(self) -> dict[str, tuple[int, int]]:
        """``(in_flight, queued)`` by bulkhead name."""
        values = dict(self.bulkhead)
        for p in self._snapshot():
            if isinstance(p, Bulkhead):
                stats = p.stats
                values[label(p.name)] = (stats.in_flight, stats.queued)
        return values

    def adaptive_bulkheads(self) -> dict[str, tuple[int, int]]:
        """``(limit, in_flight)`` by adaptive bulkhead name."""
        values = dict(self.adaptive)
        for p in self._snapshot():
            if isinstance(p, AdaptiveBulkhead):
                stats = p.stats
                values[label(p.name)] = (stats.limit, stats.in_flight)
        return values

    def tokens(self) -> dict[str, float]:
        """Tokens in the bucket now, by watched RateLimiter name."""
        return {label(p.name): p.tokens for p in self._snapshot() if isinstance(p, RateLimiter)}

    def keys(self) -> dict[str, int]:
        """Keys held now, by watched KeyedRateLimiter name."""
        watched = self._snapshot()
        return {label(p.name): len(p) for p in watched if isinstance(p, KeyedRateLimiter)}

    def _snapshot(self) -> list[Policy]:
        with self._lock:
            return list(self._watched)
