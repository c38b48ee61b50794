"""Specs shared by the file store tests and their child processes."""

from __future__ import annotations

from typing import Any

from seawall._core.breaker import BreakerConfig
from seawall.stores._base import BreakerSpec, BulkheadSpec, LimiterSpec, group_gates

LIMITER = LimiterSpec("api", 0.5, 2.0)
KEYED = LimiterSpec("per-client", 0.5, 2.0, keyed=True)
POOL = BulkheadSpec("pool", 2)


def breaker(name: str = "db", **overrides: Any) -> BreakerSpec:
    """A breaker spec: 2 consecutive failures trip it, 10 s open, one probe."""
    settings: dict[str, Any] = {
        "max_failures": 2,
        "reset_timeout": 10.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
        "stale_attempt_timeout": 30.0,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "window_size": 10,
        "minimum_calls": 4,
    }
    settings.update(overrides)
    return BreakerSpec(name, BreakerConfig(**settings))


MP_LIMITER = LimiterSpec("shared", 1 / 50, 10.0)
"""50 per second, burst 10: the limiter eight processes share."""
MP_POOL = BulkheadSpec("shared-pool", 3)
SOLO = BulkheadSpec("solo", 1)

ADMIT_GATES = group_gates(
    "kept",
    [LimiterSpec("kept-limit", 360.0, 10.0, keyed=True)],
    BulkheadSpec("kept-pool", 1),
    breaker("kept-breaker"),
)
"""One request's gates: 10 per hour per client (no refill in a test), one slot, a breaker."""
