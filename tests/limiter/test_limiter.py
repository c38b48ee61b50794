"""RateLimiter and the rate_limiter decorator, driven by the fake clock."""

from __future__ import annotations

import math
import os
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from seawall import (
    RateLimitDecision,
    RateLimiter,
    RateLimiterStats,
    RateLimitExceededError,
    rate_limiter,
)
from seawall.testing import FakeClock

# -- capacity, refill, rates ------------------------------------------------------------------


def test_burst_is_capacity(clock: FakeClock) -> None:
    """burst=50 at 10/s gives exactly 50 immediate grants, and idling never raises it."""
    limiter = RateLimiter(rate=10, per=1.0, burst=50, clock=clock)
    assert sum(limiter.try_acquire() for _ in range(60)) == 50
    clock.advance(100)
    assert sum(limiter.try_acquire() for _ in range(60)) == 50


@pytest.mark.parametrize(("rate", "burst"), [(10, 10.0), (2.5, 2.5), (0.5, 1.0)])
def test_default_burst(rate: float, burst: float) -> None:
    """burst defaults to rate, or 1 below one token per period."""
    assert RateLimiter(rate).burst == burst


def test_rate_below_one_per_period(clock: FakeClock) -> None:
    """At 0.5/s a token comes every 2 s."""
    limiter = RateLimiter(rate=0.5, clock=clock)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]
    clock.advance(1.5)
    assert limiter.try_acquire() is False
    clock.advance(0.5)
    assert limiter.try_acquire() is True
    assert limiter.acquire() is True
    assert clock.monotonic() == 4.0


def test_per_scales_the_period(clock: FakeClock) -> None:
    """rate=100, per=60 refills one token every 0.6 s."""
    limiter = RateLimiter(rate=100, per=60.0, clock=clock)
    for _ in range(100):
        limiter.try_acquire()
    assert limiter.consume().retry_after == pytest.approx(0.6)


# -- acquire: blocking, non-blocking, timeout -------------------------------------------------


def test_blocking_acquire_sleeps_exactly_once(clock: FakeClock) -> None:
    """A blocking acquire on an empty bucket sleeps exactly the missing time."""
    limiter = RateLimiter(rate=1, clock=clock)
    assert limiter.acquire() is True
    assert limiter.acquire() is True
    assert clock.monotonic() == 1.0
    assert limiter.stats == RateLimiterStats(2, 0, 1.0, 1)


def test_multi_token_acquire(clock: FakeClock) -> None:
    """acquire(3) on an empty bucket at 1/s waits exactly 3 s."""
    limiter = RateLimiter(rate=1, burst=5, clock=clock)
    assert limiter.acquire(5) is True
    assert limiter.acquire(3) is True
    assert clock.monotonic() == 3.0


def test_timeout_shorter_than_wait_fails_at_once(clock: FakeClock) -> None:
    """A wait longer than the timeout raises at once with the exact retry_after, no sleep."""
    limiter = RateLimiter(rate=2, burst=1, clock=clock)
    limiter.acquire()
    with pytest.raises(RateLimitExceededError) as info:
        limiter.acquire(timeout=0.25)
    assert info.value.retry_after == 0.5
    assert clock.monotonic() == 0.0
    assert limiter.stats.total_rejected == 1
    assert limiter.tokens == 0.0


def test_timeout_long_enough_waits(clock: FakeClock) -> None:
    """A wait within the timeout is served."""
    limiter = RateLimiter(rate=2, burst=1, clock=clock)
    limiter.acquire()
    assert limiter.acquire(timeout=0.5) is True
    assert clock.monotonic() == 0.5


@pytest.mark.parametrize("kwargs", [{"blocking": False}, {"timeout": 0}])
def test_non_blocking_returns_false(clock: FakeClock, kwargs: dict[str, Any]) -> None:
    """blocking=False and timeout=0 return False on an empty bucket, never raise."""
    limiter = RateLimiter(rate=1, clock=clock)
    assert limiter.acquire(**kwargs) is True
    assert limiter.acquire(**kwargs) is False
    assert limiter.stats.total_rejected == 1


def test_blocking_false_with_timeout_is_an_error() -> None:
    """blocking=False with a timeout is contradictory, so it raises."""
    with pytest.raises(ValueError, match="timeout"):
        RateLimiter(1).acquire(blocking=False, timeout=1.0)


def test_keyboard_interrupt_returns_reservation(clock: FakeClock) -> None:
    """A sync waiter interrupted in its sleep gives its token back."""

    class InterruptedClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    clock = InterruptedClock()
    limiter = RateLimiter(rate=1, clock=clock)
    limiter.acquire()
    with pytest.raises(KeyboardInterrupt):
        limiter.acquire()
    assert limiter.tokens == 0.0
    assert limiter.stats.total_acquired == 1


# -- consume, tokens, stats, reset, repr ------------------------------------------------------


def test_consume_describes_the_decision(clock: FakeClock) -> None:
    """consume() returns limit, remaining, reset_after and retry_after exactly."""
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert limiter.consume() == RateLimitDecision(True, 3.0, 2, 0.5, 0.0)
    assert limiter.consume(2) == RateLimitDecision(True, 3.0, 0, 1.5, 0.0)
    assert limiter.consume() == RateLimitDecision(False, 3.0, 0, 1.5, 0.5)


def test_reset_refills_and_keeps_stats(clock: FakeClock) -> None:
    """reset() refills the bucket and leaves the counters alone."""
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    limiter.try_acquire(2)
    limiter.try_acquire()
    limiter.reset()
    assert limiter.tokens == 2.0
    assert limiter.stats == RateLimiterStats(1, 1, 0.0, 0)


def test_repr() -> None:
    """The repr shows rate, per, burst and name."""
    assert repr(RateLimiter(10, name="api")) == (
        "RateLimiter(rate=10.0, per=1.0, burst=10.0, name='api')"
    )


def test_context_manager_takes_one_token(clock: FakeClock) -> None:
    """`with limiter:` takes one token, waiting if needed."""
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    with limiter:
        pass
    assert limiter.tokens == 1.0


@pytest.mark.anyio
async def test_async_context_manager_takes_one_token(clock: FakeClock) -> None:
    """`async with limiter:` takes one token."""
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    async with limiter:
        pass
    assert limiter.tokens == 1.0


# -- set_retry_after ----------------------------------------------------------------------------


def test_retry_after_blocks_then_resumes_one_at_a_time(clock: FakeClock) -> None:
    """A block refuses all until it ends, then tokens come at the steady rate, not all at once."""
    limiter = RateLimiter(rate=10, clock=clock)
    limiter.set_retry_after(5.0)
    assert limiter.try_acquire() is False
    clock.advance(4.99)
    assert limiter.try_acquire() is False
    clock.advance(0.01)
    assert [limiter.try_acquire() for _ in range(3)] == [True, False, False]
    clock.advance(0.1)
    assert [limiter.try_acquire() for _ in range(3)] == [True, False, False]


def test_retry_after_extends_only(clock: FakeClock) -> None:
    """A shorter Retry-After does not shorten the current block."""
    limiter = RateLimiter(rate=1, clock=clock)
    limiter.set_retry_after(5.0)
    limiter.set_retry_after(2.0)
    assert limiter.consume().retry_after == 5.0


def test_retry_after_is_capped(clock: FakeClock) -> None:
    """No block lasts longer than max_retry_after, even for infinity."""
    limiter = RateLimiter(rate=1, max_retry_after=60.0, clock=clock)
    limiter.set_retry_after(3600.0)
    assert limiter.consume().retry_after == 60.0
    limiter.set_retry_after(math.inf)
    assert limiter.consume().retry_after == 60.0


def test_retry_after_datetime(clock: FakeClock) -> None:
    """An aware datetime blocks until then, measured on the clock's wall time."""
    limiter = RateLimiter(rate=1, clock=clock)
    until = datetime.fromtimestamp(clock.time() + 10.0, tz=UTC)
    limiter.set_retry_after(until)
    clock.jump_wall(-3600.0)  # a wall step later changes nothing: the block is monotonic
    assert limiter.consume().retry_after == 10.0


def test_retry_after_past_datetime_is_a_no_op(clock: FakeClock) -> None:
    """A datetime in the past does not block."""
    limiter = RateLimiter(rate=1, clock=clock)
    limiter.set_retry_after(datetime.fromtimestamp(clock.time() - 10.0, tz=UTC))
    assert limiter.try_acquire() is True


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (datetime(2030, 1, 1), TypeError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_retry_after_bad_input(value: object, error: type[Exception]) -> None:
    """Naive datetimes, negative or NaN seconds and wrong types raise, naming retry_after."""
    with pytest.raises(error, match="retry_after"):
        RateLimiter(1).set_retry_after(value)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_waiter_sleeping_through_a_block_queues_behind_it(clock: FakeClock) -> None:
    """A waiter whose slot falls inside a later block waits for the block to end."""
    limiter = RateLimiter(rate=1, clock=clock)
    limiter.acquire()
    granted: list[float] = []

    async def waiter() -> None:
        await limiter.acquire_async()
        granted.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        limiter.set_retry_after(10.0)
        for _ in range(20):
            await anyio.wait_all_tasks_blocked()
            clock.advance(0.5)
    assert granted == [10.5]


@pytest.mark.anyio
async def test_waiter_requeued_by_a_block_waits_for_its_end(clock: FakeClock) -> None:
    """A waiter whose slot fell inside a block is granted when the block ends, not before."""
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    limiter.acquire(2)
    granted: list[float] = []

    async def waiter() -> None:
        await limiter.acquire_async()
        granted.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        limiter.set_retry_after(0.75)
        for _ in range(3):
            await anyio.wait_all_tasks_blocked()
            clock.advance(0.25)
    assert granted == [1.25]
    assert limiter.stats == RateLimiterStats(2, 0, 1.25, 1)


# -- time going backwards -----------------------------------------------------------------------


class SteppingClock(FakeClock):
    """A fake clock whose monotonic reading a test can set, even backwards."""

    reading = 0.0

    def monotonic(self) -> float:
        return self.reading


def test_backward_clock_grants_nothing_extra() -> None:
    """A monotonic reading that goes back is treated as the latest one seen."""
    clock = SteppingClock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    clock.reading = 10.0
    assert limiter.try_acquire(2) is True
    clock.reading = 5.0
    assert limiter.try_acquire() is False
    assert limiter.tokens == 0.0
    clock.reading = 11.0
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]


# -- concurrency ----------------------------------------------------------------------------------


def test_fifteen_threads_on_burst_five_get_exactly_five(clock: FakeClock) -> None:
    """15 threads racing for a bucket of 5 with no refill: exactly 5 win, 10 time out."""
    limiter = RateLimiter(rate=5, per=3600.0, clock=clock)
    start = threading.Barrier(15)
    results: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            results.append("ok" if limiter.acquire(timeout=0.5) else "false")
        except RateLimitExceededError:
            results.append("refused")

    threads = [threading.Thread(target=worker) for _ in range(15)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 5 + ["refused"] * 10
    assert clock.monotonic() == 0.0


@pytest.mark.anyio
async def test_fifteen_tasks_on_burst_five_get_exactly_five(clock: FakeClock) -> None:
    """15 tasks racing for a bucket of 5 with no refill: exactly 5 win, 10 time out."""
    limiter = RateLimiter(rate=5, per=3600.0, clock=clock)
    results: list[str] = []

    async def worker() -> None:
        try:
            await limiter.acquire_async(timeout=0.5)
            results.append("ok")
        except RateLimitExceededError:
            results.append("refused")

    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(worker)
    assert sorted(results) == ["ok"] * 5 + ["refused"] * 10


@pytest.mark.anyio
async def test_twenty_waiters_are_served_fifo_at_exact_times(clock: FakeClock) -> None:
    """20 waiters at 1/s are granted in arrival order, one per second, starting now."""
    limiter = RateLimiter(rate=1, clock=clock)
    granted: list[tuple[int, float]] = []

    async def waiter(i: int) -> None:
        await limiter.acquire_async()
        granted.append((i, clock.monotonic()))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(waiter, i)
            await anyio.wait_all_tasks_blocked()
        for _ in range(19):
            clock.advance(1.0)
            await anyio.wait_all_tasks_blocked()
    assert granted == [(i, float(i)) for i in range(20)]
    assert limiter.stats == RateLimiterStats(20, 0, float(sum(range(20))), 19)


@pytest.mark.anyio
async def test_cancelled_waiter_returns_its_reservation(clock: FakeClock) -> None:
    """Cancelling the last waiter hands its slot to the next caller, at the earlier time."""
    limiter = RateLimiter(rate=1, clock=clock)
    limiter.acquire()
    granted: list[float] = []

    async def waiter() -> None:
        await limiter.acquire_async()
        granted.append(clock.monotonic())

    scope = anyio.CancelScope()

    async def doomed() -> None:
        with scope:
            await waiter()

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        assert limiter.tokens == -0.5
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert limiter.tokens == 0.5
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
    assert granted == [1.0]
    assert limiter.stats.total_acquired == 2


@pytest.mark.anyio
async def test_tasks_and_threads_never_exceed_burst_plus_rate(clock: FakeClock) -> None:
    """50 tasks and 8 threads together get exactly burst + rate*t by t, never more."""
    limiter = RateLimiter(rate=8, burst=5, clock=clock)
    tasks_granted = [0]
    threads_granted = [0] * 8  # one slot per thread: no lost updates
    stop = threading.Event()

    def spinner(i: int) -> None:
        while not stop.is_set():
            if limiter.try_acquire():
                threads_granted[i] += 1
            os.sched_yield()

    async def task() -> None:
        while True:
            await limiter.acquire_async()
            tasks_granted[0] += 1

    threads = [threading.Thread(target=spinner, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(task)
            for _ in range(80):
                await anyio.wait_all_tasks_blocked()
                assert tasks_granted[0] + sum(threads_granted) <= 5 + 8 * clock.monotonic()
                clock.advance(0.125)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert tasks_granted[0] + sum(threads_granted) == 5 + 8 * 10


# -- decorator ------------------------------------------------------------------------------------


def test_decorator_bare_sync(clock: FakeClock) -> None:
    """@rate_limiter works bare on a sync function, with the default 10/s limiter attached."""

    @rate_limiter
    def f(x: int) -> int:
        return x * 2

    assert f(3) == 6
    assert f.__name__ == "f"
    assert f._rate_limiter is f.limiter  # type: ignore[attr-defined]
    assert f.limiter.rate == 10.0  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_decorator_bare_async() -> None:
    """@rate_limiter works bare on an async function."""

    @rate_limiter
    async def f(x: int) -> int:
        return x * 2

    assert await f(3) == 6


def test_decorator_non_blocking_raises_without_running(clock: FakeClock) -> None:
    """blocking=False raises RateLimitExceededError naming the function and skips the call."""
    calls: list[int] = []

    @rate_limiter(rate=1, per=2.0, blocking=False, clock=clock)
    def fetch() -> None:
        calls.append(1)

    fetch()
    with pytest.raises(RateLimitExceededError, match=r"Rate limit exceeded for .*fetch") as info:
        fetch()
    assert info.value.retry_after == 2.0
    assert calls == [1]


def test_decorator_blocking_waits(clock: FakeClock) -> None:
    """The default blocking decorator waits for its token."""

    @rate_limiter(rate=2, clock=clock)
    def f() -> None:
        pass

    for _ in range(3):
        f()
    assert clock.monotonic() == 0.5


@pytest.mark.anyio
async def test_decorator_on_async_callable_object(clock: FakeClock) -> None:
    """An object with an async __call__ is wrapped as async, and limited."""

    class Fetch:
        async def __call__(self) -> str:
            return "ok"

    limited = rate_limiter(rate=1, blocking=False, clock=clock)(Fetch())
    assert await limited() == "ok"
    with pytest.raises(RateLimitExceededError):
        await limited()


@pytest.mark.anyio
async def test_decorator_async_timeout_raises(clock: FakeClock) -> None:
    """An async decorated function whose wait exceeds timeout raises without running."""

    @rate_limiter(rate=1, timeout=0.5, clock=clock)
    async def f() -> int:
        return 1

    assert await f() == 1
    with pytest.raises(RateLimitExceededError) as info:
        await f()
    assert info.value.retry_after == 1.0


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"rate": 0}, ValueError, "rate"),
        ({"rate": -1}, ValueError, "rate"),
        ({"rate": math.nan}, ValueError, "rate"),
        ({"rate": math.inf}, ValueError, "rate"),
        ({"rate": True}, TypeError, "rate"),
        ({"rate": "10"}, TypeError, "rate"),
        ({"rate": 1, "per": 0}, ValueError, "per"),
        ({"rate": 1, "per": math.nan}, ValueError, "per"),
        ({"rate": 1, "per": -1}, ValueError, "per"),
        ({"rate": 1, "burst": 0.5}, ValueError, "burst"),
        ({"rate": 1, "burst": -3}, ValueError, "burst"),
        ({"rate": 1, "burst": math.inf}, ValueError, "burst"),
        ({"rate": 1, "burst": "5"}, TypeError, "burst"),
        ({"rate": 1, "name": 5}, TypeError, "name"),
        ({"rate": 1, "max_retry_after": 0}, ValueError, "max_retry_after"),
    ],
)
def test_bad_constructor_input(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    """Bad constructor arguments raise, naming the parameter."""
    with pytest.raises(error, match=name):
        RateLimiter(**kwargs)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda lim: lim.try_acquire(0), ValueError, "tokens"),
        (lambda lim: lim.try_acquire(6), ValueError, "tokens"),
        (lambda lim: lim.try_acquire(1.0), TypeError, "tokens"),
        (lambda lim: lim.try_acquire(True), TypeError, "tokens"),
        (lambda lim: lim.acquire(6), ValueError, "tokens"),
        (lambda lim: lim.consume(-1), ValueError, "tokens"),
        (lambda lim: lim.acquire(timeout=-1), ValueError, "timeout"),
        (lambda lim: lim.acquire(timeout=math.nan), ValueError, "timeout"),
        (lambda lim: lim.acquire(timeout=math.inf), ValueError, "timeout"),
        (lambda lim: lim.acquire(timeout="1"), TypeError, "timeout"),
        (lambda lim: lim.acquire(blocking=None), TypeError, "blocking"),
    ],
)
def test_bad_call_input(call: Any, error: type[Exception], name: str) -> None:
    """Bad tokens, timeout or blocking raise, naming the parameter."""
    with pytest.raises(error, match=name):
        call(RateLimiter(5))


@pytest.mark.anyio
async def test_bad_async_input() -> None:
    """acquire_async validates tokens and timeout like acquire."""
    limiter = RateLimiter(5)
    with pytest.raises(ValueError, match="tokens"):
        await limiter.acquire_async(6)
    with pytest.raises(ValueError, match="timeout"):
        await limiter.acquire_async(timeout=-0.1)


def test_decorator_bad_input() -> None:
    """The decorator validates its options when applied."""
    with pytest.raises(ValueError, match="timeout"):
        rate_limiter(blocking=False, timeout=1.0)
    with pytest.raises(ValueError, match="rate"):
        rate_limiter(rate=0)(lambda: None)


def test_stats_are_frozen_snapshots(clock: FakeClock) -> None:
    """stats is a frozen snapshot that later calls do not change."""
    limiter = RateLimiter(rate=1, clock=clock)
    before = limiter.stats
    limiter.try_acquire()
    assert before.total_acquired == 0
    with pytest.raises(AttributeError):
        before.total_acquired = 5  # type: ignore[misc]


def test_wait_seconds_accumulate(clock: FakeClock) -> None:
    """total_waited sums the seconds waited; total_waits counts the grants that waited."""
    limiter = RateLimiter(rate=4, burst=1, clock=clock)
    for _ in range(4):
        limiter.acquire()
    assert limiter.stats == RateLimiterStats(4, 0, 0.75, 3)


def test_unused_timedelta_import_guard() -> None:
    """A datetime with a non-UTC offset is converted correctly."""
    clock = FakeClock()
    limiter = RateLimiter(rate=1, clock=clock)
    tz = timezone(timedelta(hours=5))
    limiter.set_retry_after(datetime.fromtimestamp(clock.time() + 4.0, tz=tz))
    assert limiter.consume().retry_after == 4.0
