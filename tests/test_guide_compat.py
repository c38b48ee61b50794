"""Code written for the reference guide runs unchanged, or gives the documented answer.

One section per item of issue 17; where seawall keeps a difference on purpose, the test makes
the guide's call and checks the answer ``docs/migration.md`` documents.
"""

from __future__ import annotations

import pytest

from seawall import (
    CircuitOpenError,
    RateLimiter,
    RateLimitExceededError,
    WatchdogTimeoutError,
)
from seawall.testing import FakeClock

# -- 1. the guide's error constructors ---------------------------------------------------------


def test_circuit_open_error_takes_the_guides_remaining_seconds_keyword() -> None:
    """CircuitOpenError("Circuit open", remaining_seconds=15.5) sets both names to 15.5."""
    error = CircuitOpenError("Circuit open", remaining_seconds=15.5)
    assert (error.remaining_seconds, error.retry_after, str(error)) == (15.5, 15.5, "Circuit open")


def test_guide_errors_take_the_wait_as_second_positional_argument() -> None:
    """The positional second argument is the wait, and str() stays the message alone."""
    circuit = CircuitOpenError("m", 3.0)
    limited = RateLimitExceededError("m", 1.5)
    stalled = WatchdogTimeoutError("m", 2.0)
    assert (circuit.remaining_seconds, circuit.retry_after, str(circuit)) == (3.0, 3.0, "m")
    assert (limited.retry_after, str(limited)) == (1.5, "m")
    assert (stalled.seconds_inactive, str(stalled)) == (2.0, "m")


def test_guide_errors_default_their_wait_to_zero() -> None:
    """Raised with a message only, as mocks do, the wait is 0.0."""
    assert CircuitOpenError("open").remaining_seconds == 0.0
    assert RateLimitExceededError("limited").retry_after == 0.0
    assert WatchdogTimeoutError("stalled").seconds_inactive == 0.0


def test_circuit_open_error_keeps_seawalls_retry_after_keyword() -> None:
    """The seawall form CircuitOpenError(msg, retry_after=2.0) still sets remaining_seconds."""
    error = CircuitOpenError("open", retry_after=2.0)
    assert (error.remaining_seconds, error.args) == (2.0, ("open",))


def test_circuit_open_error_refuses_two_different_waits() -> None:
    """remaining_seconds and retry_after that disagree raise ValueError naming both values."""
    with pytest.raises(ValueError, match=r"remaining_seconds=1\.0 and retry_after=2\.0 disagree"):
        CircuitOpenError("open", remaining_seconds=1.0, retry_after=2.0)
    assert CircuitOpenError("open", 2.0, retry_after=2.0).retry_after == 2.0


# -- 3. RateLimiterStats.total_waited is seconds -----------------------------------------------


def test_total_waited_is_the_seconds_waited_as_in_the_guide(clock: FakeClock) -> None:
    """Three waits of 0.25 s at rate 4, burst 1: total_waited 0.75 (seconds), total_waits 3."""
    limiter = RateLimiter(rate=4, per=1.0, burst=1, clock=clock)
    for _ in range(4):
        limiter.acquire()
    stats = limiter.stats
    assert (stats.total_acquired, stats.total_rejected) == (4, 0)
    assert (stats.total_waited, stats.total_waits) == (0.75, 3)
    assert isinstance(stats.total_waited, float)
