"""The time window's quick success (``count_success``): taken only when it cannot trip.

A healthy dependency's successes skip judging the rates (the httpx transport's hot path);
each test here is a case where skipping would be wrong, or proves the count stays exact.
"""

from __future__ import annotations

import sys
import threading

from tests._breaker_windows import config, ticket

from seawall import CircuitBreaker, CircuitState
from seawall._core.breaker import (
    FAILURE,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    count_success,
    record,
)
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
