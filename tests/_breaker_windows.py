"""The time-window breaker configuration and admission the window tests share."""

from __future__ import annotations

from typing import Any

from seawall._core.breaker import BreakerConfig, BreakerState, Ticket, admit

__all__ = ["config", "ticket"]


def config(**overrides: Any) -> BreakerConfig:
    """Eight seconds in four 2-second buckets, 50% failures over at least 2 calls."""
    values: dict[str, Any] = {
        "max_failures": 100,
        "reset_timeout": 10.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
        "stale_attempt_timeout": 10.0,
        "failure_rate_threshold": 0.5,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "window_size": 100,
        "minimum_calls": 2,
        "window_duration": 8.0,
        "window_buckets": 4,
    }
    values.update(overrides)
    return BreakerConfig(**values)


def ticket(s: BreakerState, cfg: BreakerConfig, now: float) -> Ticket:
    decision, _ = admit(s, cfg, now)
    assert isinstance(decision, tuple)
    return decision
