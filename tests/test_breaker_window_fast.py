"""The time window's quick success (``count_success``): taken only when it cannot trip.

A healthy dependency's successes skip judging the rates (the httpx transport's hot path);
each test here is a case where skipping would be wrong, or proves the count stays exact.
"""

from __future__ import annotations

import random
import sys
import threading

from tests._breaker_windows import config, ticket

from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall._core.breaker import (
    FAILURE,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    admit,
    count_success,
    record,
)
from seawall._core.counting import count_value
from seawall.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN


def succeed(s: BreakerState, cfg: BreakerConfig, now: float, duration: float = 0.0) -> bool:
    """A success the driver's way: quick if the core allows it, else recorded; True if quick."""
    t = ticket(s, cfg, now)
    if count_success(s, cfg, now, t, duration):
        return True
    record(s, cfg, now, t, SUCCESS, duration)
    return False


def test_a_success_reaching_minimum_calls_is_judged() -> None:
    """Three failures then a success make 4 calls at 75%: the success trips the breaker."""
    cfg, s = config(minimum_calls=4), BreakerState()
    for _ in range(3):
        record(s, cfg, 1.0, ticket(s, cfg, 1.0), FAILURE)
    assert (succeed(s, cfg, 1.0), s.state) == (False, OPEN)


def test_a_success_in_a_new_bucket_is_judged() -> None:
    """A success whose bucket expires four old successes leaves 3 failures of 5: it trips."""
    cfg, s = config(), BreakerState()
    for _ in range(4):
        succeed(s, cfg, 1.0)
    for _ in range(3):
        record(s, cfg, 7.0, ticket(s, cfg, 7.0), FAILURE)
    assert (succeed(s, cfg, 7.0), s.state) == (True, CLOSED)  # 3 of 8, same bucket
    assert (succeed(s, cfg, 8.5), s.state) == (False, OPEN)  # bucket 0 gone: 3 of 5


def test_a_slow_success_is_judged() -> None:
    """At a 50% slow-call threshold, the third slow success of six trips the breaker."""
    cfg = config(failure_rate_threshold=None, slow_call_duration=1.0, slow_call_rate_threshold=0.5)
    s = BreakerState()
    for _ in range(3):
        succeed(s, cfg, 1.0)
    assert [succeed(s, cfg, 1.0, 2.0) for _ in range(2)] == [False, False]
    assert s.state is CLOSED
    succeed(s, cfg, 1.0, 2.0)
    assert s.state is OPEN


def test_quick_successes_count_exactly_as_recorded_ones() -> None:
    """The same calls, with and without the quick path, leave the same window and counters."""
    cfg = config()
    quick, slow = BreakerState(), BreakerState()
    calls = [(0.5, SUCCESS), (0.5, SUCCESS), (0.7, FAILURE), (1.9, SUCCESS), (2.0, SUCCESS)]
    calls += [(2.1, SUCCESS), (5.0, SUCCESS), (5.0, SUCCESS), (9.0, SUCCESS), (9.2, FAILURE)]
    calls += [(9.5, SUCCESS)]
    for now, outcome in calls:
        if outcome == SUCCESS:
            succeed(quick, cfg, now)
        else:
            record(quick, cfg, now, ticket(quick, cfg, now), outcome)
        record(slow, cfg, now, ticket(slow, cfg, now), outcome)
    seen = [
        (list(map(list, s.buckets)), s.successful_calls, s.failure_count) for s in (quick, slow)
    ]
    assert seen[0] == seen[1] == ([[1, 2, 0, 0], [2, 2, 0, 0], [4, 3, 1, 0]], 9, 0)


def test_permit_successes_from_threads_are_all_counted() -> None:
    """Four threads settling 2000 permits each leave 8000 successes in the window's bucket."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_rate_threshold=0.5, minimum_calls=2, window_duration=8.0, clock=clock
    )
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        for _ in range(2000):
            breaker.admit().success()

    threads = [threading.Thread(target=work) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch every few bytecodes: races show up
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert breaker.stats.successful_calls == 8000
    assert [bucket[1] for bucket in breaker._state.buckets] == [8000]


def test_successes_counted_without_the_lock_leave_what_record_would() -> None:
    """The driver's lock-free successes, handed to the core later, match recording each one.

    A breaker and a bare core state see the same calls; whenever the breaker hands its
    pending successes over (reading its stats, or recording a failure), both hold the same
    window, counters and state.
    """
    rng = random.Random(7)
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_rate_threshold=0.3,
        minimum_calls=6,
        window_duration=8.0,
        window_buckets=4,
        max_failures=3,
        reset_timeout=5.0,
        clock=clock,
    )
    cfg, ref = breaker._config, BreakerState()
    for _ in range(4000):
        clock.advance(rng.choice([0.0, 0.0, 0.0, 0.01, 0.4, 1.9]))
        now = clock.monotonic()
        decision, _ = admit(ref, cfg, now)
        try:
            permit = breaker.admit()
        except CircuitOpenError:
            assert isinstance(decision, float)
            continue
        assert isinstance(decision, tuple)
        outcome = FAILURE if rng.random() < 0.12 else SUCCESS
        permit.success() if outcome == SUCCESS else permit.failure()
        record(ref, cfg, now, decision, outcome)
        assert breaker.failure_count == ref.failure_count  # read without handing them over
        if rng.random() < 0.1:
            stats = breaker.stats
            seen = (stats.successful_calls, stats.failed_calls, stats.failure_count, stats.state)
            assert seen == (ref.successful_calls, ref.failed_calls, ref.failure_count, ref.state)
            assert list(map(list, breaker._state.buckets)) == list(map(list, ref.buckets))
    assert count_value(breaker._window_successes) > 500  # the lock-free path was taken
    assert breaker.stats.state_changes == ref.state_changes > 4  # and so were the others
