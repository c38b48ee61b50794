"""The events seawall's policies emit, and the process-wide listener registry.

``seawall.add_listener(fn)`` is the usual entry point; this module also offers :func:`emit`
and :func:`listening` for integrations that emit events of their own (a store-backed policy
announcing :class:`StoreDegraded`, for instance). See ``docs/observability.md``.
"""

from __future__ import annotations

from ._events import (
    AdaptiveBulkheadChanged,
    BulkheadChanged,
    CallRecorded,
    CircuitStateChange,
    DegradedDecision,
    Event,
    LimiterWaited,
    Listener,
    LoopStalled,
    Rejected,
    StoreDegraded,
    Subscription,
    WatchdogFired,
    add_listener,
    emit,
    listening,
)

#: The breaker's state-change event under the name the other events follow.
BreakerStateChanged = CircuitStateChange

__all__ = [
    "AdaptiveBulkheadChanged",
    "BreakerStateChanged",
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
