"""Shared by the admission differential tests: a full set of gates, and an answer's shape."""

from __future__ import annotations

import uuid

from seawall._core.breaker import BreakerConfig
from seawall.stores._base import (
    Admission,
    BreakerSpec,
    BulkheadSpec,
    Gates,
    LimiterSpec,
    group_gates,
)

__all__ = ["full_gates", "shape"]


def full_gates(burst: float, interval: float, slots: int, half_open: int) -> Gates:
    """Two keyed limits (``interval`` and three times it), a bulkhead and a count breaker,
    under a fresh name."""
    name = uuid.uuid4().hex
    config = BreakerConfig(
        max_failures=2,
        reset_timeout=1.0,
        half_open_max_calls=half_open,
        success_threshold=2,
        stale_attempt_timeout=1.5,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=100,
        minimum_calls=100,
    )
    return group_gates(
        name,
        (
            LimiterSpec(f"{name}-1", interval, burst, keyed=True),
            LimiterSpec(f"{name}-2", interval * 3, burst + 1.0, keyed=True),
        ),
        BulkheadSpec(f"{name}-b", slots, lease=60.0),
        BreakerSpec(f"{name}-c", config),
    )


def shape(answer: Admission) -> tuple[object, ...]:
    """What must be equal between two stores' answers (a hold compared by its presence)."""
    return (
        answer.refused_by,
        answer.retry_after,
        answer.limits,
        answer.ticket,
        answer.transition,
        answer.hold is None,
    )
