"""Timeout: cancel scopes for async calls, an abandoned worker thread for sync calls."""

from __future__ import annotations

import contextvars
import threading

import anyio
import anyio.lowlevel
import pytest

from seawall import TimeoutExceededError
from seawall._timeout import Timeout, run_with_timeout
from seawall.testing import FakeClock

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def advance_when_waiting(clock: FakeClock, seconds: float) -> threading.Thread:
    """Start a thread that advances ``clock`` once one waiter is registered."""

    def run() -> None:
        clock.wait_for_sleepers(1)
        clock.advance(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.anyio
async def test_async_call_within_time_returns_its_value() -> None:
    """A call that finishes in time returns its value."""

    async def fetch(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    assert await Timeout(60).acall(fetch, 21) == 42


@pytest.mark.anyio
async def test_async_call_past_deadline_is_cancelled_and_raises() -> None:
    """A hanging call is cancelled, its finally runs, and TimeoutExceededError is raised."""
    cleaned = []

    async def hang() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append(True)

    with pytest.raises(TimeoutExceededError) as caught:
        await Timeout(0.01).acall(hang)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.01
    assert cleaned == [True]


@pytest.mark.anyio
async def test_outer_cancellation_passes_through() -> None:
    """Cancellation from an enclosing scope is not turned into a timeout error."""
    with anyio.move_on_after(0.01) as outer:
        await Timeout(60).acall(anyio.sleep_forever)
    assert outer.cancelled_caught


@pytest.mark.anyio
async def test_async_decorator() -> None:
    """@Timeout(...) on an async function applies the deadline to each call."""

    @Timeout(0.01)
    async def hang() -> None:
        await anyio.sleep_forever()

    with pytest.raises(TimeoutExceededError):
        await hang()


def test_sync_call_returns_value_and_keeps_contextvars(clock: FakeClock) -> None:
    """A sync call runs in a worker with the caller's contextvars and returns its value."""
    request_id.set("r-7")
    assert Timeout(5, clock=clock).call(lambda: request_id.get()) == "r-7"


def test_sync_call_exception_propagates(clock: FakeClock) -> None:
    """An exception raised by the sync call reaches the caller unchanged."""
    error = KeyError("k")

    def fail() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        Timeout(5, clock=clock).call(fail)
    assert caught.value is error


def test_sync_call_is_abandoned_at_the_deadline(clock: FakeClock) -> None:
    """At the deadline the caller gets TimeoutExceededError while the worker keeps running."""
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait(10)
        finished.set()
        return "late"

    helper = advance_when_waiting(clock, 5)
    with pytest.raises(TimeoutExceededError):
        Timeout(5, clock=clock).call(slow)
    helper.join()
    assert not finished.is_set()
    release.set()
    assert finished.wait(10)


def test_late_finish_hook_runs_only_after_an_abandoned_worker_ends(clock: FakeClock) -> None:
    """on_late_finish runs in the worker once the abandoned call finally returns."""
    release = threading.Event()
    late = threading.Event()
    helper = advance_when_waiting(clock, 1)
    with pytest.raises(TimeoutExceededError):
        run_with_timeout(1, clock, lambda: release.wait(10), on_late_finish=late.set)
    helper.join()
    assert not late.is_set()
    release.set()
    assert late.wait(10)


def test_late_finish_hook_not_called_when_in_time(clock: FakeClock) -> None:
    """A call that finishes in time never triggers on_late_finish."""
    calls: list[int] = []
    assert run_with_timeout(1, clock, lambda: 3, on_late_finish=lambda: calls.append(1)) == 3
    assert calls == []


def test_sync_call_refuses_async_function(clock: FakeClock) -> None:
    """call() with a coroutine function raises TypeError."""

    async def fetch() -> None:
        return None

    with pytest.raises(TypeError, match="acall"):
        Timeout(1, clock=clock).call(fetch)


@pytest.mark.parametrize(
    ("seconds", "error"), [(0, ValueError), (-1, ValueError), ("1", TypeError)]
)
def test_bad_seconds_rejected(seconds: object, error: type[Exception]) -> None:
    """seconds must be a positive number."""
    with pytest.raises(error, match="seconds"):
        Timeout(seconds)  # type: ignore[arg-type]
