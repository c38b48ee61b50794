"""Pipeline: gate order, one deadline for every wait, every permit and slot settled once."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from seawall import (
    BulkheadFullError,
    CircuitOpenError,
    RateLimitExceededError,
    TimeoutExceededError,
)
from seawall._breaker.breaker import CircuitBreaker, CircuitState
from seawall._bulkhead.bulkhead import Bulkhead
from seawall._limiter.limiter import RateLimiter
from seawall._pipeline import Pipeline
from seawall._retry import Retry
from seawall.testing import FakeClock


def gates(clock: FakeClock, **breaker: object) -> tuple[RateLimiter, Bulkhead, CircuitBreaker]:
    """A roomy limiter and bulkhead and a breaker configured by ``breaker``."""
    options: dict[str, object] = {"max_failures": 5, "reset_timeout": 10.0, **breaker}
    return (
        RateLimiter(100, 1.0, clock=clock),
        Bulkhead(2, clock=clock),
        CircuitBreaker(clock=clock, **options),  # type: ignore[arg-type]
    )


def test_success_passes_every_gate_and_settles(clock: FakeClock) -> None:
    """A successful call spends one token, frees its slot and records one success."""
    limiter, bulkhead, breaker = gates(clock)
    pipeline = Pipeline(limiter=limiter, bulkhead=bulkhead, breaker=breaker)
    assert pipeline.call(lambda x: x + 1, 41) == 42
    assert limiter.tokens == 99
    assert bulkhead.stats.in_flight == 0
    assert breaker.stats.successful_calls == 1


def test_breaker_rejection_releases_the_bulkhead_slot(clock: FakeClock) -> None:
    """An open breaker refuses last: the slot comes back, the token stays spent."""
    limiter, bulkhead, breaker = gates(clock)
    breaker.force_open()
    calls: list[int] = []
    with pytest.raises(CircuitOpenError):
        Pipeline(limiter=limiter, bulkhead=bulkhead, breaker=breaker).call(calls.append, 1)
    assert calls == []
    assert bulkhead.stats.in_flight == 0
    assert bulkhead.stats.total_admitted == 1
    assert limiter.tokens == 99


def test_failure_is_counted_and_slot_released(clock: FakeClock) -> None:
    """An exception is a breaker failure and the slot is released."""
    limiter, bulkhead, breaker = gates(clock)

    def fail() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        Pipeline(limiter=limiter, bulkhead=bulkhead, breaker=breaker).call(fail)
    assert breaker.stats.failed_calls == 1
    assert bulkhead.stats.in_flight == 0


def test_excluded_exception_is_neutral(clock: FakeClock) -> None:
    """An excluded exception settles the permit as neutral."""
    _, _, breaker = gates(clock, excluded_exceptions=(KeyError,))

    def fail() -> None:
        raise KeyError

    with pytest.raises(KeyError):
        Pipeline(breaker=breaker).call(fail)
    assert (breaker.stats.failed_calls, breaker.stats.neutral_calls) == (0, 1)


def test_retry_runs_each_attempt_through_the_gates(clock: FakeClock) -> None:
    """Two failures then a success: three tokens, two failures, one success."""
    limiter, bulkhead, breaker = gates(clock)
    outcomes = iter([ConnectionError(), ConnectionError(), None])

    def flaky() -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return "ok"

    retry = Retry(attempts=3, wait=False, clock=clock)
    pipeline = Pipeline(retry=retry, limiter=limiter, bulkhead=bulkhead, breaker=breaker)
    assert pipeline.call(flaky) == "ok"
    assert limiter.tokens == 97
    assert (breaker.stats.failed_calls, breaker.stats.successful_calls) == (2, 1)
    assert bulkhead.stats.in_flight == 0


def test_retry_stops_when_the_breaker_opens(clock: FakeClock) -> None:
    """Once the breaker opens mid-retry, CircuitOpenError ends the call without more attempts."""
    _, _, breaker = gates(clock, max_failures=2)
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise ConnectionError

    pipeline = Pipeline(retry=Retry(attempts=5, wait=False, clock=clock), breaker=breaker)
    with pytest.raises(CircuitOpenError):
        pipeline.call(fail)
    assert len(calls) == 2
    assert breaker.state is CircuitState.OPEN


def test_limiter_wait_is_bounded_by_the_deadline(clock: FakeClock) -> None:
    """A token 10 s away with 5 s of deadline left fails at once without sleeping."""
    limiter = RateLimiter(1, 10.0, clock=clock)
    assert limiter.try_acquire()
    pipeline = Pipeline(retry=Retry(attempts=3, deadline=5, clock=clock), limiter=limiter)
    calls: list[int] = []
    with pytest.raises(RateLimitExceededError):
        pipeline.call(calls.append, 1)
    assert calls == []
    assert clock.monotonic() == 0.0


def test_failure_result_counts_and_discarded_results_are_handed_over(clock: FakeClock) -> None:
    """failure_result marks results as breaker failures; on_discard gets retried results."""
    _, _, breaker = gates(clock)
    results = iter([503, 503, 200])
    discarded: list[int] = []
    pipeline = Pipeline(
        retry=Retry(attempts=3, retry_on_result=lambda r: r >= 500, wait=False, clock=clock),
        breaker=breaker,
        failure_result=lambda r: r >= 500,
        on_discard=discarded.append,
    )
    assert pipeline.call(lambda: next(results)) == 200
    assert discarded == [503, 503]
    assert (breaker.stats.failed_calls, breaker.stats.successful_calls) == (2, 1)


def test_sync_context_manager_is_one_attempt(clock: FakeClock) -> None:
    """with pipeline: takes the gates for the body and settles by its outcome."""
    limiter, bulkhead, breaker = gates(clock)
    pipeline = Pipeline(limiter=limiter, bulkhead=bulkhead, breaker=breaker)
    with pipeline:
        assert bulkhead.stats.in_flight == 1
    with pytest.raises(ValueError), pipeline:
        raise ValueError
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 1)
    assert bulkhead.stats.in_flight == 0


def test_sync_decorator(clock: FakeClock) -> None:
    """@Pipeline(...) wraps a sync function."""
    _, _, breaker = gates(clock)

    @Pipeline(breaker=breaker)
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    assert breaker.stats.successful_calls == 1


def test_sync_attempt_timeout_keeps_slot_until_worker_ends(clock: FakeClock) -> None:
    """An abandoned sync attempt is a failure at once; its slot returns when it really ends."""
    _, bulkhead, breaker = gates(clock)
    release = threading.Event()

    def advance() -> None:
        clock.wait_for_sleepers(1)
        clock.advance(1)

    helper = threading.Thread(target=advance)
    helper.start()
    pipeline = Pipeline(bulkhead=bulkhead, breaker=breaker, attempt_timeout=1, clock=clock)
    with pytest.raises(TimeoutExceededError):
        pipeline.call(release.wait, 10)
    helper.join()
    assert breaker.stats.failed_calls == 1
    assert bulkhead.stats.in_flight == 1
    release.set()
    for _ in range(1000):  # the worker thread frees the slot right after it returns
        if bulkhead.stats.in_flight == 0:
            break
        time.sleep(0.01)
    assert bulkhead.stats.in_flight == 0


def test_bad_arguments(clock: FakeClock) -> None:
    """Wrong types and values name the parameter."""
    with pytest.raises(TypeError, match="retry"):
        Pipeline(retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempt_timeout"):
        Pipeline(attempt_timeout=-1)


@pytest.mark.anyio
async def test_async_success_and_failure(clock: FakeClock) -> None:
    """acall settles success and failure and frees the slot each time."""
    limiter, bulkhead, breaker = gates(clock)
    pipeline = Pipeline(limiter=limiter, bulkhead=bulkhead, breaker=breaker)

    async def echo(x: int) -> int:
        return x

    async def fail() -> None:
        raise ConnectionError

    assert await pipeline.acall(echo, 5) == 5
    with pytest.raises(ConnectionError):
        await pipeline.acall(fail)
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 1)
    assert bulkhead.stats.in_flight == 0
    assert limiter.tokens == 98


@pytest.mark.anyio
async def test_bulkhead_queue_is_bounded_by_the_deadline(clock: FakeClock) -> None:
    """With 5 s of deadline left a 100 s max_wait queues only 5 s, then BulkheadFullError."""
    bulkhead = Bulkhead(1, max_wait=100, clock=clock)
    await bulkhead.acquire_async()
    pipeline = Pipeline(retry=Retry(attempts=3, deadline=5, clock=clock), bulkhead=bulkhead)
    outcome: list[BaseException] = []

    async def noop() -> None:
        return None

    async def run() -> None:
        try:
            await pipeline.acall(noop)
        except BulkheadFullError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        clock.advance(5)
    assert len(outcome) == 1
    assert clock.monotonic() == 5.0
    bulkhead.release()
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_cancelled_probe_is_neutral_and_frees_the_half_open_slot(clock: FakeClock) -> None:
    """Cancelling a half-open probe is neutral, leaks nothing, and the next probe closes it."""
    _, bulkhead, breaker = gates(clock, max_failures=1)
    retry = Retry(attempts=3, wait=False, clock=clock)
    pipeline = Pipeline(retry=retry, bulkhead=bulkhead, breaker=breaker)

    async def fail() -> None:
        raise ConnectionError

    async def ok() -> str:
        return "ok"

    with pytest.raises(CircuitOpenError):
        await pipeline.acall(fail)
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pipeline.acall, anyio.sleep_forever)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert (breaker.stats.failed_calls, breaker.stats.neutral_calls) == (1, 1)
    assert bulkhead.stats.in_flight == 0
    assert await pipeline.acall(ok) == "ok"
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.anyio
async def test_attempt_timeout_is_a_failure_and_is_retried(clock: FakeClock) -> None:
    """Each hanging attempt times out, counts as a failure, and the retry tries again."""
    _, bulkhead, breaker = gates(clock)
    calls: list[int] = []

    async def hang() -> None:
        calls.append(1)
        await anyio.sleep_forever()

    pipeline = Pipeline(
        retry=Retry(attempts=2, wait=False, clock=clock),
        bulkhead=bulkhead,
        breaker=breaker,
        attempt_timeout=0.01,
    )
    with pytest.raises(TimeoutExceededError):
        await pipeline.acall(hang)
    assert len(calls) == 2
    assert breaker.stats.failed_calls == 2
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_total_timeout_cancels_as_neutral(clock: FakeClock) -> None:
    """The total timeout cancels the attempt: TimeoutExceededError, permit neutral."""
    _, bulkhead, breaker = gates(clock)
    pipeline = Pipeline(timeout=0.01, bulkhead=bulkhead, breaker=breaker, clock=clock)
    with pytest.raises(TimeoutExceededError):
        await pipeline.acall(anyio.sleep_forever)
    assert (breaker.stats.failed_calls, breaker.stats.neutral_calls) == (0, 1)
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_async_context_manager_and_decorator(clock: FakeClock) -> None:
    """async with takes the gates for its body; @Pipeline wraps async functions."""
    _, bulkhead, breaker = gates(clock)
    pipeline = Pipeline(bulkhead=bulkhead, breaker=breaker)

    @pipeline
    async def triple(x: int) -> int:
        return 3 * x

    async with pipeline:
        assert bulkhead.stats.in_flight == 1
    assert await triple(2) == 6
    assert breaker.stats.successful_calls == 2
    assert bulkhead.stats.in_flight == 0
