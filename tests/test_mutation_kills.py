"""Exact state of the pure rules where mutation testing found the tests silent.

Each test pins a detail a surviving mutant changed (``tox -e mutation``): the breaker's
counters, its quiet flag and closed ticket, the sliding window's slow-call bookkeeping, and the
waiting line's tickets. See the issue 18 report for the mutants explained as equivalent.
"""

from __future__ import annotations

from typing import Any

from seawall._core.breaker import (
    FAILURE,
    NEUTRAL,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    CircuitState,
    Ticket,
    admit,
    force,
    record,
)
from seawall._core.limiter import Bucket
from seawall._core.limiter_queue import WaitQueue

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def config(**overrides: object) -> BreakerConfig:
    values: dict[str, Any] = {
        "max_failures": 2,
        "reset_timeout": 10.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
        "stale_attempt_timeout": 10.0,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "window_size": 10,
        "minimum_calls": 10,
    }
    values.update(overrides)
    return BreakerConfig(**values)


def ticket(s: BreakerState, cfg: BreakerConfig, now: float) -> Ticket:
    decision, _ = admit(s, cfg, now)
    assert isinstance(decision, tuple), f"expected admission, got retry_after={decision}"
    return decision


def test_counters_count_every_outcome_and_rejection() -> None:
    """Two successes, two neutrals, two failures and two rejections are each counted as 2."""
    s, cfg = BreakerState(), config()
    for outcome in (SUCCESS, SUCCESS, NEUTRAL, NEUTRAL, FAILURE, FAILURE):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), outcome)
    assert admit(s, cfg, 1.0) == (9.0, None)
    assert admit(s, cfg, 2.0) == (8.0, None)
    counts = (s.successful_calls, s.neutral_calls, s.failed_calls, s.rejected_calls)
    assert counts == (2, 2, 2, 2)


def test_open_keeps_its_failure_count_and_half_open_clears_it() -> None:
    """Open: failure_count still says why (2); half-open and closed start from 0 again."""
    s, cfg = BreakerState(), config()
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    assert (s.state, s.failure_count, s.closed_ticket) == (OPEN, 2, None)
    probe = ticket(s, cfg, 10.0)
    assert (s.state, s.failure_count, s.closed_ticket) == (HALF_OPEN, 0, None)
    record(s, cfg, 10.0, probe, SUCCESS)
    assert (s.state, s.failure_count, s.closed_ticket) == (CLOSED, 0, (s.generation, 0))


def test_quiet_only_while_closed_clean_and_windowless() -> None:
    """quiet is True after a success on a clean closed breaker, False after a failure or reset,
    and never with a sliding window."""
    s, cfg = BreakerState(), config()
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS)
    assert s.quiet is True
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    assert s.quiet is False
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS)
    assert s.quiet is True
    force(s, "reset", 0.0)
    assert s.quiet is False
    windowed = config(failure_rate_threshold=0.5)
    w = BreakerState()
    record(w, windowed, 0.0, ticket(w, windowed, 0.0), SUCCESS)
    assert w.quiet is False


def test_slow_successes_are_slow_not_failures_and_leave_the_window_exactly() -> None:
    """Window of 2: two slow successes count 2 slow, 0 failed; two fast ones push them out."""
    s = BreakerState()
    cfg = config(
        max_failures=99,
        slow_call_duration=1.0,
        slow_call_rate_threshold=1.5,  # never reached: the window only is under test
        window_size=2,
        minimum_calls=99,
    )
    for duration in (1.0, 2.0):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS, duration)
    assert (s.window_slow, s.window_failures) == (2, 0)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS, 0.0)
    assert (s.window_slow, s.window_failures) == (1, 0)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE, 0.0)
    assert (s.window_slow, s.window_failures) == (0, 1)


def test_reset_while_closed_empties_the_window_and_moves_one_generation() -> None:
    """reset() while closed: window counts 0, the generation moves on by one, no transition."""
    s = BreakerState()
    cfg = config(max_failures=99, failure_rate_threshold=1.0, window_size=4, minimum_calls=4)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    generation = s.generation
    assert force(s, "reset", 0.0) is None
    assert (s.window_failures, s.window_slow, len(s.window)) == (0, 0, 0)
    assert (s.generation, s.closed_ticket) == (generation + 1, (generation + 1, 0))


def test_force_open_twice_is_one_transition_stamped_now() -> None:
    """Forcing open an open breaker changes nothing; the transitions carry their time."""
    s = BreakerState()
    first = force(s, "open", 3.0)
    assert first is not None
    assert (first.old, first.new, first.at) == (CLOSED, OPEN, 3.0)
    assert force(s, "open", 4.0) is None
    back = force(s, "reset", 5.0)
    assert back is not None
    assert (back.old, back.new, back.at) == (OPEN, CLOSED, 5.0)
    assert s.state_changes == 2


# -- the waiting line --------------------------------------------------------------------------


def test_a_reservation_over_max_wait_gets_no_ticket() -> None:
    """join() beyond max_wait returns the wait and no ticket, and queues nobody."""
    bucket = Bucket(interval=1.0, burst=1.0)
    queue = WaitQueue(bucket)
    bucket.reserve(0.0, 1, 0.0)
    assert queue.join(0.0, 1, 0.5) == (1.0, None)
    assert (len(queue.line), bucket.full_at) == (0, 1.0)


def test_a_ticket_due_exactly_now_is_spent() -> None:
    """A ticket whose slot starts exactly now leaves the line on prune(now)."""
    bucket = Bucket(interval=1.0, burst=1.0)
    queue = WaitQueue(bucket)
    bucket.reserve(0.0, 1, 0.0)
    _, ticket = queue.join(0.0, 1, float("inf"))
    assert ticket is not None
    queue.prune(1.0)
    assert (ticket.queued, len(queue.line)) == (False, 0)


def test_leaving_twice_gives_back_once() -> None:
    """A ticket that left the line is no longer queued; leaving again moves nobody."""
    bucket = Bucket(interval=1.0, burst=1.0)
    queue = WaitQueue(bucket)
    bucket.reserve(0.0, 1, 0.0)
    _, ticket = queue.join(0.0, 1, float("inf"))
    assert ticket is not None
    assert queue.leave(ticket, 0.5) == []
    assert (ticket.queued, bucket.full_at) == (False, 1.0)
    assert queue.leave(ticket, 0.5) == []
    assert bucket.full_at == 1.0
