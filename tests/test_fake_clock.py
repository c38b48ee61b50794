"""FakeClock: zero-length and already-expired waits answer at once, as on the system clock."""

from __future__ import annotations

import threading

import anyio
import pytest

from seawall._clock import SYSTEM_CLOCK
from seawall.testing import FakeClock

# A guard against a hang (the bug these tests look for), not a timing assumption: a correct
# wait returns without the clock moving, long before it.
HANG_GUARD = 10.0


def _wait_in_thread(clock: FakeClock, event: threading.Event, timeout: float) -> list[bool]:
    answers: list[bool] = []
    thread = threading.Thread(
        target=lambda: answers.append(clock.wait_for(event, timeout)), daemon=True
    )
    thread.start()
    thread.join(HANG_GUARD)
    assert not thread.is_alive(), f"wait_for(event, {timeout}) blocked on a still clock"
    return answers


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_expired_wait_for_answers_false_at_once(clock: FakeClock, timeout: float) -> None:
    """wait_for on an unset event with a zero or negative timeout returns False, time unmoved."""
    assert _wait_in_thread(clock, threading.Event(), timeout) == [False]
    assert (clock.monotonic(), clock.sleepers) == (0.0, 0)


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_expired_wait_for_matches_the_system_clock(timeout: float) -> None:
    """The system clock gives the same answers the fake one does for an expired wait."""
    unset, done = threading.Event(), threading.Event()
    done.set()
    assert (SYSTEM_CLOCK.wait_for(unset, timeout), SYSTEM_CLOCK.wait_for(done, timeout)) == (
        False,
        True,
    )


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_expired_wait_for_on_a_set_event_answers_true(clock: FakeClock, timeout: float) -> None:
    """wait_for on an event already set returns True at once, whatever the timeout."""
    event = threading.Event()
    event.set()
    assert _wait_in_thread(clock, event, timeout) == [True]
    assert clock.sleepers == 0


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [0.0, -1.0])
async def test_expired_await_event_answers_false_at_once(clock: FakeClock, timeout: float) -> None:
    """await_event on an unset event with a zero or negative timeout returns False, unmoved."""
    with anyio.fail_after(HANG_GUARD):
        answer = await clock.await_event(anyio.Event(), timeout)
    assert (answer, clock.monotonic(), clock.sleepers) == (False, 0.0, 0)


@pytest.mark.anyio
async def test_expired_await_event_matches_the_system_clock() -> None:
    """The system clock's await_event also answers False at once for a zero timeout."""
    with anyio.fail_after(HANG_GUARD):
        assert await SYSTEM_CLOCK.await_event(anyio.Event(), 0.0) is False


@pytest.mark.anyio
async def test_expired_await_event_on_a_set_event_answers_true(clock: FakeClock) -> None:
    """await_event on an event already set returns True at once for a zero timeout."""
    event = anyio.Event()
    event.set()
    with anyio.fail_after(HANG_GUARD):
        assert await clock.await_event(event, 0.0) is True
    assert clock.sleepers == 0


@pytest.mark.anyio
async def test_expired_await_event_is_a_checkpoint(clock: FakeClock) -> None:
    """An expired await_event is still a checkpoint, as any anyio wait is: it sees cancellation."""
    reached: list[str] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        await clock.await_event(anyio.Event(), 0.0)
        reached.append("after wait")  # a wait that is no checkpoint would get here
    assert (reached, scope.cancelled_caught) == ([], True)


def test_positive_wait_for_still_waits_for_the_clock(clock: FakeClock) -> None:
    """A positive timeout still blocks until advance() passes its deadline, then returns."""
    event = threading.Event()
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(clock.wait_for(event, 2.0)))
    thread.start()
    clock.wait_for_sleepers(1)
    clock.advance(1.999)
    assert answers == []
    clock.advance(0.001)
    thread.join(HANG_GUARD)
    assert (answers, clock.monotonic()) == ([True], 2.0)
