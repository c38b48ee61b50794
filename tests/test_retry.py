"""Retry: exact backoff sequences, deadline, hints, budget, cancellation, both drivers."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from seawall import CircuitOpenError, RateLimitExceededError
from seawall._core.retry import Backoff, BudgetWindow, next_wait
from seawall._retry import Retry, RetryBudget, retry
from seawall._retry import testing_mode as retry_testing_mode
from seawall.testing import FakeClock


def draws(*values: float) -> Callable[[], float]:
    """A random source that returns ``values`` in order."""
    it = iter(values)
    return lambda: next(it)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns "ok"; records call times."""

    def __init__(self, clock: FakeClock, failures: int, error: Exception | None = None) -> None:
        self.clock = clock
        self.failures = failures
        self.error = error or ConnectionError("boom")
        self.times: list[float] = []

    def __call__(self) -> str:
        self.times.append(self.clock.monotonic())
        if len(self.times) <= self.failures:
            raise self.error
        return "ok"

    async def acall(self) -> str:
        return self()


def test_exact_sleep_sequence_with_full_jitter(clock: FakeClock) -> None:
    """Waits are ceiling * draw with ceilings 1, 2, then capped at 3."""
    policy = Retry(
        attempts=4, initial=1, multiplier=2, maximum=3, clock=clock, random=draws(0.5, 0.25, 0.5)
    )
    fn = Flaky(clock, failures=3)
    assert policy.call(fn) == "ok"
    assert fn.times == [0.0, 0.5, 1.0, 2.5]


def test_jitter_off_waits_the_ceiling(clock: FakeClock) -> None:
    """Without jitter every wait is the full ceiling."""
    policy = Retry(attempts=4, initial=1, multiplier=3, maximum=5, jitter=False, clock=clock)
    fn = Flaky(clock, failures=3)
    assert policy.call(fn) == "ok"
    assert fn.times == [0.0, 1.0, 4.0, 9.0]


def test_exhaustion_reraises_the_last_exception_unchanged(clock: FakeClock) -> None:
    """When attempts run out the very exception of the last attempt propagates."""
    error = ConnectionError("down")
    fn = Flaky(clock, failures=99, error=error)
    with pytest.raises(ConnectionError) as caught:
        Retry(attempts=3, clock=clock).call(fn)
    assert caught.value is error
    assert len(fn.times) == 3


def test_result_retry_returns_last_result(clock: FakeClock) -> None:
    """Retrying on results returns the last result when attempts run out."""
    results = iter([503, 503, 502])
    policy = Retry(attempts=3, retry_on_result=lambda r: r >= 500, clock=clock)
    assert policy.call(lambda: next(results)) == 502


def test_deadline_stops_before_a_wait_that_reaches_it(clock: FakeClock) -> None:
    """A wait ending at or after the deadline ends the call at once."""
    policy = Retry(
        attempts=10, initial=1, multiplier=2, maximum=100, jitter=False, deadline=6, clock=clock
    )
    fn = Flaky(clock, failures=99)
    with pytest.raises(ConnectionError):
        policy.call(fn)
    # Waits 1 and 2 fit (attempts at 0, 1, 3); the next wait of 4 would end at 7 >= 6.
    assert fn.times == [0.0, 1.0, 3.0]
    assert clock.monotonic() == 3.0


def test_circuit_open_is_never_retried(clock: FakeClock) -> None:
    """CircuitOpenError propagates after one attempt even though retry_on matches it."""
    fn = Flaky(clock, failures=99, error=CircuitOpenError("open", retry_after=0.0))
    with pytest.raises(CircuitOpenError):
        Retry(attempts=5, clock=clock).call(fn)
    assert len(fn.times) == 1


def test_non_matching_exception_is_not_retried(clock: FakeClock) -> None:
    """An exception outside retry_on propagates after one attempt."""
    fn = Flaky(clock, failures=99, error=KeyError("k"))
    with pytest.raises(KeyError):
        Retry(attempts=5, retry_on=(ConnectionError, TimeoutError), clock=clock).call(fn)
    assert len(fn.times) == 1


def test_predicate_retry_on(clock: FakeClock) -> None:
    """A predicate decides which exceptions are retried."""
    fn = Flaky(clock, failures=2, error=ValueError("transient"))
    policy = Retry(attempts=3, retry_on=lambda e: "transient" in str(e), clock=clock)
    assert policy.call(fn) == "ok"
    assert len(fn.times) == 3


def test_retry_after_hint_replaces_a_shorter_backoff(clock: FakeClock) -> None:
    """An exception's retry_after is waited when longer than the backoff."""
    fn = Flaky(clock, failures=1, error=RateLimitExceededError(retry_after=2.5))
    assert Retry(attempts=2, initial=0.1, clock=clock, random=draws(1.0)).call(fn) == "ok"
    assert fn.times == [0.0, 2.5]


def test_retry_after_hint_is_capped(clock: FakeClock) -> None:
    """A hint above max_retry_after waits max_retry_after."""
    fn = Flaky(clock, failures=1, error=RateLimitExceededError(retry_after=9_999_999_999))
    policy = Retry(attempts=2, max_retry_after=30, clock=clock, random=draws(0.0))
    assert policy.call(fn) == "ok"
    assert fn.times == [0.0, 30.0]


def test_hint_beyond_deadline_stops_at_once(clock: FakeClock) -> None:
    """A hinted wait longer than the remaining deadline ends the call without sleeping."""
    fn = Flaky(clock, failures=99, error=RateLimitExceededError(retry_after=20))
    with pytest.raises(RateLimitExceededError):
        Retry(attempts=5, deadline=10, clock=clock, random=draws(0.0)).call(fn)
    assert fn.times == [0.0]
    assert clock.monotonic() == 0.0


def test_delay_hint_reads_results(clock: FakeClock) -> None:
    """A delay_hint function supplies the wait for a rejected result."""
    results = iter([("busy", 4.0), ("done", None)])
    policy = Retry(
        attempts=2,
        retry_on_result=lambda r: r[0] == "busy",
        delay_hint=lambda r: r[1] if isinstance(r, tuple) else None,
        clock=clock,
        random=draws(0.0),
    )
    assert policy.call(lambda: next(results)) == ("done", None)
    assert clock.monotonic() == 4.0


def test_budget_stops_a_retry_storm(clock: FakeClock) -> None:
    """Ten failing calls with a 20% budget and no minimum make exactly 12 attempts."""
    budget = RetryBudget(ratio=0.2, minimum_per_second=0, clock=clock)
    policy = Retry(attempts=3, budget=budget, wait=False, clock=clock)
    fn = Flaky(clock, failures=10_000)
    for _ in range(10):
        with pytest.raises(ConnectionError):
            policy.call(fn)
    assert len(fn.times) == 12
    assert budget.counts == (10, 2)


def test_budget_minimum_allows_retries_when_quiet(clock: FakeClock) -> None:
    """minimum_per_second * window retries are allowed even with few calls."""
    budget = RetryBudget(ratio=0.0, minimum_per_second=0.2, window=10, clock=clock)
    fn = Flaky(clock, failures=10_000)
    with pytest.raises(ConnectionError):
        Retry(attempts=5, budget=budget, wait=False, clock=clock).call(fn)
    assert len(fn.times) == 3


def test_budget_window_forgets_old_counts() -> None:
    """Calls and retries older than the window no longer count."""
    window = BudgetWindow(ratio=1.0, minimum_per_second=0, window=10)
    window.record_call(0.5)
    assert window.try_retry(0.7) is True
    assert window.try_retry(0.9) is False
    assert window.counts(10.9) == (0, 0)
    assert window.try_retry(11.0) is False


def test_wait_false_skips_sleeping(clock: FakeClock) -> None:
    """wait=False retries without the clock moving."""
    fn = Flaky(clock, failures=2)
    assert Retry(attempts=3, wait=False, clock=clock).call(fn) == "ok"
    assert fn.times == [0.0, 0.0, 0.0]


def test_testing_mode_skips_sleeping(clock: FakeClock) -> None:
    """Inside testing_mode() no Retry waits; outside it they wait again."""
    with retry_testing_mode():
        fn = Flaky(clock, failures=2)
        assert Retry(attempts=3, jitter=False, clock=clock).call(fn) == "ok"
    assert clock.monotonic() == 0.0
    Retry(attempts=3, jitter=False, clock=clock).call(Flaky(clock, failures=1))
    assert clock.monotonic() == 0.1


def test_decorator_on_sync_function(clock: FakeClock) -> None:
    """@retry(...) wraps a sync function and keeps its name."""
    fn = Flaky(clock, failures=1)

    @retry(attempts=2, wait=False, clock=clock)
    def fetch() -> str:
        """Doc."""
        return fn()

    assert fetch() == "ok"
    assert fetch.__name__ == "fetch"


def test_call_refuses_an_async_function(clock: FakeClock) -> None:
    """call() with a coroutine function raises TypeError instead of returning a coroutine."""

    async def fetch() -> str:
        return "x"

    with pytest.raises(TypeError, match="acall"):
        Retry(clock=clock).call(fetch)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"attempts": 0}, ValueError),
        ({"attempts": 1.5}, TypeError),
        ({"initial": -1}, ValueError),
        ({"initial": 2, "maximum": 1}, ValueError),
        ({"multiplier": 0.5}, ValueError),
        ({"deadline": 0}, ValueError),
        ({"max_retry_after": float("nan")}, ValueError),
        ({"retry_on": "ConnectionError"}, TypeError),
        ({"retry_on": (int,)}, TypeError),
        ({"budget": object()}, TypeError),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Invalid settings raise ValueError or TypeError naming the parameter."""
    with pytest.raises(error, match=next(iter(kwargs))):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_backoff_ceiling_survives_overflow() -> None:
    """A huge retry number gives the maximum instead of OverflowError."""
    assert Backoff(0.1, 30.0, 2.0, True).ceiling(100_000) == 30.0


def test_next_wait_stops_at_the_attempt_cap() -> None:
    """No wait is offered once attempts_made reaches max_attempts."""
    backoff = Backoff(1.0, 10.0, 2.0, False)
    common = {"backoff": backoff, "draw": 0.5, "hint": None, "max_hint": 60.0, "now": 0.0}
    assert next_wait(attempts_made=2, max_attempts=3, deadline_at=None, **common) == 2.0
    assert next_wait(attempts_made=3, max_attempts=3, deadline_at=None, **common) is None


@pytest.mark.anyio
async def test_acall_exact_sleep_sequence(clock: FakeClock) -> None:
    """acall sleeps through the clock: one sleeper per wait, with the exact durations."""
    policy = Retry(attempts=3, initial=2, clock=clock, random=draws(0.5, 0.75))
    fn = Flaky(clock, failures=2)
    results: list[str] = []

    async def run() -> None:
        results.append(await policy.acall(fn.acall))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        for wait in (1.0, 3.0):
            await anyio.wait_all_tasks_blocked()
            assert clock.sleepers == 1
            clock.advance(wait)
    assert results == ["ok"]
    assert fn.times == [0.0, 1.0, 4.0]


@pytest.mark.anyio
async def test_cancellation_is_not_retried(clock: FakeClock) -> None:
    """Cancelling an attempt propagates at once: one attempt, no wait."""
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()

    policy = Retry(attempts=5, retry_on=BaseException, clock=clock)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(policy.acall, hang)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert calls == 1
    assert clock.sleepers == 0


@pytest.mark.anyio
async def test_async_decorator_and_async_exhaustion(clock: FakeClock) -> None:
    """@Retry on an async function re-raises the last exception after the attempts."""
    fn = Flaky(clock, failures=99)

    @Retry(attempts=3, wait=False, clock=clock)
    async def fetch() -> str:
        return fn()

    with pytest.raises(ConnectionError):
        await fetch()
    assert len(fn.times) == 3
