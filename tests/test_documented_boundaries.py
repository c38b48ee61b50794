"""Documented boundaries, each tested exactly at the boundary and on both sides of it.

The breaker's generations, a call lasting exactly ``slow_call_duration``, a retry wait ending
exactly at the deadline, the degraded-store backoff and a shutdown callback whose own timeout
is longer than what is left of the total budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from seawall import CircuitBreaker, CircuitState, GracefulShutdown, Retry
from seawall._core.breaker import (
    FAILURE,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    Ticket,
    admit,
    force,
    record,
)
from seawall.stores import MemoryStore, StoreUnavailableError
from seawall.stores._degraded import StoreGuard
from seawall.testing import FakeClock

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


# -- the breaker's generations ------------------------------------------------------------------


def test_failure_admitted_before_an_open_close_cycle_never_counts_after_it() -> None:
    """A closed-era call failing after the breaker opened and closed again is ignored."""
    s, cfg = BreakerState(), config(max_failures=1)
    late = ticket(s, cfg, 0.0)
    assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE) is not None
    assert s.state is OPEN
    assert record(s, cfg, 10.0, ticket(s, cfg, 10.0), SUCCESS) is not None  # probe closes it
    assert s.state is CLOSED
    assert record(s, cfg, 11.0, late, FAILURE) is None
    assert (s.state, s.failure_count, s.failed_calls) == (CLOSED, 0, 2)


def test_reset_while_closed_starts_a_new_generation() -> None:
    """Failures of calls admitted before a reset() while closed never count towards a trip."""
    s, cfg = BreakerState(), config(max_failures=2)
    before = [ticket(s, cfg, 0.0) for _ in range(2)]
    assert force(s, "reset", 0.0) is None  # closed: no transition, a new generation
    for old in before:
        assert record(s, cfg, 1.0, old, FAILURE) is None
    assert (s.state, s.failure_count) == (CLOSED, 0)
    assert record(s, cfg, 1.0, ticket(s, cfg, 1.0), FAILURE) is None
    assert (s.state, s.failure_count) == (CLOSED, 1)  # only the new call counted


def test_breaker_reset_while_closed_forgets_calls_in_flight(clock: FakeClock) -> None:
    """CircuitBreaker.reset() while closed: two calls in flight failing after it do not trip."""
    breaker = CircuitBreaker(max_failures=2, clock=clock)
    entered, release = threading.Barrier(3), threading.Event()

    def failing() -> None:
        entered.wait(10)
        release.wait(10)
        raise ConnectionError("down")

    def call() -> None:
        with pytest.raises(ConnectionError):
            breaker.call(failing)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    entered.wait(10)
    breaker.reset()
    release.set()
    for thread in threads:
        thread.join(10)
    assert (breaker.state, breaker.stats.failed_calls) == (CLOSED, 2)


# -- slow calls: "at least" slow_call_duration ------------------------------------------------


@pytest.mark.parametrize(("duration", "trips"), [(0.999, False), (1.0, True)])
def test_a_call_lasting_exactly_slow_call_duration_is_slow(duration: float, trips: bool) -> None:
    """With slow_call_duration=1: a 1.0 s call counts as slow, a 0.999 s call does not."""
    s = BreakerState()
    cfg = config(
        max_failures=99,
        slow_call_duration=1.0,
        slow_call_rate_threshold=1.0,
        window_size=1,
        minimum_calls=1,
    )
    record(s, cfg, duration, ticket(s, cfg, 0.0), SUCCESS, duration)
    assert (s.state, s.state_changes) == ((OPEN, 1) if trips else (CLOSED, 0))


@pytest.mark.parametrize(("duration", "state"), [(0.5, CLOSED), (1.0, OPEN)])
def test_breaker_measures_an_exactly_slow_call_on_its_clock(
    clock: FakeClock, duration: float, state: CircuitState
) -> None:
    """CircuitBreaker: one call that takes exactly slow_call_duration on the clock trips it."""
    breaker = CircuitBreaker(
        slow_call_duration=1.0,
        slow_call_rate_threshold=1.0,
        window_size=1,
        minimum_calls=1,
        clock=clock,
    )
    assert breaker.call(clock.advance, duration) is None
    assert breaker.state is state


# -- retry: a wait ending at the deadline stops -------------------------------------------------


def _attempt_times(clock: FakeClock, deadline: float) -> list[float]:
    times: list[float] = []

    def fn() -> None:
        times.append(clock.monotonic())
        raise ConnectionError("down")

    policy = Retry(
        attempts=10,
        initial=1,
        multiplier=2,
        maximum=100,
        jitter=False,
        deadline=deadline,
        clock=clock,
    )
    with pytest.raises(ConnectionError):
        policy.call(fn)
    return times


def test_retry_wait_ending_exactly_at_the_deadline_stops(clock: FakeClock) -> None:
    """Deadline 7: the third wait (4 s, from t=3) would end exactly at 7: no attempt at 7."""
    assert _attempt_times(clock, 7.0) == [0.0, 1.0, 3.0]
    assert clock.monotonic() == 3.0


def test_retry_wait_ending_just_before_the_deadline_is_taken(clock: FakeClock) -> None:
    """Deadline 7.5: the same wait ends before it, so the fourth attempt runs at t=7."""
    assert _attempt_times(clock, 7.5) == [0.0, 1.0, 3.0, 7.0]


# -- the degraded-store backoff: 0.1 s doubling to 1 s, back to 0.1 s after recovery ------------


class Switch:
    """A store operation that fails while ``down``, counting the calls that reach it."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("store is down")
        return "answer"


# Checked 1 ms either side of each expected retry instant.
JUST = 0.001


def _backs_off(guard: StoreGuard, op: Switch, clock: FakeClock, backoff: float) -> None:
    """After a failed call now: not asked again just before ``backoff``, asked just after."""
    calls = op.calls
    clock.advance(backoff - JUST)
    guard.ask(op)
    assert op.calls == calls, f"asked again before the {backoff} s backoff ended"
    clock.advance(2 * JUST)
    guard.ask(op)
    assert op.calls == calls + 1, f"not asked again just after the {backoff} s backoff"


def test_degraded_backoff_doubles_from_a_tenth_to_one_second(clock: FakeClock) -> None:
    """A dead store is asked again after 0.1, 0.2, 0.4, 0.8, 1 and 1 s, never sooner or later."""
    guard, op = StoreGuard(MemoryStore(), "local", "limiter", "api", clock), Switch()
    guard.ask(op)
    assert op.calls == 1
    for backoff in (0.1, 0.2, 0.4, 0.8, 1.0, 1.0):
        _backs_off(guard, op, clock, backoff)
    assert guard.degraded_decisions == 13  # every call answered DEGRADED


def test_degraded_backoff_starts_again_at_a_tenth_after_recovery(clock: FakeClock) -> None:
    """After the store answers, the next outage backs off 0.1 s first, then 0.2 s."""
    guard, op = StoreGuard(MemoryStore(), "local", "limiter", "api", clock), Switch()
    guard.ask(op)
    for backoff in (0.1, 0.2, 0.4):
        _backs_off(guard, op, clock, backoff)
    clock.advance(0.8 + JUST)
    op.down = False
    assert (guard.ask(op), guard.degraded) == ("answer", False)
    op.down = True
    guard.ask(op)
    for backoff in (0.1, 0.2):
        _backs_off(guard, op, clock, backoff)


# -- shutdown: a callback's own timeout never outlasts the total budget -------------------------


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    return thread, box


def test_own_timeout_longer_than_the_budget_left_is_cut_to_it(clock: FakeClock) -> None:
    """timeout=5: after a 3 s callback, one with its own 10 s timeout gets the 2 s left."""
    release = threading.Event()
    shutdown = GracefulShutdown(timeout=5, clock=clock)
    shutdown.register("a", release.wait, priority=1, timeout=3)
    shutdown.register("b", release.wait, priority=2, timeout=10)
    shutdown.register("c", lambda: None, priority=3)
    thread, box = _in_thread(shutdown.trigger)
    clock.wait_for_sleepers(1)
    clock.advance(3)
    clock.wait_for_sleepers(1)
    clock.advance(2)
    thread.join(10)
    release.set()
    assert not thread.is_alive(), "b was given more than the 2 s left of the budget"
    assert [(r.name, r.status, r.duration) for r in box["value"]] == [
        ("a", "timeout", 3.0),
        ("b", "timeout", 2.0),
        ("c", "skipped", 0.0),
    ]


@pytest.mark.anyio
async def test_async_own_timeout_longer_than_the_budget_left_is_cut_to_it(
    clock: FakeClock,
) -> None:
    """atrigger(): the same plan ends at t=5 with b cut to the 2 s left and c skipped."""

    async def hang() -> None:
        await anyio.sleep_forever()

    shutdown = GracefulShutdown(timeout=5, clock=clock)
    shutdown.register("a", hang, priority=1, timeout=3)
    shutdown.register("b", hang, priority=2, timeout=10)
    shutdown.register("c", lambda: None, priority=3)
    box: dict[str, Any] = {}

    async def run() -> None:
        box["value"] = await shutdown.atrigger()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        for step in (3.0, 2.0):
            await anyio.wait_all_tasks_blocked()
            clock.advance(step)
        await anyio.wait_all_tasks_blocked()
        done_at_the_budget = "value" in box
        clock.advance(10.0)  # lets a run that overstays end, so the test fails instead of hanging
    assert done_at_the_budget, "b was given more than the 2 s left of the budget"
    assert [(r.name, r.status, r.duration) for r in box["value"]] == [
        ("a", "timeout", 3.0),
        ("b", "timeout", 2.0),
        ("c", "skipped", 0.0),
    ]
