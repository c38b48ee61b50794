"""Code written for the reference guide runs unchanged, or gives the documented answer.

One section per item of issue 17; where seawall keeps a difference on purpose, the test makes
the guide's call and checks the answer ``docs/migration.md`` documents.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from seawall import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Heartbeat,
    HeartbeatError,
    HeartbeatState,
    RateLimiter,
    RateLimitExceededError,
    Watchdog,
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


# -- 4. HeartbeatState.from_dict raises KeyError on a missing field ---------------------------

GOOD = {"timestamp": "2023-11-14T22:13:20+00:00", "pid": 42, "hostname": "h", "metadata": {}}


def test_from_dict_builds_the_state_from_the_guides_fields() -> None:
    """from_dict on the four fields the guide writes gives the state, not stopped."""
    assert HeartbeatState.from_dict(GOOD) == HeartbeatState(GOOD["timestamp"], 42, "h", {})


@pytest.mark.parametrize("field", ["timestamp", "pid", "hostname"])
def test_from_dict_raises_key_error_for_a_missing_field(field: str) -> None:
    """A missing required field raises KeyError naming it, as in the guide."""
    data = {key: value for key, value in GOOD.items() if key != field}
    with pytest.raises(KeyError) as caught:
        HeartbeatState.from_dict(data)
    assert caught.value.args == (field,)


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("pid", "42", TypeError, "heartbeat pid must be an int, got '42'"),
        ("pid", True, TypeError, "heartbeat pid must be an int, got True"),
        ("hostname", 7, TypeError, "heartbeat hostname must be a str, got 7"),
        ("metadata", [], TypeError, "heartbeat metadata must be a dict, got []"),
        ("stopped", "no", TypeError, "heartbeat stopped must be a bool, got 'no'"),
        (
            "timestamp",
            "2023-11-14T22:13:20",
            ValueError,
            "heartbeat timestamp must be ISO 8601 with a zone, got '2023-11-14T22:13:20'",
        ),
    ],
)
def test_from_dict_names_a_bad_field_and_its_value(
    field: str, value: object, error: type[Exception], message: str
) -> None:
    """A field of the wrong type or a naive timestamp raises, naming the field and the value."""
    with pytest.raises(error) as caught:
        HeartbeatState.from_dict({**GOOD, field: value})
    assert str(caught.value) == message


def test_read_state_stays_total_over_the_raising_from_dict(tmp_path: Path) -> None:
    """read_state returns None for a file missing a field, where from_dict raises."""
    path = tmp_path / "svc.heartbeat"
    path.write_text('{"timestamp": "2023-11-14T22:13:20+00:00", "pid": 42}')
    assert Heartbeat.read_state(path) is None


# -- 5. Heartbeat.shutdown(), ashutdown(), is_shutdown -----------------------------------------


def test_shutdown_stops_marks_the_file_and_refuses_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    """shutdown() stops the heartbeat, marks the file stopped, and any later start raises."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = Heartbeat(state_file=path, interval=10, clock=clock)
    heartbeat.start()
    assert heartbeat.is_shutdown is False
    heartbeat.shutdown()
    state = Heartbeat.read_state(path)
    assert (heartbeat.is_shutdown, heartbeat.is_running) == (True, False)
    assert state is not None
    assert state.stopped is True
    with pytest.raises(HeartbeatError, match="Heartbeat is shut down"):
        heartbeat.start()
    heartbeat.shutdown()  # idempotent
    assert heartbeat.beats == 2


@pytest.mark.anyio
@pytest.mark.parametrize("started_by", ["astart", "start"])
async def test_ashutdown_stops_either_driver(
    tmp_path: Path, clock: FakeClock, started_by: str
) -> None:
    """ashutdown() stops a heartbeat started by astart() or start(), and astart then raises."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = Heartbeat(state_file=path, interval=10, clock=clock)
    if started_by == "astart":
        await heartbeat.astart()
    else:
        heartbeat.start()
    await heartbeat.ashutdown()
    state = Heartbeat.read_state(path)
    assert (heartbeat.is_shutdown, heartbeat.is_running) == (True, False)
    assert state is not None
    assert state.stopped is True
    with pytest.raises(HeartbeatError, match="Heartbeat is shut down"):
        await heartbeat.astart()


# -- 10. the guide's error wording ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be positive (> 0), got 0"),
        ({"rate": -5}, "rate must be positive (> 0), got -5"),
        ({"rate": 10, "per": 0.0}, "per must be positive (> 0), got 0.0"),
    ],
)
def test_rate_limiter_says_rate_must_be_positive(kwargs: dict[str, Any], message: str) -> None:
    """A rate or per that is not positive raises ValueError in the guide's words, with the value."""
    with pytest.raises(ValueError, match="must be positive") as caught:
        RateLimiter(**kwargs)
    assert str(caught.value) == message


def test_failed_heartbeat_write_says_failed_to_write_heartbeat(tmp_path: Path) -> None:
    """A write that fails raises HeartbeatError starting with the guide's words and the path."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "svc.heartbeat"
    with pytest.raises(HeartbeatError) as caught:
        Heartbeat(state_file=path, interval=10).beat()
    assert str(caught.value).startswith(f"Failed to write heartbeat {str(path)!r}: ")


def test_refused_heartbeat_target_says_failed_to_write_heartbeat(tmp_path: Path) -> None:
    """A symlink at the path is refused with the guide's words, the path and the reason."""
    path = tmp_path / "svc.heartbeat"
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(HeartbeatError) as caught:
        Heartbeat(state_file=path, interval=10).beat()
    assert str(caught.value) == f"Failed to write heartbeat {str(path)!r}: it is a symlink"


# -- 8. Watchdog.seconds_since_ping before start(); from_state_file's timeout ------------------


def test_seconds_since_ping_counts_from_construction(clock: FakeClock) -> None:
    """Before start(), seconds_since_ping is the time since construction, as in the guide."""
    wd = Watchdog(timeout=30, clock=clock)
    clock.advance(5)
    assert (wd.seconds_since_ping, wd.stats.seconds_since_ping) == (5.0, 5.0)


def test_seconds_since_ping_before_start_counts_from_the_last_ping(clock: FakeClock) -> None:
    """A ping before start() restarts the count; start() restarts it again."""
    wd = Watchdog(timeout=30, clock=clock)
    clock.advance(5)
    wd.ping()
    clock.advance(2)
    assert wd.seconds_since_ping == 2.0
    with wd:
        clock.advance(1)
        assert wd.seconds_since_ping == 1.0


def test_from_state_file_timeout_is_max_age_and_the_interval_has_its_own_name(
    tmp_path: Path, clock: FakeClock
) -> None:
    """from_state_file as the guide calls it: timeout is max_age, check_interval the period."""
    path = tmp_path / "svc.heartbeat"
    wd = Watchdog.from_state_file(path, max_age=30, check_interval=5, clock=clock)
    assert (wd.timeout, wd.check_interval) == (30.0, 5.0)
    assert Watchdog.from_state_file(path, max_age=30, clock=clock).check_interval == 15.0
    assert Watchdog(timeout=30, clock=clock).check_interval is None


# -- 9. patching time.monotonic (documented: move to FakeClock) -------------------------------


def _boom() -> None:
    raise OSError("down")


def test_patching_time_monotonic_does_not_move_a_breakers_time() -> None:
    """mock.patch("time.monotonic"), as guide-era tests do, is not seen: the breaker stays OPEN."""
    breaker = CircuitBreaker(max_failures=1, reset_timeout=30)
    with pytest.raises(OSError):
        breaker.call(_boom)
    later = time.monotonic() + 3600
    with mock.patch("time.monotonic", return_value=later):
        assert breaker.state is CircuitState.OPEN


def test_the_documented_two_line_move_to_fake_clock_moves_time() -> None:
    """The migration page's replacement: a FakeClock advanced 30 s makes the breaker half-open."""
    clock = FakeClock()
    breaker = CircuitBreaker(max_failures=1, reset_timeout=30, clock=clock)
    with pytest.raises(OSError):
        breaker.call(_boom)
    clock.advance(30)
    assert breaker.state is CircuitState.HALF_OPEN
