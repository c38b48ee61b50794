"""The breaker's time window: rates over the last N seconds, in buckets, on the fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from tests._breaker_windows import config, ticket

from seawall import CircuitBreaker, CircuitOpenError, CircuitState, ConfigError
from seawall._config.settings import CircuitBreakerSettings
from seawall._core.breaker import (
    FAILURE,
    NEUTRAL,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    force,
    record,
)
from seawall.config import Settings, configure
from seawall.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def call(
    s: BreakerState, cfg: BreakerConfig, now: float, outcome: int, duration: float = 0.0
) -> CircuitState:
    record(s, cfg, now, ticket(s, cfg, now), outcome, duration)
    return s.state


def test_buckets_are_aligned_on_their_width() -> None:
    """Calls at 1.0, 1.9, 2.0 and 5.5 s land in buckets 0, 0, 1 and 2 (2-second buckets)."""
    s, cfg = BreakerState(), config(failure_rate_threshold=1.0, minimum_calls=100)
    for now, outcome in [(1.0, FAILURE), (1.9, SUCCESS), (2.0, SUCCESS), (5.5, FAILURE)]:
        call(s, cfg, now, outcome)
    assert [list(b) for b in s.buckets] == [[0, 2, 1, 0], [1, 1, 0, 0], [2, 1, 1, 0]]


@pytest.mark.parametrize(("now", "state"), [(7.75, OPEN), (8.0, CLOSED)])
def test_a_bucket_stops_counting_exactly_at_its_edge(now: float, state: CircuitState) -> None:
    """A failure at 1.0 s (bucket [0, 2)) still counts at 7.75 s and is gone at 8.0 s."""
    s, cfg = BreakerState(), config()
    assert call(s, cfg, 1.0, FAILURE) is CLOSED  # one call: under minimum_calls
    assert call(s, cfg, now, SUCCESS) is state


def test_expired_buckets_are_dropped_when_a_call_is_recorded() -> None:
    """At 8.0 s bucket 0 is dropped and buckets 1 to 4 remain, the current one last."""
    s, cfg = BreakerState(), config(failure_rate_threshold=1.0, minimum_calls=100)
    for now in (1.0, 3.0, 5.0, 7.0, 8.0):
        call(s, cfg, now, SUCCESS)
    assert [b[0] for b in s.buckets] == [1, 2, 3, 4]


def test_expired_calls_do_not_count_towards_minimum_calls() -> None:
    """Three failures at 1 s, then one at 9 s: one call in the window, under 4, so closed."""
    s, cfg = BreakerState(), config(minimum_calls=4)
    for _ in range(3):
        assert call(s, cfg, 1.0, FAILURE) is CLOSED
    assert call(s, cfg, 9.0, FAILURE) is CLOSED
    assert [list(b) for b in s.buckets] == [[4, 1, 1, 0]]


def test_the_rate_is_judged_from_minimum_calls_on() -> None:
    """Three failures stay closed under minimum_calls=4; a fourth call, a success, trips (3/4)."""
    s, cfg = BreakerState(), config(minimum_calls=4, failure_rate_threshold=0.75)
    for now in (0.0, 2.5, 4.5):
        assert call(s, cfg, now, FAILURE) is CLOSED
    assert call(s, cfg, 6.5, SUCCESS) is OPEN


def test_a_rate_just_under_the_threshold_stays_closed() -> None:
    """Two failures in five calls is 40%, under a 50% threshold."""
    s, cfg = BreakerState(), config(minimum_calls=5)
    for outcome in (FAILURE, SUCCESS, FAILURE, SUCCESS, SUCCESS):
        assert call(s, cfg, 3.0, outcome) is CLOSED


def test_slow_calls_trip_on_their_rate_in_a_time_window() -> None:
    """Calls lasting exactly slow_call_duration are slow: two of four trip a 50% slow rate."""
    s, cfg = (
        BreakerState(),
        config(
            failure_rate_threshold=None,
            slow_call_duration=1.0,
            slow_call_rate_threshold=0.5,
            minimum_calls=4,
        ),
    )
    assert call(s, cfg, 0.0, SUCCESS, 0.999) is CLOSED
    assert call(s, cfg, 1.0, SUCCESS, 1.0) is CLOSED
    assert call(s, cfg, 2.0, SUCCESS, 0.5) is CLOSED
    assert [list(b) for b in s.buckets] == [[0, 2, 0, 1], [1, 1, 0, 0]]
    assert call(s, cfg, 3.0, FAILURE, 1.5) is OPEN


def test_slow_and_failed_calls_are_counted_apart() -> None:
    """A slow failure counts in both rates: 1 of 2 fails (50%) while slow-call needs 100%."""
    s, cfg = (
        BreakerState(),
        config(
            failure_rate_threshold=0.6,
            slow_call_duration=1.0,
            slow_call_rate_threshold=1.0,
            minimum_calls=2,
        ),
    )
    assert call(s, cfg, 0.0, FAILURE, 2.0) is CLOSED
    assert call(s, cfg, 0.0, SUCCESS, 0.1) is CLOSED
    assert [list(b) for b in s.buckets] == [[0, 2, 1, 1]]


def test_neutral_outcomes_stay_out_of_the_time_window() -> None:
    """A neutral outcome adds no call to any bucket."""
    s, cfg = BreakerState(), config()
    call(s, cfg, 1.0, NEUTRAL)
    assert list(s.buckets) == []


def test_outcomes_of_an_older_generation_do_not_enter_the_window() -> None:
    """A failure admitted before a reset is not counted in the time window after it."""
    s, cfg = BreakerState(), config(minimum_calls=1)
    early = ticket(s, cfg, 0.0)
    assert force(s, "reset", 0.5) is None  # closed: a new generation, no transition
    assert record(s, cfg, 1.0, early, FAILURE) is None
    assert (s.state, list(s.buckets), s.failed_calls) == (CLOSED, [], 1)


def test_a_state_change_empties_the_window() -> None:
    """After tripping, probing and closing again, the failures that tripped it are gone."""
    s, cfg = BreakerState(), config()
    call(s, cfg, 0.0, FAILURE)
    assert call(s, cfg, 0.0, FAILURE) is OPEN
    probe = ticket(s, cfg, 10.0)
    assert record(s, cfg, 10.0, probe, SUCCESS) is not None
    assert (s.state, list(s.buckets)) == (CLOSED, [])
    assert call(s, cfg, 10.5, SUCCESS) is CLOSED
    assert call(s, cfg, 11.0, FAILURE) is OPEN  # 1 of 2 again, only the new calls count


def test_a_clock_that_went_back_folds_later_buckets_into_the_current_one() -> None:
    """Calls stamped 100 s and 101 s, then one at 90 s: all three count, in bucket 45."""
    s, cfg = BreakerState(), config(failure_rate_threshold=1.0, minimum_calls=100)
    call(s, cfg, 100.0, FAILURE)
    call(s, cfg, 103.0, SUCCESS)
    call(s, cfg, 90.0, SUCCESS)
    assert [list(b) for b in s.buckets] == [[45, 3, 1, 0]]


def test_a_count_window_breaker_keeps_no_buckets() -> None:
    """Without window_duration the last window_size calls count, not the time."""
    s, cfg = BreakerState(), config(window_duration=None, window_size=2)
    call(s, cfg, 0.0, FAILURE)
    assert call(s, cfg, 1000.0, SUCCESS) is OPEN  # 1 of the last 2, however far apart
    assert (list(s.buckets), cfg.bucket_width) == ([], 0.0)


# -- the driver ---------------------------------------------------------------------------


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom


async def afail() -> None:
    raise Boom


def windowed(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(
        failure_rate_threshold=0.5,
        minimum_calls=2,
        window_duration=8.0,
        window_buckets=4,
        reset_timeout=5.0,
        clock=clock,
    )


def test_circuit_breaker_forgets_failures_older_than_the_window(clock: FakeClock) -> None:
    """A failure 8 s before the next one no longer counts: one call in the window, closed."""
    breaker = windowed(clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(8.0)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CLOSED


def test_circuit_breaker_trips_on_the_rate_in_its_window(clock: FakeClock) -> None:
    """A success, then a failure 7.5 s later: 1 of 2 in the window, so it opens."""
    breaker = windowed(clock)
    assert breaker.call(lambda: "ok") == "ok"
    clock.advance(7.5)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "never")


@pytest.mark.anyio
async def test_acall_trips_on_the_rate_in_its_window(clock: FakeClock) -> None:
    """The async path counts into the same buckets: 1 failure of 2 within 8 s opens it."""
    breaker = windowed(clock)

    async def aok() -> str:
        return "ok"

    assert await breaker.acall(aok) == "ok"
    clock.advance(6.0)
    with pytest.raises(Boom):
        await breaker.acall(afail)
    assert breaker.state is OPEN


def test_minimum_calls_defaults_to_100_for_a_time_window(clock: FakeClock) -> None:
    """99 failures within the window leave a failure-rate time window closed; the 100th trips."""
    breaker = CircuitBreaker(
        max_failures=1000, failure_rate_threshold=0.1, window_duration=30.0, clock=clock
    )
    for _ in range(99):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state is CLOSED
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"window_duration": 0}, ValueError, "window_duration must be > 0, got 0"),
        ({"window_duration": float("inf")}, ValueError, "window_duration must be finite"),
        ({"window_duration": "30"}, TypeError, "window_duration must be a number, got '30'"),
        ({"window_duration": 30.0, "window_buckets": 0}, ValueError, "window_buckets must be >= 1"),
        (
            {"window_duration": 1.0, "window_buckets": 2000},
            ValueError,
            "window_duration / window_buckets must be >= 0.001 s, got window_duration=1.0, "
            "window_buckets=2000",
        ),
        (
            {"window_duration": 30.0, "window_size": 50},
            ValueError,
            "exclude each other, got window_size=50, window_duration=30.0",
        ),
        ({"window_buckets": 5}, ValueError, "give window_duration too, got window_buckets=5"),
    ],
)
def test_bad_time_windows_name_the_parameter(
    options: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    """Every invalid time-window setting raises, naming the parameter and the value."""
    options.setdefault("failure_rate_threshold", 0.5)
    with pytest.raises(error, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        CircuitBreaker(**options)


def test_a_time_window_without_a_rate_threshold_is_an_error() -> None:
    """window_duration alone would count calls for nothing: it is refused, named."""
    with pytest.raises(ValueError, match="window_duration needs failure_rate_threshold"):
        CircuitBreaker(window_duration=30.0)


# -- configuration ----------------------------------------------------------------------------


def test_a_configured_window_duration_applies_to_rate_breakers(clock: FakeClock) -> None:
    """circuit_breaker.window_duration=8 in 4 buckets: a rate breaker forgets a failure 8 s old."""

    configure(
        Settings(circuit_breaker=CircuitBreakerSettings(window_duration=8.0, window_buckets=4))
    )
    breaker = CircuitBreaker(failure_rate_threshold=0.5, minimum_calls=2, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(8.0)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is CLOSED  # a count window would hold both failures and open
    plain = CircuitBreaker(clock=clock)  # no rate threshold: no window, no error
    assert plain.state is CLOSED
    counted = CircuitBreaker(
        failure_rate_threshold=0.5, window_size=2, minimum_calls=2, clock=clock
    )
    with pytest.raises(Boom):
        counted.call(fail)
    clock.advance(8.0)
    with pytest.raises(Boom):
        counted.call(fail)
    assert counted.state is OPEN  # its own window_size wins over the configured time window


def test_configured_buckets_narrower_than_1_ms_are_refused() -> None:
    """window_duration / window_buckets under 1 ms is a ConfigError naming both keys."""

    with pytest.raises(ConfigError, match=r"circuit_breaker\.window_duration.*per bucket \(2000\)"):
        CircuitBreakerSettings(window_duration=1.0, window_buckets=2000)
