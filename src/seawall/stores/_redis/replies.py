"""Turning the Redis store's script replies and hashes back into the store's answers."""

from __future__ import annotations

import logging
import math

from ..._core.breaker import BreakerConfig, BreakerState, CircuitState, Ticket, Transition
from ..._core.limiter import Bucket
from ..._log import logger as _seawall_logger  # noqa: F401  # the NullHandler
from .. import _rules
from .._base import BreakerView, PolicyStatus, Reservation

__all__ = [
    "admission",
    "breaker_status",
    "bucket_status",
    "bulkhead_status",
    "reservation",
    "transition",
    "view",
    "warn_if_reset",
]

_log = logging.getLogger("seawall.stores")


def warn_if_reset(flag: str, what: str, url: str) -> None:
    """Log (never raise) that a script found an unreadable record and reset it."""
    if flag == "1":
        _log.warning("Redis store %s: unreadable %s record was reset", url, what)


def reservation(reply: list[str]) -> Reservation:
    """``{wait, ticket, remaining, reset_after, corrupt}`` as a :class:`Reservation`."""
    wait, ticket, remaining, reset_after = (float(x) for x in reply[:4])
    return Reservation(wait, ticket, int(remaining), reset_after)


def transition(reply: list[str]) -> Transition | None:
    """The transition in a breaker reply ``{kind, a, b, has, old, new, reason, at, corrupt}``."""
    if reply[3] != "1":
        return None
    old, new = CircuitState(int(reply[4])), CircuitState(int(reply[5]))
    return Transition(old, new, reply[6], float(reply[7]))


def admission(reply: list[str]) -> Ticket | float:
    """A ticket ``(generation, probe_id)`` or the seconds to wait, from an admit reply."""
    if reply[0] == "t":
        return (int(float(reply[1])), int(float(reply[2])))
    return float(reply[1])


def view(reply: list[str]) -> BreakerView:
    """A :class:`BreakerView` from the view script's reply."""
    counts = [int(float(x)) for x in reply[1:8]]
    return BreakerView(
        state=reply[0],
        failure_count=counts[0],
        opened_at=float(reply[2]),
        probes=counts[2],
        successful_calls=counts[3],
        failed_calls=counts[4],
        rejected_calls=counts[5],
        state_changes=counts[6],
    )


def _f(fields: dict[str, str], name: str, default: float = -math.inf) -> float:
    text = fields.get(name)
    return default if text is None else float(text)


def bucket_status(fields: dict[str, str], now: float) -> PolicyStatus:
    """A limiter bucket's hash as ``seawall status`` shows it (computed on a copy)."""
    bucket = Bucket(float(fields["interval"]), float(fields["burst"]))
    bucket.full_at, bucket.blocked_until = _f(fields, "fa"), _f(fields, "bu")
    bucket.last_now = _f(fields, "ln")
    tokens, full_in = _rules.bucket_peek(bucket, now)
    blocked = max(0.0, bucket.blocked_until - now)
    state = {"tokens": tokens, "full_in": full_in, "blocked_for": blocked}
    return PolicyStatus("limiter", fields["name"], fields.get("key"), state)


def breaker_status(fields: dict[str, str], now: float) -> PolicyStatus:
    """A breaker's hash as ``seawall status`` shows it (computed on a copy)."""
    s = BreakerState()
    s.state = CircuitState(int(float(fields["st"])))
    s.failure_count = int(float(fields["fc"]))
    s.opened_at = float(fields["oa"])
    s.isolated = fields["iso"] == "1"
    s.probes = {i: 0.0 for i, part in enumerate(fields.get("pr", "").split(",")) if part}
    s.successful_calls, s.failed_calls = int(float(fields["ok"])), int(float(fields["bad"]))
    s.rejected_calls, s.state_changes = int(float(fields["rej"])), int(float(fields["chg"]))
    last = _rules.rebase_breaker(s, float(fields["ln"]), now)
    v = _rules.breaker_view(s, _view_config(float(fields["reset_timeout"])), last)
    state: dict[str, object] = {
        "state": v.state,
        "failure_count": v.failure_count,
        "probes": v.probes,
        "successful_calls": v.successful_calls,
        "failed_calls": v.failed_calls,
        "rejected_calls": v.rejected_calls,
        "state_changes": v.state_changes,
    }
    return PolicyStatus("breaker", fields["name"], None, state)


def bulkhead_status(fields: dict[str, str], now: float) -> PolicyStatus:
    """A bulkhead's lease hash as ``seawall status`` shows it."""
    held = 0
    for name, value in fields.items():
        if name.startswith("h:") and float(value.split(" ")[0]) > now:
            held += 1
    state = {"held": held, "slots": int(fields["slots"])}
    return PolicyStatus("bulkhead", fields["name"], None, state)


def _view_config(reset_timeout: float) -> BreakerConfig:
    # Only reset_timeout matters to the view; the rest are placeholders.
    return BreakerConfig(
        max_failures=1,
        reset_timeout=reset_timeout,
        half_open_max_calls=1,
        success_threshold=1,
        stale_attempt_timeout=reset_timeout,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=1,
        minimum_calls=1,
    )
