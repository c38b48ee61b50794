"""CircuitBreaker: the sync and async drivers, the decorator and the permission protocol."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from seawall import (
    CircuitBreaker,
    CircuitBreakerError,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    CircuitStats,
    RejectedError,
    circuit_breaker,
)
from seawall.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom


async def afail() -> None:
    raise Boom


def ok() -> str:
    return "ok"


async def aok() -> str:
    return "ok"


def tripped(clock: FakeClock, **options: Any) -> CircuitBreaker:
    breaker = CircuitBreaker(max_failures=2, reset_timeout=10, clock=clock, **options)
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state is OPEN
    return breaker


def test_call_passes_arguments_and_returns_the_result(clock: FakeClock) -> None:
    """call(fn, *args, **kwargs) is fn(*args, **kwargs) while closed."""
    breaker = CircuitBreaker(clock=clock)
    assert breaker.call(lambda a, *, b: (a, b), 1, b=2) == (1, 2)
    assert breaker.stats == CircuitStats(1, 1, 0, 0, 0, 0, CLOSED, 0)


def test_guide_example_trips_after_three_failures_and_rejects(clock: FakeClock) -> None:
    """The reference guide's example: three failures open it and the fourth call is refused."""
    breaker = CircuitBreaker(max_failures=3, reset_timeout=30, clock=clock)
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(fail)
    clock.advance(12)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.remaining_seconds == 18.0
    assert info.value.retry_after == 18.0
    assert str(info.value) == "Circuit breaker 'unnamed' is open"
    assert breaker.stats == CircuitStats(4, 0, 3, 1, 1, 0, OPEN, 3)


def test_rejection_errors_belong_to_both_trees(clock: FakeClock) -> None:
    """CircuitOpenError is a RejectedError, a CircuitBreakerError and a RuntimeError."""
    breaker = tripped(clock)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert isinstance(info.value, RejectedError)
    assert isinstance(info.value, CircuitBreakerError)
    assert isinstance(info.value, RuntimeError)


def test_every_rejection_is_a_fresh_exception_with_a_short_traceback(clock: FakeClock) -> None:
    """10,000 rejections raise 10,000 distinct objects whose tracebacks do not grow."""
    breaker = tripped(clock)
    seen: set[int] = set()
    depths: set[int] = set()
    keep: list[BaseException] = []
    for _ in range(10_000):
        try:
            breaker.call(ok)
        except CircuitOpenError as exc:
            keep.append(exc)
            seen.add(id(exc))
            depth, tb = 0, exc.__traceback__
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.add(depth)
    assert len(seen) == 10_000
    assert len(depths) == 1


def test_half_open_after_reset_timeout_then_closed_on_success(clock: FakeClock) -> None:
    """After reset_timeout one probe is admitted and its success closes the breaker."""
    breaker = tripped(clock)
    clock.advance(10)
    assert breaker.state is HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


def test_listeners_see_every_transition_in_order(clock: FakeClock) -> None:
    """A listener receives CLOSED->OPEN, OPEN->HALF_OPEN, HALF_OPEN->OPEN, ... in order."""
    events: list[CircuitStateChange] = []
    breaker = CircuitBreaker(
        max_failures=1, reset_timeout=5, name="db", clock=clock, on_state_change=events.append
    )
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(5)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(5)
    breaker.call(ok)
    assert [(e.name, e.old, e.new, e.reason, e.at) for e in events] == [
        ("db", CLOSED, OPEN, "tripped", 0.0),
        ("db", OPEN, HALF_OPEN, "reset_timeout_elapsed", 5.0),
        ("db", HALF_OPEN, OPEN, "probe_failed", 5.0),
        ("db", OPEN, HALF_OPEN, "reset_timeout_elapsed", 10.0),
        ("db", HALF_OPEN, CLOSED, "probes_succeeded", 10.0),
    ]


def test_a_failing_listener_is_logged_and_does_not_break_the_call(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises is logged under 'seawall'; the breaker still opens."""

    def bad(event: CircuitStateChange) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker(max_failures=1, clock=clock, on_state_change=bad)
    with caplog.at_level(logging.INFO, logger="seawall"), pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)


def test_excluded_exceptions_are_neutral(clock: FakeClock) -> None:
    """An excluded exception re-raises unchanged and counts as neither success nor failure."""
    breaker = CircuitBreaker(max_failures=1, excluded_exceptions=(KeyError,), clock=clock)
    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call(lambda: {}["missing"])
    assert breaker.state is CLOSED
    assert breaker.stats == CircuitStats(0, 0, 0, 0, 0, 3, CLOSED, 0)


def test_call_with_an_async_function_is_a_type_error(clock: FakeClock) -> None:
    """call(async_fn) raises TypeError, does not run the body, and records nothing as success."""
    ran: list[int] = []

    async def body() -> None:
        ran.append(1)

    breaker = CircuitBreaker(clock=clock)
    with pytest.raises(TypeError, match="acall"):
        breaker.call(body)
    assert ran == []
    assert breaker.stats.successful_calls == 0


def test_call_with_an_object_having_async_dunder_call_is_a_type_error(clock: FakeClock) -> None:
    """An object whose __call__ is async is refused by call() too."""

    class Handler:
        async def __call__(self) -> int:
            return 1

    with pytest.raises(TypeError):
        CircuitBreaker(clock=clock).call(Handler())


def test_keyboard_interrupt_is_neutral(clock: FakeClock) -> None:
    """A BaseException such as KeyboardInterrupt passes through without counting as a failure."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    breaker = CircuitBreaker(max_failures=1, clock=clock)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.state is CLOSED
    assert breaker.stats.neutral_calls == 1


def test_manual_control(clock: FakeClock) -> None:
    """force_open isolates, force_closed disables tripping, reset returns to normal."""
    breaker = CircuitBreaker(max_failures=1, clock=clock)
    breaker.force_open()
    clock.advance(3600)
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    breaker.force_closed()
    for _ in range(5):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state is CLOSED
    breaker.reset()
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN
    assert breaker.stats.state_changes == 3


def test_reset_counts_a_state_change_when_open(clock: FakeClock) -> None:
    """reset() from OPEN is a real transition (the reference counts none)."""
    breaker = tripped(clock)
    breaker.reset()
    assert (breaker.state, breaker.stats.state_changes, breaker.failure_count) == (CLOSED, 2, 0)


def test_stats_is_a_snapshot(clock: FakeClock) -> None:
    """A stats object does not change when the breaker does."""
    breaker = CircuitBreaker(clock=clock)
    before = breaker.stats
    breaker.call(ok)
    assert before.total_calls == 0
    assert breaker.stats.total_calls == 1


def test_with_block_reports_the_outcome(clock: FakeClock) -> None:
    """`with breaker:` counts a raised exception as a failure and a clean exit as a success."""
    breaker = CircuitBreaker(max_failures=2, clock=clock)
    with breaker:
        pass
    for _ in range(2):
        with pytest.raises(Boom), breaker:
            raise Boom
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError), breaker:
        pytest.fail("the body must not run while open")
    assert breaker.stats == CircuitStats(4, 1, 2, 1, 1, 0, OPEN, 2)


def test_nested_with_blocks_of_two_breakers_settle_their_own_tickets(clock: FakeClock) -> None:
    """Inner and outer breakers each record the outcome of their own block."""
    outer = CircuitBreaker(max_failures=1, clock=clock)
    inner = CircuitBreaker(max_failures=1, clock=clock)
    with outer, pytest.raises(Boom), inner:
        raise Boom
    assert (outer.state, inner.state) == (CLOSED, OPEN)


def test_decorator_bare_and_with_options_exposes_its_breaker(clock: FakeClock) -> None:
    """@circuit_breaker works bare and with options, keeps the name, and exposes .breaker."""

    @circuit_breaker
    def plain() -> int:
        return 1

    @circuit_breaker(max_failures=1, reset_timeout=3, clock=clock)
    def flaky() -> None:
        raise Boom

    assert plain() == 1
    assert plain.__name__ == "plain"
    with pytest.raises(Boom):
        flaky()
    assert flaky.breaker.state is OPEN  # type: ignore[attr-defined]
    with pytest.raises(CircuitOpenError):
        flaky()
    flaky.breaker.reset()  # type: ignore[attr-defined]


def test_breaker_instance_as_decorator(clock: FakeClock) -> None:
    """An existing breaker decorates sync functions, sharing its state across them."""
    breaker = CircuitBreaker(max_failures=2, clock=clock)
    first = breaker(fail)
    second = breaker(ok)
    for _ in range(2):
        with pytest.raises(Boom):
            first()
    with pytest.raises(CircuitOpenError):
        second()


def test_permit_settles_exactly_once(clock: FakeClock) -> None:
    """A permit reports one outcome; a second report is an error."""
    breaker = CircuitBreaker(max_failures=1, clock=clock)
    permit = breaker.admit()
    permit.failure()
    assert permit.settled
    with pytest.raises(RuntimeError, match="already settled"):
        permit.success()
    assert breaker.stats.failed_calls == 1


def test_permit_settle_classifies_exceptions(clock: FakeClock) -> None:
    """settle(None) is success, settle(Exception) failure, settle(cancellation) neutral."""
    breaker = CircuitBreaker(max_failures=5, excluded_exceptions=(KeyError,), clock=clock)
    breaker.admit().settle(None)
    breaker.admit().settle(Boom())
    breaker.admit().settle(KeyError("x"))
    breaker.admit().settle(KeyboardInterrupt())
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.neutral_calls) == (1, 1, 2)


def test_slow_calls_trip_the_breaker(clock: FakeClock) -> None:
    """Calls that succeed but take longer than slow_call_duration trip on their rate."""
    breaker = CircuitBreaker(
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
        clock=clock,
    )

    def slow() -> None:
        clock.sleep(2.0)

    for _ in range(3):
        breaker.call(ok)
        assert breaker.state is CLOSED
    breaker.call(slow)
    breaker.call(slow)
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"max_failures": 0}, ValueError, "max_failures must be >= 1, got 0"),
        ({"max_failures": -5}, ValueError, "max_failures must be >= 1, got -5"),
        ({"max_failures": 2.9}, TypeError, "max_failures must be an int, got 2.9"),
        ({"max_failures": True}, TypeError, "max_failures must be an int"),
        ({"reset_timeout": 0}, ValueError, "reset_timeout must be > 0, got 0"),
        ({"reset_timeout": float("nan")}, ValueError, "reset_timeout must be a number, got nan"),
        ({"reset_timeout": float("inf")}, ValueError, "reset_timeout must be finite"),
        ({"reset_timeout": "30"}, TypeError, "reset_timeout must be a number, got '30'"),
        ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls must be >= 1"),
        ({"success_threshold": 0}, ValueError, "success_threshold must be >= 1"),
        ({"stale_attempt_timeout": -1}, ValueError, "stale_attempt_timeout must be > 0"),
        ({"failure_rate_threshold": 1.5}, ValueError, "failure_rate_threshold must be a fraction"),
        ({"failure_rate_threshold": 0}, ValueError, "failure_rate_threshold must be > 0"),
        ({"window_size": 0}, ValueError, "window_size must be >= 1"),
        ({"slow_call_duration": 1.0}, ValueError, "must be given together"),
        ({"excluded_exceptions": (int,)}, TypeError, "excluded_exceptions must be a tuple"),
    ],
)
def test_bad_settings_name_the_parameter(
    options: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    """Every invalid setting raises, naming the parameter and the value; nothing is clamped."""
    with pytest.raises(error, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        CircuitBreaker(**options)


def test_sub_second_reset_timeout_is_honoured(clock: FakeClock) -> None:
    """reset_timeout=0.1 means 0.1 s (the reference rounds it up to a second)."""
    breaker = CircuitBreaker(max_failures=1, reset_timeout=0.1, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(0.1)
    assert breaker.call(ok) == "ok"


def test_threads_in_half_open_admit_exactly_one_probe() -> None:
    """32 threads racing a half-open breaker: exactly one runs, 31 are rejected."""
    clock = FakeClock()
    breaker = CircuitBreaker(max_failures=1, reset_timeout=1, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(1)
    release = threading.Event()
    barrier = threading.Barrier(32)
    admitted: list[int] = []
    rejected: list[int] = []

    def probe() -> None:
        release.wait()
        admitted.append(1)

    def worker() -> None:
        barrier.wait()
        try:
            breaker.call(probe)
        except CircuitOpenError:
            rejected.append(1)
            if len(rejected) == 31:
                release.set()

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert (len(admitted), len(rejected)) == (1, 31)
    assert breaker.state is CLOSED


def test_closed_counts_are_exact_under_threads() -> None:
    """8 threads x 2,000 calls are all counted, none lost."""
    breaker = CircuitBreaker(max_failures=10**9)

    def worker() -> None:
        for i in range(2000):
            if i % 4 == 0:
                with contextlib.suppress(Boom):
                    breaker.call(fail)
            else:
                breaker.call(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = breaker.stats
    assert (stats.total_calls, stats.successful_calls, stats.failed_calls) == (16000, 12000, 4000)


# -- async ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_acall_passes_arguments_and_counts(clock: FakeClock) -> None:
    """acall awaits fn(*args, **kwargs) and records the success."""

    async def add(a: int, *, b: int) -> int:
        return a + b

    breaker = CircuitBreaker(clock=clock)
    assert await breaker.acall(add, 1, b=2) == 3
    assert breaker.stats.successful_calls == 1


@pytest.mark.anyio
async def test_acall_trips_and_rejects(clock: FakeClock) -> None:
    """Async failures trip the breaker exactly like sync ones."""
    breaker = CircuitBreaker(max_failures=2, reset_timeout=5, clock=clock)
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.acall(afail)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.acall(aok)
    assert info.value.retry_after == 5.0


@pytest.mark.anyio
async def test_acall_with_a_sync_function_is_a_type_error(clock: FakeClock) -> None:
    """acall(sync_fn) raises TypeError and records no success or failure."""
    breaker = CircuitBreaker(clock=clock)
    with pytest.raises(TypeError, match="call"):
        await breaker.acall(ok)  # type: ignore[arg-type]
    assert breaker.stats == CircuitStats(0, 0, 0, 0, 0, 1, CLOSED, 0)


@pytest.mark.anyio
async def test_cancellation_is_neutral(clock: FakeClock) -> None:
    """A cancelled acall counts as neither success nor failure, even at max_failures=1."""
    breaker = CircuitBreaker(max_failures=1, clock=clock)

    async def hang() -> None:
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(breaker.acall, hang)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert breaker.state is CLOSED
    assert breaker.stats.neutral_calls == 1


@pytest.mark.anyio
async def test_cancelled_probe_frees_its_slot(clock: FakeClock) -> None:
    """A probe cancelled mid-call gives its half-open slot back at once."""
    breaker = tripped(clock)
    clock.advance(10)

    async def hang() -> None:
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(breaker.acall, hang)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(CircuitOpenError):
            await breaker.acall(aok)
        tg.cancel_scope.cancel()
    assert await breaker.acall(aok) == "ok"
    assert breaker.state is CLOSED


@pytest.mark.anyio
async def test_half_open_with_100_concurrent_callers_admits_exactly_the_limit(
    clock: FakeClock,
) -> None:
    """100 concurrent acalls on a half-open breaker with 3 probe slots: 3 run, 97 rejected."""
    breaker = tripped(clock, half_open_max_calls=3, success_threshold=3)
    clock.advance(10)
    gate = anyio.Event()
    ran: list[int] = []
    rejected: list[int] = []

    async def probe() -> None:
        ran.append(1)
        await gate.wait()

    async def caller() -> None:
        try:
            await breaker.acall(probe)
        except CircuitOpenError:
            rejected.append(1)

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        assert (len(ran), len(rejected)) == (3, 97)
        gate.set()
    assert breaker.state is CLOSED


@pytest.mark.anyio
async def test_async_with_block_reports_the_outcome(clock: FakeClock) -> None:
    """`async with breaker:` records failures and successes of the block."""
    breaker = CircuitBreaker(max_failures=1, clock=clock)
    async with breaker:
        await anyio.lowlevel.checkpoint()
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    assert breaker.state is OPEN


@pytest.mark.anyio
async def test_concurrent_async_with_blocks_keep_their_own_tickets(clock: FakeClock) -> None:
    """Two tasks inside `async with breaker:` at once each settle their own permit."""
    breaker = CircuitBreaker(max_failures=1, reset_timeout=1, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(1)
    order: list[str] = []

    async def probe(gate: anyio.Event) -> None:
        async with breaker:
            order.append("probe in")
            await gate.wait()

    gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe, gate)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(CircuitOpenError):
            async with breaker:
                order.append("second in")
        gate.set()
    assert order == ["probe in"]
    assert breaker.state is CLOSED


@pytest.mark.anyio
async def test_async_decorator_keeps_the_coroutine_function(clock: FakeClock) -> None:
    """@circuit_breaker on an async function gives an async wrapper that trips."""

    @circuit_breaker(max_failures=1, clock=clock)
    async def flaky() -> None:
        raise Boom

    with pytest.raises(Boom):
        await flaky()
    with pytest.raises(CircuitOpenError):
        await flaky()


@pytest.mark.anyio
async def test_decorating_an_object_with_async_call_gives_an_async_wrapper(
    clock: FakeClock,
) -> None:
    """An instance with an async __call__ is wrapped on the async path, not the sync one."""

    class Handler:
        async def __call__(self, x: int) -> int:
            return x * 2

    breaker = CircuitBreaker(clock=clock)
    wrapped: Callable[[int], Any] = breaker(Handler())
    assert await wrapped(21) == 42
    assert breaker.stats.successful_calls == 1


@pytest.mark.anyio
async def test_sync_and_async_share_one_state(clock: FakeClock) -> None:
    """A failure through call() and one through acall() add up on the same breaker."""
    breaker = CircuitBreaker(max_failures=2, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(Boom):
        await breaker.acall(afail)
    assert breaker.state is OPEN
