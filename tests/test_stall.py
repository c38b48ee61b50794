"""LoopStallDetector: how long the event loop was blocked, and where, on asyncio and trio."""

from __future__ import annotations

import logging
import threading
import time

import anyio
import anyio.lowlevel
import pytest

from seawall import LoopStallDetector, LoopStallEvent
from seawall._monitor import monitor_thread, settle
from seawall.testing import FakeClock


def _block_the_loop(seconds: float, until: threading.Event) -> None:
    """Block the calling thread (the loop's) for ``seconds``, then until ``until`` is set.

    The second wait keeps the loop blocked on a slow machine until the detector has seen it,
    so the test does not depend on how fast the monitor thread gets scheduled.
    """
    time.sleep(seconds)
    until.wait(10)


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"threshold": 0}, "threshold"), ({"threshold": -1}, "threshold"),
     ({"threshold": 1, "interval": 0}, "interval"), ({"threshold": 1, "interval": 1}, "interval")],
)  # fmt: skip
def test_bad_values_raise_value_error_naming_them(kwargs: dict[str, float], name: str) -> None:
    """Thresholds must be positive and the beat interval shorter than the threshold."""
    with pytest.raises(ValueError, match=name):
        LoopStallDetector(**kwargs)  # type: ignore[arg-type]


def test_on_stall_must_be_a_sync_callable() -> None:
    """The loop is stuck when a stall is reported, so an async on_stall could never run."""

    async def on_stall(event: LoopStallEvent) -> None:
        pass

    with pytest.raises(TypeError, match="on_stall"):
        LoopStallDetector(on_stall=on_stall)
    with pytest.raises(TypeError, match="on_stall"):
        LoopStallDetector(on_stall=42)  # type: ignore[arg-type]


def test_constructor_starts_nothing(clock: FakeClock) -> None:
    """Making a detector starts no thread and no task."""
    LoopStallDetector(threshold=0.2, clock=clock)
    assert monitor_thread(clock) is None
    assert clock.sleepers == 0


# -- on the fake clock: exact durations -----------------------------------------------------


@pytest.mark.anyio
async def test_one_report_per_stall_then_one_recovery(clock: FakeClock) -> None:
    """A stall is reported once when noticed and once more, with its total, on recovery."""
    events: list[LoopStallEvent] = []
    async with LoopStallDetector(threshold=0.2, interval=0.05, on_stall=events.append, clock=clock):
        await anyio.wait_all_tasks_blocked()
        clock.wait_for_sleepers(2)  # the beat and the monitor
        # From here on this test does not yield: to the detector, the loop is blocked.
        clock.advance(0.2)
        settle(clock)
        clock.advance(0.3)
        settle(clock)
        assert [(e.recovered, e.duration) for e in events] == [(False, 0.2)]
        await anyio.wait_all_tasks_blocked()  # the beat runs again and wakes the monitor
        settle(clock)
    assert [(e.recovered, e.duration) for e in events] == [(False, 0.2), (True, 0.5)]
    assert {e.thread_id for e in events} == {threading.get_ident()}
    assert "test_one_report_per_stall_then_one_recovery" in events[0].stack
    assert events[1].stack == events[0].stack


@pytest.mark.anyio
async def test_a_loop_that_keeps_running_is_never_reported(clock: FakeClock) -> None:
    """When the loop runs the beat every interval, no stall is reported however long it runs."""
    events: list[LoopStallEvent] = []
    detector = LoopStallDetector(threshold=0.2, interval=0.05, on_stall=events.append, clock=clock)
    async with detector:
        for _ in range(40):
            await anyio.wait_all_tasks_blocked()
            clock.advance(0.05)
            settle(clock)
    assert events == []
    assert detector.stalls_total == 0


@pytest.mark.anyio
async def test_leaving_during_a_stall_reports_the_recovery(clock: FakeClock) -> None:
    """Exiting right after a stall still closes the episode with exactly one recovery."""
    events: list[LoopStallEvent] = []
    async with LoopStallDetector(threshold=0.2, interval=0.05, on_stall=events.append, clock=clock):
        await anyio.wait_all_tasks_blocked()
        clock.wait_for_sleepers(2)
        clock.advance(0.25)
        settle(clock)
    assert [(e.recovered, e.duration) for e in events] == [(False, 0.25), (True, 0.25)]


@pytest.mark.anyio
async def test_stalls_are_logged_and_callback_errors_do_not_stop_reports(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each report is a WARNING under 'seawall'; an on_stall that raises is logged as ERROR."""

    def broken(event: LoopStallEvent) -> None:
        raise RuntimeError("boom")

    detector = LoopStallDetector(threshold=0.2, interval=0.05, on_stall=broken, clock=clock)
    async with detector:
        await anyio.wait_all_tasks_blocked()
        clock.wait_for_sleepers(2)
        clock.advance(0.2)
        settle(clock)
    records = [(r.name, r.levelno) for r in caplog.records]
    assert records == [
        ("seawall", logging.WARNING),
        ("seawall", logging.ERROR),
        ("seawall", logging.WARNING),
        ("seawall", logging.ERROR),
    ]
    assert caplog.records[0].getMessage().startswith("event loop blocked for 0.200 s")
    assert caplog.records[2].getMessage() == "event loop ran again after 0.200 s blocked"
    assert detector.stalls_total == 1


# -- on the real clock: a real blocked loop -------------------------------------------------


@pytest.mark.anyio
async def test_real_blocking_call_is_reported_with_its_stack() -> None:
    """time.sleep(0.5) on the loop is reported with a stack naming the blocking function."""
    events: list[LoopStallEvent] = []
    stalled, recovered = threading.Event(), threading.Event()

    def on_stall(event: LoopStallEvent) -> None:
        events.append(event)
        if "_block_the_loop" in event.stack:
            (recovered if event.recovered else stalled).set()

    async with LoopStallDetector(threshold=0.2, on_stall=on_stall):
        await anyio.lowlevel.checkpoint()
        _block_the_loop(0.5, until=stalled)
        # Wait off the loop so the beat can run and the recovery be reported.
        assert await anyio.to_thread.run_sync(recovered.wait, 10)
    # A loaded machine may add stalls of its own; ours is the one in _block_the_loop.
    ours = [e for e in events if "_block_the_loop" in e.stack]
    assert [e.recovered for e in ours] == [False, True]
    assert ours[0].duration >= 0.2
    assert ours[1].duration >= ours[0].duration
    assert ours[0].thread_id == threading.get_ident()
