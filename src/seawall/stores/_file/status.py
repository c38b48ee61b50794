"""What ``FileStore.status`` reports for a limiter table or a breaker record (lock held)."""

from __future__ import annotations

from ..._core.breaker import peek_state
from ..._core.limiter import Bucket
from .._base import PolicyStatus
from .._rules import bucket_peek, rebase_breaker
from .breaker import BreakerFile
from .table import LimiterTable

__all__ = ["breaker_status", "limiter_status"]


def limiter_status(t: LimiterTable, now: float) -> list[PolicyStatus]:
    """One entry per key with a record: tokens now, when it is full, any active block."""
    h = t.read_header()
    if h is None or h.interval <= 0 or h.burst <= 0:
        return []
    found = []
    for s in t.entries():
        b = Bucket(h.interval, h.burst)
        b.full_at, b.last_now, b.blocked_until = s.full_at, s.last_now, s.blocked_until
        tokens, reset_after = bucket_peek(b, now)  # rebases the stamps if the clock went back
        blocked = b.blocked_until
        state = {"tokens": tokens, "full_in": reset_after, "blocked_for": max(0.0, blocked - now)}
        found.append(PolicyStatus("limiter", h.name, s.key if h.keyed else None, state))
    return found


def breaker_status(f: BreakerFile, now: float) -> list[PolicyStatus]:
    """The breaker's state as a call arriving now would find it, with its counters."""
    s, last_now = f.load(now)
    if f.was_empty:
        return []
    rebase_breaker(s, last_now, now)
    state = peek_state(s, _Timeout(f.reset_timeout), now)  # type: ignore[arg-type]
    return [
        PolicyStatus(
            "breaker",
            f.name,
            None,
            {
                "state": state.name.lower(),
                "failure_count": s.failure_count,
                "probes": len(s.probes),
                "successful_calls": s.successful_calls,
                "failed_calls": s.failed_calls,
                "rejected_calls": s.rejected_calls,
                "state_changes": s.state_changes,
            },
        )
    ]


class _Timeout:
    """The one setting :func:`peek_state` reads, from the record (status has no config)."""

    def __init__(self, reset_timeout: float) -> None:
        self.reset_timeout = reset_timeout
