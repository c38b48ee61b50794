"""The circuit breaker's pure core.

Theory of operation
-------------------
A breaker is in one of three states::

          trip (failures)                       reset_timeout elapsed
    CLOSED ───────────────► OPEN ─────────────────────────────► HALF_OPEN
      ▲                      ▲                                      │
      │                      └───────── a probe fails ──────────────┤
      └──────────── success_threshold probes succeed ───────────────┘

Every admission hands out a *ticket* ``(generation, probe_id)``. The generation is bumped on
every state change, so an outcome reported with an older generation belongs to a call admitted
in another era and is ignored by the state machine. That one rule gives three guarantees the
reference implementations miss: failures of calls admitted before the breaker opened cannot
extend the open period; late results of calls admitted while closed cannot re-open a half-open
breaker; and outcomes of abandoned probes cannot count twice.

In HALF_OPEN at most ``half_open_max_calls`` probes are in flight. Each probe holds a lease
stamped with its admission time; a probe that has not reported after
``stale_attempt_timeout`` loses its slot individually (never all at once), and its late report
is ignored.

The failure-rate and slow-call rules read a sliding window of closed-state outcomes: the last
``window_size`` calls (a count window, one flag per call), or, with ``window_duration``, the
calls of the last ``window_duration`` seconds in ``window_buckets`` buckets (a time window, see
:mod:`.breaker_window`). Either way the rates are judged only once the window holds
``minimum_calls`` calls, and the window is emptied on every state change.

Everything here is a plain function of ``(state, config, now, event)``: it mutates the given
:class:`BreakerState` in place and returns the decision. No clock, no lock, no I/O; the driver
in ``_breaker.py`` supplies ``now`` and holds the lock, and a store may persist the state.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from math import floor

from . import breaker_window as tw

__all__ = [
    "FAILURE",
    "NEUTRAL",
    "SUCCESS",
    "BreakerConfig",
    "BreakerState",
    "CircuitState",
    "Ticket",
    "Transition",
    "add_successes",
    "admit",
    "count_success",
    "force",
    "peek_state",
    "record",
]


class CircuitState(enum.Enum):
    """The three states of a breaker (values as in the reference guide)."""

    CLOSED = 1
    OPEN = 2
    HALF_OPEN = 3


CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

# Outcomes, as small ints so the hot path compares integers, not enum members.
SUCCESS, FAILURE, NEUTRAL = 0, 1, 2

# Why a state changed; the table below says which changes each cause allows.
_ALLOWED: dict[tuple[CircuitState, str], CircuitState] = {
    (CLOSED, "tripped"): OPEN,
    (OPEN, "reset_timeout_elapsed"): HALF_OPEN,
    (HALF_OPEN, "probe_failed"): OPEN,
    (HALF_OPEN, "probes_succeeded"): CLOSED,
    (CLOSED, "forced_open"): OPEN,
    (HALF_OPEN, "forced_open"): OPEN,
    (OPEN, "reset"): CLOSED,
    (HALF_OPEN, "reset"): CLOSED,
}

Ticket = tuple[int, int]
"""``(generation, probe_id)``; probe_id 0 means "not a probe"."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change the core made, for the driver to log and announce."""

    old: CircuitState
    new: CircuitState
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Validated settings; built by the driver, never mutated."""

    max_failures: int
    reset_timeout: float
    half_open_max_calls: int
    success_threshold: int
    stale_attempt_timeout: float
    failure_rate_threshold: float | None
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    window_size: int
    minimum_calls: int
    window_duration: float | None = None
    """Seconds a time window covers; None keeps the count window of ``window_size`` calls."""
    window_buckets: int = 10
    """How many buckets a time window is cut into."""
    uses_window: bool = field(init=False)
    """Whether outcomes must be kept in the sliding window (rate or slow-call thresholds)."""
    bucket_width: float = field(init=False)
    """Seconds per bucket of a time window; 0.0 for a count window."""

    def __post_init__(self) -> None:
        windowed = (
            self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None
        )
        object.__setattr__(self, "uses_window", windowed)
        duration = self.window_duration
        width = 0.0 if duration is None else duration / self.window_buckets
        object.__setattr__(self, "bucket_width", width)


class BreakerState:
    """Everything a breaker remembers; mutated only by this module's functions."""

    __slots__ = (
        "buckets",
        "closed_ticket",
        "disabled",
        "failed_calls",
        "failure_count",
        "generation",
        "isolated",
        "neutral_calls",
        "next_probe",
        "opened_at",
        "probes",
        "quiet",
        "quorum_bucket",
        "rejected_calls",
        "state",
        "state_changes",
        "successes",
        "successful_calls",
        "window",
        "window_failures",
        "window_quorum",
        "window_slow",
    )

    def __init__(self) -> None:
        self.state = CLOSED
        self.generation = 0
        # The ticket every closed-state admission shares; None unless CLOSED. Reading this one
        # attribute is the whole closed-state admission, which keeps the hot path lock-free.
        self.closed_ticket: Ticket | None = (0, 0)
        # True while a success would change nothing but the success counter (closed, no
        # failures pending, no sliding window). Drivers may then count the success without
        # taking their lock or calling record(); the first record() call sets it.
        self.quiet = False
        self.failure_count = 0
        self.opened_at = 0.0
        self.successes = 0
        self.probes: dict[int, float] = {}
        self.next_probe = 1
        self.isolated = False
        self.disabled = False
        self.window: deque[int] = deque()
        self.buckets: deque[tw.Bucket] = deque()  # the time window's, oldest first
        self.window_failures = 0
        self.window_slow = 0
        # True when the last record() into the time window's newest bucket found at least
        # minimum_calls calls in the window: until that bucket ends, count_success() may count
        # a success without judging the rates (see there).
        self.window_quorum = False
        # The index of the time window's newest bucket while a success at that bucket can
        # change nothing but counters (count_success would count it) and no failure is
        # pending; None otherwise. A driver may then count such successes without its lock
        # and hand them over later (add_successes), before the core next reads the state.
        self.quorum_bucket: int | None = None
        self.successful_calls = 0
        self.failed_calls = 0
        self.rejected_calls = 0
        self.neutral_calls = 0
        self.state_changes = 0


def _move(s: BreakerState, reason: str, now: float) -> Transition:
    old = s.state
    new = _ALLOWED.get((old, reason))
    if new is None:
        raise RuntimeError(f"illegal breaker transition from {old.name} on {reason!r}")
    s.state = new
    s.generation += 1
    s.state_changes += 1
    if new is not OPEN:
        # Kept while open, as in the reference guide: "why did it open" stays readable
        # until the breaker probes again or is reset.
        s.failure_count = 0
    s.successes = 0
    s.probes.clear()
    s.window.clear()
    s.buckets.clear()
    s.window_failures = s.window_slow = 0
    s.isolated = s.disabled = s.quiet = s.window_quorum = False
    s.quorum_bucket = None
    if new is OPEN:
        s.opened_at = now
    s.closed_ticket = (s.generation, 0) if new is CLOSED else None
    return Transition(old, new, reason, now)


def admit(
    s: BreakerState, cfg: BreakerConfig, now: float
) -> tuple[Ticket | float, Transition | None]:
    """Ask to run a call: a ticket if admitted, else the seconds until it may be (a float)."""
    if s.state is CLOSED:
        return s.closed_ticket or (s.generation, 0), None
    transition = None
    if s.state is OPEN:
        if s.isolated:
            s.rejected_calls += 1
            return cfg.reset_timeout, None
        if now < s.opened_at:
            # Time went backwards (wall time in a shared store): restart the period from
            # here rather than wait for the old stamp, so the breaker can never wedge.
            s.opened_at = now
        remaining = s.opened_at + cfg.reset_timeout - now
        if remaining > 0:
            s.rejected_calls += 1
            return remaining, None
        transition = _move(s, "reset_timeout_elapsed", now)
    return _admit_probe(s, cfg, now), transition


def _admit_probe(s: BreakerState, cfg: BreakerConfig, now: float) -> Ticket | float:
    probes = s.probes
    if len(probes) >= cfg.half_open_max_calls:
        for probe_id, admitted_at in list(probes.items()):
            if now - admitted_at >= cfg.stale_attempt_timeout:
                del probes[probe_id]
    if len(probes) >= cfg.half_open_max_calls:
        s.rejected_calls += 1
        oldest = min(probes.values())
        return max(oldest + cfg.stale_attempt_timeout - now, 0.0)
    probe_id = s.next_probe
    s.next_probe += 1
    probes[probe_id] = now
    return (s.generation, probe_id)


def record(
    s: BreakerState,
    cfg: BreakerConfig,
    now: float,
    ticket: Ticket,
    outcome: int,
    duration: float = 0.0,
) -> Transition | None:
    """Report how an admitted call ended; return the state change it caused, if any."""
    if outcome == SUCCESS:
        s.successful_calls += 1
    elif outcome == FAILURE:
        s.failed_calls += 1
    else:
        s.neutral_calls += 1
    generation, probe_id = ticket
    if generation != s.generation:
        return None  # admitted in another era: counted in stats, ignored by the machine
    if probe_id:
        if s.probes.pop(probe_id, None) is None:
            return None  # its lease expired and the slot went to another probe
        return _record_probe(s, cfg, now, outcome)
    if s.state is not CLOSED or outcome == NEUTRAL:
        return None
    transition = _record_closed(s, cfg, now, outcome, duration)
    s.quiet = s.state is CLOSED and not s.failure_count and not cfg.uses_window
    return transition


def count_success(
    s: BreakerState, cfg: BreakerConfig, now: float, ticket: Ticket, duration: float = 0.0
) -> bool:
    """Count a closed-state success that cannot change anything but counters, if it is one.

    True when it was counted (exactly as :func:`record` would have); False when the caller
    must call :func:`record`. With a time window, a success that is not slow and falls in the
    window's newest bucket, once the window holds ``minimum_calls`` calls, expires no bucket
    (an earlier call at that bucket already did), keeps the window at its quorum and lowers
    both rates: it can trip nothing, so the rates need not be judged (the hot path of
    a healthy dependency).
    """
    if not s.window_quorum or ticket is not s.closed_ticket or not cfg.bucket_width:
        return False
    slow = cfg.slow_call_duration
    if slow is not None and duration >= slow:
        return False
    buckets = s.buckets
    if not buckets:
        return False
    newest = buckets[-1]
    # tw.bucket_index(now, width), inlined: this is a healthy dependency's every call.
    if newest[0] != floor(now / cfg.bucket_width):
        return False
    newest[1] += 1
    s.successful_calls += 1
    s.failure_count = 0
    if slow is None:
        s.quorum_bucket = newest[0]
    return True


def add_successes(s: BreakerState, count: int) -> None:
    """Count ``count`` successes a driver counted without its lock (see ``quorum_bucket``).

    Each was one :func:`count_success` would have counted at the newest bucket, so they go
    there, exactly as it would have counted them one by one. A success that raced a change
    of state (another thread's call recorded between the driver's check and its count) is
    counted as of now: in the newest bucket while closed, else in the counters only.
    """
    s.successful_calls += count
    if s.state is CLOSED and s.buckets:
        s.buckets[-1][1] += count
        s.failure_count = 0


def _record_probe(
    s: BreakerState, cfg: BreakerConfig, now: float, outcome: int
) -> Transition | None:
    if outcome == FAILURE:
        s.failure_count += 1  # the failed probe is the one failure since half-open
        return _move(s, "probe_failed", now)
    if outcome == SUCCESS:
        s.successes += 1
        if s.successes >= cfg.success_threshold:
            return _move(s, "probes_succeeded", now)
    return None


def _record_closed(
    s: BreakerState, cfg: BreakerConfig, now: float, outcome: int, duration: float
) -> Transition | None:
    if outcome == SUCCESS:
        s.failure_count = 0
    else:
        s.failure_count += 1
    if cfg.uses_window:
        _push_window(s, cfg, now, outcome, duration)
    s.quorum_bucket = None
    if s.disabled:
        return None
    if s.failure_count >= cfg.max_failures or _rate_exceeded(s, cfg):
        return _move(s, "tripped", now)
    if s.window_quorum and not s.failure_count and cfg.slow_call_duration is None:
        s.quorum_bucket = s.buckets[-1][0]
    return None


def _push_window(
    s: BreakerState, cfg: BreakerConfig, now: float, outcome: int, duration: float
) -> None:
    slow = cfg.slow_call_duration is not None and duration >= cfg.slow_call_duration
    if cfg.bucket_width:
        index = tw.bucket_index(now, cfg.bucket_width)
        tw.expire(s.buckets, index, cfg.window_buckets)
        tw.add_call(s.buckets, index, 1 if outcome == FAILURE else 0, 1 if slow else 0)
        return
    flags = (1 if outcome == FAILURE else 0) | (2 if slow else 0)
    window = s.window
    if len(window) == cfg.window_size:
        dropped = window.popleft()
        s.window_failures -= dropped & 1
        s.window_slow -= dropped >> 1
    window.append(flags)
    s.window_failures += flags & 1
    s.window_slow += flags >> 1


def _rate_exceeded(s: BreakerState, cfg: BreakerConfig) -> bool:
    if cfg.bucket_width:
        calls, failures, slow = tw.totals(s.buckets)
    else:
        calls, failures, slow = len(s.window), s.window_failures, s.window_slow
    s.window_quorum = calls >= cfg.minimum_calls and calls > 0 and bool(cfg.bucket_width)
    if calls == 0 or calls < cfg.minimum_calls:
        return False
    if cfg.failure_rate_threshold is not None and failures / calls >= cfg.failure_rate_threshold:
        return True
    return cfg.slow_call_rate_threshold is not None and (
        slow / calls >= cfg.slow_call_rate_threshold
    )


def force(s: BreakerState, action: str, now: float) -> Transition | None:
    """Manual control: ``"open"`` (isolate), ``"closed"`` (disable tripping) or ``"reset"``."""
    if action == "open":
        transition = _move(s, "forced_open", now) if s.state is not OPEN else None
        s.isolated = True
        return transition
    if action not in ("closed", "reset"):
        raise ValueError(f"action must be 'open', 'closed' or 'reset', got {action!r}")
    transition = None
    if s.state is CLOSED:
        s.failure_count = 0
        s.window.clear()
        s.buckets.clear()
        s.window_failures = s.window_slow = 0
        s.window_quorum = False
        s.quorum_bucket = None
        s.generation += 1  # outcomes of calls admitted before the reset no longer count
        s.closed_ticket = (s.generation, 0)
        s.quiet = False
    else:
        transition = _move(s, "reset", now)
    s.disabled = action == "closed"
    return transition


def peek_state(s: BreakerState, cfg: BreakerConfig, now: float) -> CircuitState:
    """The state a call arriving at ``now`` would find, without changing anything."""
    if s.state is OPEN and not s.isolated and now - s.opened_at >= cfg.reset_timeout:
        return HALF_OPEN
    return s.state
