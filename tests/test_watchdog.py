"""Watchdog: firing, re-arming, where callbacks run, raise_on_timeout, the shared monitor."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from seawall import Watchdog, WatchdogError, WatchdogStats, WatchdogTimeoutError, watchdog_context
from seawall._monitor import monitor_thread, settle
from seawall.testing import FakeClock


def recorder(clock: FakeClock) -> tuple[list[float], object]:
    """A sync on_timeout that records the fake time of each firing."""
    calls: list[float] = []
    return calls, lambda: calls.append(clock.monotonic())


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_timeout_raises_value_error_naming_it(bad: float) -> None:
    """A timeout that is not a positive finite number is refused, naming the parameter."""
    with pytest.raises(ValueError, match="timeout"):
        Watchdog(timeout=bad)


def test_non_number_timeout_and_non_callable_callback_raise_type_error() -> None:
    """Wrong types name the parameter they were passed for."""
    with pytest.raises(TypeError, match="timeout"):
        Watchdog(timeout="30")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_timeout"):
        Watchdog(timeout=1, on_timeout="call me")  # type: ignore[arg-type]


def test_sub_second_timeout_is_kept_as_given() -> None:
    """Sub-second timeouts are honoured, not clamped to 1 s as the reference does."""
    assert Watchdog(timeout=0.05).timeout == 0.05


def test_constructor_starts_no_thread(clock: FakeClock) -> None:
    """Making a watchdog starts nothing; the monitor appears only at start()."""
    wd = Watchdog(timeout=1, clock=clock)
    assert monitor_thread(clock) is None
    with wd:
        assert monitor_thread(clock) is not None


def test_start_twice_raises_and_stop_is_idempotent(clock: FakeClock) -> None:
    """A running watchdog refuses a second start; stop() twice is harmless; restart works."""
    wd = Watchdog(timeout=1, clock=clock)
    wd.start()
    with pytest.raises(WatchdogError, match="already running"):
        wd.start()
    wd.stop()
    wd.stop()
    wd.start()
    assert wd.is_running
    wd.stop()
    assert not wd.is_running


def test_sync_start_refuses_an_async_callback(clock: FakeClock) -> None:
    """An async on_timeout needs a loop to run on, so sync start() refuses it up front."""

    async def on_timeout() -> None:
        pass

    with pytest.raises(TypeError, match="astart"):
        Watchdog(timeout=1, on_timeout=on_timeout, clock=clock).start()


# -- firing and re-arming -------------------------------------------------------------------


def test_fires_exactly_once_when_a_thread_stops_pinging(clock: FakeClock) -> None:
    """A worker pings at 0, 1, 2 and stops: the watchdog fires once, at 2 + timeout."""
    calls, on_timeout = recorder(clock)
    wd = Watchdog(timeout=5, on_timeout=on_timeout, clock=clock)  # type: ignore[arg-type]

    def worker() -> None:
        for _ in range(3):
            wd.ping()
            clock.sleep(1)  # the fake clock's sync sleep advances time at once

    with wd:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        clock.advance(3)
        settle(clock)
        assert calls == []
        clock.advance(1)
        settle(clock)
        assert calls == [7.0]
        clock.advance(100)
        settle(clock)
    assert calls == [7.0]
    assert wd.stats.timeouts_triggered == 1


def test_a_ping_re_arms_a_fired_watchdog(clock: FakeClock) -> None:
    """Two inactivity episodes separated by a ping fire twice (the reference fires once)."""
    calls, on_timeout = recorder(clock)
    with Watchdog(timeout=2, on_timeout=on_timeout, clock=clock) as wd:  # type: ignore[arg-type]
        clock.advance(2)
        settle(clock)
        assert wd.is_triggered
        clock.advance(5)
        settle(clock)
        assert calls == [2.0]
        wd.ping()
        assert not wd.is_triggered
        settle(clock)
        clock.advance(2)
        settle(clock)
    assert calls == [2.0, 9.0]


def test_stats_are_an_exact_snapshot(clock: FakeClock) -> None:
    """Stats report pings, firings, idle time and uptime on the watchdog's clock."""
    wd = Watchdog(timeout=5, name="worker", clock=clock)
    assert wd.stats == WatchdogStats(
        name="worker",
        timeout=5.0,
        is_running=False,
        is_triggered=False,
        pings_total=0,
        timeouts_triggered=0,
        seconds_since_ping=0.0,
        last_ping_time=0.0,
        start_time=None,
        uptime=0.0,
    )
    with wd:
        clock.advance(2)
        wd.ping()
        wd.ping()
        clock.advance(1)
        assert wd.stats == WatchdogStats(
            name="worker",
            timeout=5.0,
            is_running=True,
            is_triggered=False,
            pings_total=2,
            timeouts_triggered=0,
            seconds_since_ping=1.0,
            last_ping_time=2.0,
            start_time=0.0,
            uptime=3.0,
        )


def test_callback_error_is_logged_and_the_monitor_keeps_serving(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_timeout that raises is logged under 'seawall'; other watchdogs still fire."""
    calls, on_timeout = recorder(clock)

    def broken() -> None:
        raise RuntimeError("boom")

    with (
        Watchdog(timeout=1, on_timeout=broken, name="broken", clock=clock),
        Watchdog(timeout=2, on_timeout=on_timeout, clock=clock),  # type: ignore[arg-type]
    ):
        clock.advance(1)
        settle(clock)
        clock.advance(1)
        settle(clock)
    assert calls == [2.0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(r.name, r.getMessage()) for r in errors] == [
        ("seawall", "watchdog 'broken': on_timeout raised")
    ]
    assert errors[0].exc_info is not None


def test_many_watchdogs_share_one_monitor_thread(clock: FakeClock) -> None:
    """Twenty watchdogs start one thread, all fire on it, and it ends when they stop."""
    before = set(threading.enumerate())
    seen: set[int] = set()
    dogs = [
        Watchdog(timeout=1, on_timeout=lambda: seen.add(threading.get_ident()), clock=clock)
        for _ in range(20)
    ]
    for wd in dogs:
        wd.start()
    monitor = monitor_thread(clock)
    assert monitor is not None
    assert set(threading.enumerate()) - before == {monitor}
    clock.advance(1)
    settle(clock)
    assert seen == {monitor.ident}
    assert sum(wd.stats.timeouts_triggered for wd in dogs) == 20
    for wd in dogs:
        wd.stop()
    monitor.join(timeout=5)
    assert not monitor.is_alive()
    assert monitor_thread(clock) is None


def test_a_stopped_watchdog_never_fires(clock: FakeClock) -> None:
    """Stopping before the deadline cancels the firing for good."""
    calls, on_timeout = recorder(clock)
    wd = Watchdog(timeout=2, on_timeout=on_timeout, clock=clock)  # type: ignore[arg-type]
    with wd:
        clock.advance(1)
    clock.advance(10)
    settle(clock)
    assert calls == []
    assert wd.stats.timeouts_triggered == 0


# -- where callbacks run (asyncio and trio) -------------------------------------------------


@pytest.mark.anyio
async def test_async_callback_runs_on_the_watched_loop(clock: FakeClock) -> None:
    """An async on_timeout runs as a task on the loop that entered the watchdog."""
    ran = anyio.Event()
    threads: list[int] = []

    async def on_timeout() -> None:
        threads.append(threading.get_ident())
        ran.set()

    async with Watchdog(timeout=1, on_timeout=on_timeout, clock=clock):
        clock.advance(1)
        settle(clock)
        with anyio.fail_after(5):
            await ran.wait()
    assert threads == [threading.get_ident()]


@pytest.mark.anyio
async def test_a_lambda_returning_a_coroutine_counts_as_async(clock: FakeClock) -> None:
    """A callback is async by what it returns, so a lambda wrapping a coroutine runs on the loop."""
    ran = anyio.Event()
    threads: list[int] = []

    async def notify(tag: str) -> None:
        threads.append(threading.get_ident())
        ran.set()

    async with Watchdog(timeout=1, on_timeout=lambda: notify("x"), clock=clock):
        clock.advance(1)
        settle(clock)
        with anyio.fail_after(5):
            await ran.wait()
    assert threads == [threading.get_ident()]


@pytest.mark.anyio
async def test_async_callback_error_is_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An async on_timeout that raises is logged under 'seawall' and breaks nothing."""
    ran = anyio.Event()

    async def on_timeout() -> None:
        ran.set()
        raise RuntimeError("boom")

    async with Watchdog(timeout=1, on_timeout=on_timeout, name="async", clock=clock):
        clock.advance(1)
        settle(clock)
        with anyio.fail_after(5):
            await ran.wait()
        await anyio.wait_all_tasks_blocked()
    errors = [(r.name, r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [("seawall", "seawall: watchdog 'async' on_timeout raised")]


@pytest.mark.anyio
async def test_sync_callback_runs_in_the_monitor_thread(clock: FakeClock) -> None:
    """A sync on_timeout runs in the monitor thread, so a stuck loop cannot delay it."""
    threads: list[int] = []
    async with Watchdog(
        timeout=1, on_timeout=lambda: threads.append(threading.get_ident()), clock=clock
    ):
        monitor = monitor_thread(clock)
        clock.advance(1)
        settle(clock)
    assert monitor is not None
    assert threads == [monitor.ident]


@pytest.mark.anyio
async def test_fires_while_the_event_loop_is_blocked() -> None:
    """On the real clock, a watchdog fires while a coroutine blocks the loop with time.sleep."""
    fired = threading.Event()
    async with Watchdog(timeout=0.2, on_timeout=fired.set):
        time.sleep(1.0)  # noqa: ASYNC251 - blocking the loop is the point of this test
        # Still blocking the loop: a firing seen here happened while the loop was stuck.
        fired_while_blocked = fired.wait(timeout=10)
    assert fired_while_blocked


# -- raise_on_timeout -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_raise_on_timeout_cancels_the_async_block(clock: FakeClock) -> None:
    """The block is cancelled and exits with WatchdogTimeoutError carrying the idle time."""
    reached: list[str] = []

    async def watched_block() -> None:
        async with watchdog_context(timeout=2, raise_on_timeout=True, clock=clock) as wd:
            await wd.aping()
            clock.advance(2)
            settle(clock)
            await anyio.sleep_forever()
            reached.append("after sleep")

    with anyio.fail_after(5), pytest.raises(WatchdogTimeoutError) as info:
        await watched_block()
    assert reached == []
    assert info.value.seconds_inactive == 2.0


@pytest.mark.anyio
async def test_async_block_that_keeps_pinging_exits_normally(clock: FakeClock) -> None:
    """raise_on_timeout does nothing to a block that pings in time."""
    async with watchdog_context(timeout=2, raise_on_timeout=True, clock=clock) as wd:
        for _ in range(5):
            clock.advance(1)
            await wd.aping()
        settle(clock)
    assert wd.stats.timeouts_triggered == 0


def test_sync_raise_on_timeout_raises_at_the_next_ping(clock: FakeClock) -> None:
    """In sync code the error arrives at the next ping(), which also re-arms the watchdog."""
    with watchdog_context(timeout=3, raise_on_timeout=True, clock=clock) as wd:
        clock.advance(3)
        settle(clock)
        with pytest.raises(WatchdogTimeoutError) as info:
            wd.ping()
        wd.ping()
    assert info.value.seconds_inactive == 3.0
    assert wd.stats.timeouts_triggered == 1


def test_sync_raise_on_timeout_raises_at_block_exit(clock: FakeClock) -> None:
    """A block that never pings again gets the error when it exits."""

    def watched_block() -> None:
        with watchdog_context(timeout=3, raise_on_timeout=True, clock=clock):
            clock.advance(3)
            settle(clock)

    with pytest.raises(WatchdogTimeoutError, match=r"no ping for 3\.000 s") as info:
        watched_block()
    assert info.value.seconds_inactive == 3.0


def test_an_error_from_the_block_wins_over_a_pending_timeout(clock: FakeClock) -> None:
    """When the block already fails, its own exception propagates unchanged."""

    def watched_block() -> None:
        with watchdog_context(timeout=3, raise_on_timeout=True, clock=clock):
            clock.advance(3)
            settle(clock)
            raise KeyError("own failure")

    with pytest.raises(KeyError):
        watched_block()


# -- watching a heartbeat file --------------------------------------------------------------


def write_state(path: Path, clock: FakeClock, *, age: float = 0.0, **extra: object) -> None:
    """Write a heartbeat file whose timestamp is ``age`` seconds old on the fake wall clock."""
    stamp = datetime.fromtimestamp(clock.time() - age, UTC).isoformat()
    path.write_text(json.dumps({"timestamp": stamp, "pid": 1, "hostname": "h", **extra}))


def test_state_file_bad_max_age_names_it(tmp_path: Path) -> None:
    """from_state_file validates max_age and check_interval by name."""
    with pytest.raises(ValueError, match="max_age"):
        Watchdog.from_state_file(tmp_path / "hb", max_age=0)
    with pytest.raises(ValueError, match="check_interval"):
        Watchdog.from_state_file(tmp_path / "hb", max_age=1, check_interval=-1)


def test_state_file_missing_fires_once(tmp_path: Path, clock: FakeClock) -> None:
    """A missing heartbeat file means "not alive": one firing, not one per check."""
    calls, on_timeout = recorder(clock)
    wd = Watchdog.from_state_file(tmp_path / "hb", 10, on_timeout=on_timeout, clock=clock)  # type: ignore[arg-type]
    with wd:
        settle(clock)
        clock.advance(5)
        settle(clock)
        clock.advance(5)
        settle(clock)
    assert calls == [0.0]


@pytest.mark.parametrize(
    "content",
    [b"", b"[1, 2]", b"\x80\xff\x00garbage", b'{"pid": 1}', b'{"timestamp": "yesterday"}',
     b'{"timestamp": 12}', b"[" * 100_000, b"null", b'{"timestamp": "2023-11-14T22:13:20"}'],
    ids=["empty", "list", "binary", "no-timestamp", "bad-timestamp", "number-timestamp", "deep",
         "null", "naive-timestamp"],
)  # fmt: skip
def test_state_file_malformed_fires(tmp_path: Path, clock: FakeClock, content: bytes) -> None:
    """Any content that is not a heartbeat object counts as not alive, without raising."""
    path = tmp_path / "hb"
    path.write_bytes(content)
    calls, on_timeout = recorder(clock)
    with Watchdog.from_state_file(path, 10, on_timeout=on_timeout, clock=clock):  # type: ignore[arg-type]
        settle(clock)
    assert calls == [0.0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_state_file_that_is_a_fifo_fires_without_hanging(tmp_path: Path, clock: FakeClock) -> None:
    """A FIFO at the path is not a heartbeat file: it reads as dead instead of blocking."""
    path = tmp_path / "hb"
    os.mkfifo(path)
    calls, on_timeout = recorder(clock)
    with Watchdog.from_state_file(path, 10, on_timeout=on_timeout, clock=clock):  # type: ignore[arg-type]
        settle(clock)
    assert calls == [0.0]


def test_state_file_marked_stopped_fires_at_once(tmp_path: Path, clock: FakeClock) -> None:
    """A file its heartbeat marked stopped is dead now, however fresh its timestamp."""
    path = tmp_path / "hb"
    write_state(path, clock, stopped=True)
    calls, on_timeout = recorder(clock)
    with Watchdog.from_state_file(path, 10, on_timeout=on_timeout, clock=clock):  # type: ignore[arg-type]
        settle(clock)
    assert calls == [0.0]


def test_state_file_already_stale_fires_with_its_age(tmp_path: Path, clock: FakeClock) -> None:
    """A file older than max_age fires at once and reports the file's age as idle time."""
    path = tmp_path / "hb"
    write_state(path, clock, age=15)
    calls, on_timeout = recorder(clock)
    wd = Watchdog.from_state_file(path, 10, on_timeout=on_timeout, clock=clock)  # type: ignore[arg-type]
    with wd:
        settle(clock)
        assert wd.stats.seconds_since_ping == 15.0
    assert calls == [0.0]


@pytest.mark.parametrize("fmt", ["iso", "zulu"])
def test_fresh_state_file_fires_exactly_when_it_turns_stale(
    tmp_path: Path, clock: FakeClock, fmt: str
) -> None:
    """A fresh file keeps the watchdog quiet until its timestamp is max_age old."""
    path = tmp_path / "hb"
    moment = datetime.fromtimestamp(clock.time(), UTC)
    stamp = {
        "iso": moment.isoformat(),
        "zulu": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }[fmt]
    path.write_text(json.dumps({"timestamp": stamp, "pid": 1, "hostname": "h", "metadata": {}}))
    calls, on_timeout = recorder(clock)
    with Watchdog.from_state_file(path, 10, on_timeout=on_timeout, check_interval=4, clock=clock):  # type: ignore[arg-type]
        settle(clock)
        clock.advance(8)
        settle(clock)
        assert calls == []
        clock.advance(2)
        settle(clock)
    assert calls == [10.0]


def test_state_file_re_arms_when_the_file_is_fresh_again(tmp_path: Path, clock: FakeClock) -> None:
    """After a stale episode, a rewritten file re-arms the watchdog so it can fire again."""
    path = tmp_path / "hb"
    write_state(path, clock)
    calls, on_timeout = recorder(clock)
    wd = Watchdog.from_state_file(path, 10, on_timeout=on_timeout, check_interval=5, clock=clock)  # type: ignore[arg-type]
    with wd:
        settle(clock)
        clock.advance(10)
        settle(clock)
        write_state(path, clock)
        clock.advance(5)
        settle(clock)
        assert not wd.is_triggered
        clock.advance(5)
        settle(clock)
    assert calls == [10.0, 20.0]


def test_state_file_written_by_heartbeat_is_understood(tmp_path: Path, clock: FakeClock) -> None:
    """A seawall Heartbeat's file keeps the watchdog quiet; its stop marker fires it at once."""
    from seawall import Heartbeat

    path = tmp_path / "hb.json"
    heartbeat = Heartbeat(path, interval=5, clock=clock)
    heartbeat.beat()
    calls, on_timeout = recorder(clock)
    with Watchdog.from_state_file(path, 10, on_timeout=on_timeout, check_interval=1, clock=clock):  # type: ignore[arg-type]
        settle(clock)
        clock.advance(1)
        settle(clock)
        assert calls == []
        heartbeat.beat(stopped=True)
        clock.advance(1)
        settle(clock)
    assert calls == [2.0]
