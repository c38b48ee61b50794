"""Exact state of the pure rules where mutation testing found the tests silent.

Each test pins a detail a surviving mutant changed (``tox -e mutation``): the breaker's
counters, its quiet flag and closed ticket, the sliding window's slow-call bookkeeping, and the
waiting line's tickets. See the issue 18 report for the mutants explained as equivalent.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

import pytest

from seawall import Retry, RetryBudget
from seawall._core import breaker as breaker_core
from seawall._core import breaker_window
from seawall._core.adaptive import Gradient2Limit, VegasLimit
from seawall._core.adaptive_window import SampleWindow
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
from seawall._core.bulkhead import BulkheadCore
from seawall._core.limiter import Bucket
from seawall._core.limiter_keyed import KeyedBuckets
from seawall._core.limiter_queue import WaitQueue
from seawall._core.retry import Backoff, BudgetWindow, usable_hint
from seawall.stores import _rules

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


# -- retry: backoff and budget settings, server hints, the budget's buckets ---------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"initial": -0.5}, "initial must be >= 0, got -0.5"),
        ({"maximum": -1.0}, "maximum must be >= 0, got -1.0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1, got 0.5"),
        ({"initial": 2.0, "maximum": 1.0}, "maximum must be >= initial (2.0), got 1.0"),
    ],
)
def test_retry_names_each_bad_backoff_setting(overrides: dict[str, float], message: str) -> None:
    """Retry(...) with a bad backoff setting raises ValueError naming it and its value."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Retry(**overrides)  # type: ignore[arg-type]


def test_backoff_accepts_its_inclusive_bounds() -> None:
    """initial 0, maximum 0 and multiplier 1 are allowed, and maximum may equal initial."""
    assert Backoff(0.0, 0.0, 1.0, False).ceiling(3) == 0.0
    assert Backoff(2.0, 2.0, 1.0, False).ceiling(5) == 2.0


@pytest.mark.parametrize(
    ("overrides", "exc", "message"),
    [
        ({"ratio": -0.1}, ValueError, "ratio must be >= 0, got -0.1"),
        ({"minimum_per_second": -1}, ValueError, "minimum_per_second must be >= 0, got -1"),
        ({"window": 0}, ValueError, "window must be >= 1, got 0"),
        ({"window": 1.5}, TypeError, "window must be an int, got 1.5 (float)"),
    ],
)
def test_retry_budget_names_each_bad_setting(
    overrides: dict[str, float], exc: type[Exception], message: str
) -> None:
    """RetryBudget(...) with a bad setting raises naming it and its value."""
    with pytest.raises(exc, match=re.escape(message)):
        RetryBudget(**overrides)  # type: ignore[arg-type]


def test_a_one_second_budget_window_is_allowed() -> None:
    """window=1 is the smallest window: one retry per second with no calls and a minimum of 1."""
    budget = BudgetWindow(ratio=0.0, minimum_per_second=1.0, window=1)
    assert (budget.try_retry(0.0), budget.try_retry(0.5)) == (True, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1.0, None), (0, 0.0), (0.5, 0.5), (float("inf"), None), (float("nan"), None)],
)
def test_usable_hint_keeps_finite_waits_from_zero_up(value: float, expected: float | None) -> None:
    """A hint is usable from 0 s up when finite: negative, infinite and NaN hints are ignored."""
    assert usable_hint(value) == expected


def test_budget_counts_every_call_and_retry_of_one_second() -> None:
    """Three calls and two retries in one second count 3 and 2, and leave the window together."""
    budget = BudgetWindow(ratio=1.0, minimum_per_second=0.0, window=10)
    for now in (0.1, 0.2, 0.3):
        budget.record_call(now)
    assert (budget.try_retry(0.4), budget.try_retry(0.5)) == (True, True)
    assert budget.counts(0.9) == (3, 2)
    assert len(budget._buckets) == 1  # O(1) per decision: one bucket per second, not per event
    assert budget.counts(10.5) == (0, 0)  # the bucket leaves the window with all it counted


def test_budget_files_each_second_in_its_own_bucket() -> None:
    """A call at t=0 leaves the 10 s window at t=10; a call at t=5 stays until t=15."""
    budget = BudgetWindow(ratio=1.0, minimum_per_second=0.0, window=10)
    budget.record_call(0.0)
    budget.record_call(5.0)
    assert budget.counts(10.5) == (1, 0)


# -- bulkhead counters and the release-interval estimate ---------------------------------------


class Waiter:
    granted = False


def test_bulkhead_counts_each_rejection_and_each_wait() -> None:
    """Two rejections count 2; two waiters that got their slots count 2 waits."""
    core: BulkheadCore[Waiter] = BulkheadCore(1, None)
    assert core.try_admit() is True
    core.reject(0.0)
    core.reject(0.0)
    first, second = Waiter(), Waiter()
    core.enqueue(first, 0.0)
    core.enqueue(second, 0.0)
    assert core.release(1.0) is first
    assert core.claim(first) is True
    assert core.release(2.0) is second
    assert core.claim(second) is True
    assert (core.rejected, core.waited, core.admitted) == (2, 2, 3)


def test_an_enqueue_starts_the_busy_period() -> None:
    """Full since an enqueue at t=1, a release at t=1.5 estimates 0.5 s per slot."""
    core: BulkheadCore[Waiter] = BulkheadCore(1, None)
    core.try_admit()
    waiter = Waiter()
    core.enqueue(waiter, 1.0)
    assert core.release(1.5) is waiter
    assert core.retry_after() == 0.5


def test_an_abandoned_grant_counts_as_a_release() -> None:
    """A granted waiter cancelled at t=4 passes its slot on and samples the 2 s since t=2."""
    core: BulkheadCore[Waiter] = BulkheadCore(1, None)
    core.try_admit()
    first, second = Waiter(), Waiter()
    core.enqueue(first, 1.0)
    core.enqueue(second, 1.0)
    assert core.release(2.0) is first
    assert core.abandon(first, 4.0) is second
    assert core.retry_after() == 1.25  # samples 1.0, then 2.0 weighted 0.25: 1.25


def test_releasing_an_unheld_slot_says_so_exactly() -> None:
    """The RuntimeError's message is the documented one, word for word."""
    core: BulkheadCore[Waiter] = BulkheadCore(1, None)
    message = "Bulkhead released more times than it was acquired (no slot is held)"
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        core.release(None)


# -- the stores' rules: clock steps back, record expiry ----------------------------------------


def test_a_clock_step_back_moves_a_bucket_and_its_block_back() -> None:
    """Time going back 4 s moves full_at and blocked_until back by 4 s, and records now."""
    b = Bucket(interval=0.5, burst=3.0)
    b.last_now = 10.0
    b.full_at, b.blocked_until = 12.0, 11.0
    _rules.rebase_bucket(b, 6.0)
    assert (b.full_at, b.blocked_until, b.last_now) == (8.0, 7.0, 6.0)


def test_a_bucket_record_lives_until_full_and_unblocked() -> None:
    """The record's TTL is the later of full and unblocked, and never negative."""
    b = Bucket(interval=0.5, burst=3.0)
    b.full_at, b.blocked_until = 12.0, 15.0
    assert _rules.bucket_ttl(b, 10.0) == 5.0
    assert _rules.bucket_ttl(b, 20.0) == 0.0


def test_a_clock_step_back_moves_the_breaker_stamps_back() -> None:
    """Time going back 4 s moves opened_at and each probe's stamp back by 4 s."""
    s = BreakerState()
    s.opened_at, s.probes = 12.0, {1: 13.0, 2: 11.0}
    assert _rules.rebase_breaker(s, 10.0, 6.0) == 6.0
    assert (s.opened_at, s.probes) == (8.0, {1: 9.0, 2: 7.0})


def test_the_breaker_view_reports_when_it_opened_and_its_probes() -> None:
    """breaker_view shows opened_at and the number of probes in flight."""
    s, cfg = BreakerState(), config(max_failures=1, reset_timeout=5.0)
    record(s, cfg, 1.0, ticket(s, cfg, 1.0), FAILURE)
    ticket(s, cfg, 6.0)  # the half-open probe
    view = _rules.breaker_view(s, cfg, 6.0)
    assert (view.state, view.opened_at, view.probes) == ("half_open", 1.0, 1)


def test_the_shared_record_rule_passes_the_call_duration_on() -> None:
    """A success lasting 2 s with slow_call_duration=1 counts slow and opens the breaker."""
    s = BreakerState()
    cfg = config(slow_call_duration=1.0, slow_call_rate_threshold=1.0, minimum_calls=1)
    change = _rules.breaker_record(s, cfg, 2.0, ticket(s, cfg, 0.0), SUCCESS, 2.0)
    assert change is not None
    assert (change.old, change.new) == (CLOSED, OPEN)


# -- the breaker's time window -----------------------------------------------------------------


def test_a_clock_going_back_folds_the_current_and_later_buckets_into_one() -> None:
    """Back at bucket 5, buckets 5 and 7 become one bucket 5 holding both counts, added up."""
    buckets = deque([[3, 1, 0, 0], [5, 2, 1, 0], [7, 4, 2, 1]])
    breaker_window.expire(buckets, 5, 4)
    assert buckets == deque([[3, 1, 0, 0], [5, 6, 3, 1]])


# -- the breaker core: found by mutmut once _core/breaker.py joined the run -------------------


def test_a_fresh_breaker_shares_ticket_0_0_and_never_opened() -> None:
    """A new state is closed with the lock-free shared ticket (0, 0), and opened_at 0.0 (never)."""
    s = BreakerState()
    assert (s.state, s.closed_ticket, s.opened_at) == (CLOSED, (0, 0), 0.0)


def test_a_closed_state_without_its_shared_ticket_admits_with_its_generation() -> None:
    """Closed with closed_ticket None at generation 3, admit still answers (3, 0): no probe."""
    s = BreakerState()
    s.generation, s.closed_ticket = 3, None
    assert admit(s, config(), 0.0) == ((3, 0), None)


def test_each_refusal_while_forced_open_is_counted_once() -> None:
    """Forced open, two calls are refused for reset_timeout each and counted 2."""
    s, cfg = BreakerState(), config()
    force(s, "open", 0.0)
    assert [admit(s, cfg, 50.0), admit(s, cfg, 60.0)] == [(10.0, None), (10.0, None)]
    assert s.rejected_calls == 2


def test_a_failed_probe_leaves_exactly_one_failure() -> None:
    """Re-opened by its probe, the breaker says why: failure_count 1."""
    s, cfg = BreakerState(), config()
    for _ in range(2):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    record(s, cfg, 10.0, ticket(s, cfg, 10.0), FAILURE)
    assert (s.state, s.failure_count) == (OPEN, 1)


def test_two_resets_while_closed_are_two_generations() -> None:
    """A call admitted between two resets does not count after the second one."""
    s, cfg = BreakerState(), config(max_failures=1)
    force(s, "reset", 0.0)
    between = ticket(s, cfg, 0.0)
    force(s, "reset", 0.0)
    assert record(s, cfg, 0.0, between, FAILURE) is None
    assert (s.state, s.failure_count, s.generation) == (CLOSED, 0, 2)


def test_a_call_recorded_without_a_duration_is_not_slow() -> None:
    """With slow_call_duration 1 s, a success recorded with no duration is not a slow call."""
    s = BreakerState()
    cfg = config(slow_call_duration=1.0, slow_call_rate_threshold=1.0, minimum_calls=1)
    assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS) is None
    assert (s.state, s.window_slow) == (CLOSED, 0)


def test_a_state_change_starts_the_window_counts_from_zero() -> None:
    """Tripped by its failure rate and closed again, two successes keep the breaker closed."""
    s = BreakerState()
    cfg = config(max_failures=99, failure_rate_threshold=0.5, window_size=4, minimum_calls=2)
    for outcome in (FAILURE, FAILURE):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), outcome)
    record(s, cfg, 10.0, ticket(s, cfg, 10.0), SUCCESS)
    assert (s.state, s.window_failures, s.window_slow) == (CLOSED, 0, 0)
    for _ in range(2):
        record(s, cfg, 11.0, ticket(s, cfg, 11.0), SUCCESS)
    assert s.state is CLOSED


def test_an_illegal_transition_names_the_state_and_the_cause() -> None:
    """Asking a closed breaker to close on its probes is a RuntimeError saying so."""
    message = "illegal breaker transition from CLOSED on 'probes_succeeded'"
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        breaker_core._move(BreakerState(), "probes_succeeded", 0.0)


# -- the adaptive sample window ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "message"),
    [("1", r"^window must be a number, got '1' \(str\)$"), (True, r"\(bool\)$")],
)
def test_a_sample_window_that_is_not_a_number_is_a_type_error(window: object, message: str) -> None:
    """A text or bool window is a TypeError naming the value and its type."""
    with pytest.raises(TypeError, match=message):
        SampleWindow(window=window)  # type: ignore[arg-type]


@pytest.mark.parametrize("samples", [2.5, True])
def test_window_samples_must_be_a_whole_number(samples: object) -> None:
    """A float or a bool window_samples is refused with its value."""
    with pytest.raises(ValueError, match=rf"^window_samples must be an int >= 1, got {samples}$"):
        SampleWindow(window_samples=samples)  # type: ignore[arg-type]


# -- the adaptive update rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Gradient2Limit(max_limit=0), ValueError, r"^max_limit must be >= 1, got 0$"),
        (
            lambda: Gradient2Limit(smoothing="0.5"),
            TypeError,
            r"^smoothing must be a number, got '0.5' \(str\)$",
        ),
        (lambda: Gradient2Limit(smoothing=True), TypeError, r"got True \(bool\)$"),
        (
            lambda: Gradient2Limit(queue_size=2.5),
            ValueError,
            r"^queue_size must be an int >= 0, got 2\.5$",
        ),
        (
            lambda: Gradient2Limit(long_window=0),
            ValueError,
            r"^long_window must be an int >= 1, got 0$",
        ),
        (lambda: Gradient2Limit(long_window=2.5), ValueError, r"^long_window must be an int"),
        (
            lambda: VegasLimit(probe_multiplier=2.5),
            ValueError,
            r"^probe_multiplier must be an int >= 1, got 2\.5$",
        ),
    ],
)
def test_adaptive_rules_refuse_bad_arguments_exactly(
    make: Any, error: type[Exception], message: str
) -> None:
    """A bound, a text or bool number, a float where an int is due: refused, value named."""
    with pytest.raises(error, match=message):
        make()


def test_adaptive_rules_accept_their_inclusive_lower_bounds() -> None:
    """tolerance 1.0 and long_window 1 are allowed (the bounds are closed)."""
    rule = Gradient2Limit(tolerance=1.0, long_window=1)
    assert (rule.tolerance, rule.long_window) == (1.0, 1)


def test_adaptive_rules_have_their_documented_defaults() -> None:
    """Gradient2: limit 20 in 1..200, long_rtt 0 until measured; Vegas re-probes every 30x."""
    rule = Gradient2Limit()
    assert (rule.limit, rule.min_limit, rule.max_limit) == (20.0, 1, 200)
    assert repr(rule) == "Gradient2Limit(limit=20, long_rtt=0)"
    assert VegasLimit().probe_multiplier == 30


def test_gradient2_baseline_exactly_twice_the_latency_does_not_decay() -> None:
    """long_rtt 0.5 s against a 0.25 s sample is not "more than twice": it stays 0.5."""
    rule = Gradient2Limit()
    rule.update(0.75, 0, False)
    rule.update(0.25, 0, False)
    assert rule.long_rtt == 0.5


def test_vegas_first_sample_sets_the_no_load_latency_whatever_it_is() -> None:
    """A fresh Vegas rule takes a 2 s first sample as its no-load latency, limit unchanged."""
    rule = VegasLimit()
    assert (rule.update(2.0, 20, False), rule.rtt_noload) == (20.0, 2.0)


def test_vegas_reprobes_every_probe_multiplier_times_limit_samples() -> None:
    """Limit 2, multiplier 1: samples 2 and 4 re-measure the no-load latency, 3 does not."""
    rule = VegasLimit(initial_limit=2, max_limit=2, probe_multiplier=1)
    seen = []
    for rtt in (1.0, 2.0, 3.0, 4.0):
        rule.update(rtt, 2, False)
        seen.append(rule.rtt_noload)
    assert seen == [1.0, 2.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("limit", "rtt", "expected"),
    [
        (10, 1.4, 10.0),  # queue 3 = 3 steps: stays
        (10, 2.4, 10.0),  # queue 6 = 6 steps: stays
        (10, 3.0, 9.0),  # queue 7 > 6 steps: one step down
        (100, 1.0, 112.0),  # step 2, queue 0: 6 steps up
        (100, 1.025, 102.0),  # step 2, queue 3 < 3 steps: one step up
        (100, 1.07, 100.0),  # step 2, queue 7 within 3..6 steps: stays
    ],
)
def test_vegas_queue_thresholds_scale_with_the_step(
    limit: int, rtt: float, expected: float
) -> None:
    """The queue is compared with 1, 3 and 6 steps, inclusive as documented, at step 1 and 2."""
    rule = VegasLimit(initial_limit=limit, max_limit=200)
    rule.update(1.0, limit, False)  # the no-load latency: 1 s
    assert rule.update(rtt, limit, False) == expected


# -- the breaker's quick count of a success in a time window ---------------------------------


def timed(**overrides: object) -> BreakerConfig:
    """Eight seconds in four 2-second buckets, 50% failures over at least 2 calls."""
    values: dict[str, object] = {
        "max_failures": 100,
        "failure_rate_threshold": 0.5,
        "minimum_calls": 2,
        "window_duration": 8.0,
        "window_buckets": 4,
    }
    values.update(overrides)
    return config(**values)


def at_quorum(cfg: BreakerConfig, calls: int) -> BreakerState:
    """A closed breaker whose newest bucket (t=0) holds ``calls`` recorded successes."""
    s = BreakerState()
    for _ in range(calls):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS)
    return s


@pytest.mark.parametrize("minimum_calls", [1, 2])
def test_a_window_holding_exactly_minimum_calls_counts_a_success_quickly(
    minimum_calls: int,
) -> None:
    """With exactly minimum_calls calls in the window, the next success is counted quickly."""
    cfg = timed(minimum_calls=minimum_calls)
    s = at_quorum(cfg, minimum_calls)
    assert breaker_core.count_success(s, cfg, 0.5, ticket(s, cfg, 0.5)) is True
    assert (s.buckets[-1][1], s.successful_calls) == (minimum_calls + 1, minimum_calls + 1)


def test_a_quick_success_without_a_duration_is_not_slow() -> None:
    """With slow_call_duration 1 s, a success given no duration is counted quickly."""
    cfg = timed(slow_call_duration=1.0, slow_call_rate_threshold=1.0)
    s = at_quorum(cfg, 2)
    assert breaker_core.count_success(s, cfg, 0.5, ticket(s, cfg, 0.5)) is True


def test_a_success_lasting_exactly_slow_call_duration_is_not_counted_quickly() -> None:
    """A success of exactly slow_call_duration is slow ("at least"), so it must be recorded."""
    cfg = timed(slow_call_duration=1.0, slow_call_rate_threshold=1.0)
    s = at_quorum(cfg, 2)
    assert breaker_core.count_success(s, cfg, 0.5, ticket(s, cfg, 0.5), 1.0) is False
    assert s.successful_calls == 2


def test_only_the_shared_closed_ticket_is_counted_quickly() -> None:
    """An equal ticket that is not the shared closed ticket object goes to record()."""
    cfg = timed()
    s = at_quorum(cfg, 2)
    assert s.closed_ticket is not None
    lookalike = (s.closed_ticket[0], s.closed_ticket[1])
    assert lookalike == s.closed_ticket
    assert lookalike is not s.closed_ticket
    assert breaker_core.count_success(s, cfg, 0.5, lookalike) is False
    assert s.successful_calls == 2


# -- KeyedBuckets.take -----------------------------------------------------------------------


def test_take_answers_a_clock_that_went_back_as_at_its_latest_reading() -> None:
    """Taken at t=10 then at t=6, the second take counts from t=10: 2 left, full in 0.5 s."""
    keys = KeyedBuckets(interval=0.25, burst=4.0, max_keys=10)
    keys.take("a", 10.0, 1)
    assert (keys.take("a", 6.0, 1), keys.last_now) == ((0.0, 2, 0.5), 10.0)


def test_take_within_the_rounding_tolerance_reports_zero_left_never_minus_one() -> None:
    """A grant whose wait is 5e-10 s (under EPSILON) leaves 0 whole tokens, not -1."""
    keys = KeyedBuckets(interval=0.25, burst=4.0, max_keys=10)
    keys.take("a", 0.0, 1)
    keys.full_at["a"] = 0.75 + 5e-10
    assert keys.take("a", 0.0, 1) == (0.0, 0, 1.0000000005)
