"""GracefulShutdown: order, limits, budget, logging, idempotence, loops, signals, real processes."""

from __future__ import annotations

import functools
import logging
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import anyio
import pytest

from _fds import no_collection, open_fds
from _paths import PROCS
from seawall import CleanupCallback, GracefulShutdown, ShutdownError
from seawall._shutdown.shutdown import CleanupResult, _current_backend
from seawall.testing import FakeClock

CHILD = PROCS / "shutdown_child.py"
ORDER = [("c", 50), ("a", 10), ("d", 50), ("b", 10), ("e", 100), ("z", 0)]
EXPECTED = ["z", "a", "b", "c", "d", "e"]


def summary(results: tuple[CleanupResult, ...]) -> list[tuple[str, str, float]]:
    return [(r.name, r.status, r.duration) for r in results]


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; its return value lands in the box under "value"."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    return thread, box


# -- order, results, validation ----------------------------------------------------------


def test_callbacks_run_by_priority_ties_in_registration_order(clock: FakeClock) -> None:
    """Lower priority runs first; equal priorities keep registration order."""
    ran: list[str] = []
    shutdown = GracefulShutdown(clock=clock)
    for name, priority in ORDER:
        shutdown.register(name, functools.partial(ran.append, name), priority=priority)
    results = shutdown.trigger()
    assert ran == EXPECTED
    assert summary(results) == [(name, "ok", 0.0) for name in EXPECTED]
    assert [entry.name for entry in shutdown.callbacks] == EXPECTED


def test_register_returns_the_entry_with_guide_call_shape(clock: FakeClock) -> None:
    """register(name, callback, priority=...) returns a frozen CleanupCallback."""
    shutdown = GracefulShutdown(clock=clock)

    def close() -> None:
        pass

    entry = shutdown.register("database", close, priority=10)
    assert entry == CleanupCallback("database", close, 10, None)
    with pytest.raises(AttributeError):
        entry.priority = 1  # type: ignore[misc]


def test_unregister_removes_a_callback(clock: FakeClock) -> None:
    """An unregistered callback does not run; unregistering twice returns False."""
    ran: list[str] = []
    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("keep", lambda: ran.append("keep"))
    shutdown.register("drop", lambda: ran.append("drop"))
    assert shutdown.unregister("drop") is True
    assert shutdown.unregister("drop") is False
    shutdown.trigger()
    assert ran == ["keep"]


def test_duplicate_name_and_late_registration_raise_shutdown_error(clock: FakeClock) -> None:
    """A duplicate name, or registering once shutdown began, raises ShutdownError."""
    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("db", lambda: None)
    with pytest.raises(ShutdownError, match="'db' is already registered"):
        shutdown.register("db", lambda: None)
    shutdown.trigger()
    with pytest.raises(ShutdownError, match="already begun"):
        shutdown.register("late", lambda: None)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        (("x", "not callable"), {}, TypeError, "callback"),
        ((1, print), {}, TypeError, "name"),
        (("", print), {}, ValueError, "name"),
        (("x", print), {"priority": "1"}, TypeError, "priority"),
        (("x", print), {"priority": True}, TypeError, "priority"),
        (("x", print), {"priority": 1.5}, TypeError, "priority"),
        (("x", print), {"timeout": -1}, ValueError, "timeout"),
        (("x", print), {"timeout": 0}, ValueError, "timeout"),
        (("x", print), {"timeout": float("nan")}, ValueError, "timeout"),
    ],
)
def test_bad_registration_raises(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    """Bad arguments to register raise TypeError or ValueError naming the parameter."""
    with pytest.raises(error, match=pattern):
        GracefulShutdown().register(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"default_callback_timeout": 0}, ValueError, "default_callback_timeout"),
        ({"signals": ("TERM",)}, TypeError, "signals"),
        ({"signals": (12345,)}, ValueError, "signals"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, Any], error: type[Exception], pattern: str) -> None:
    """Bad constructor settings raise TypeError or ValueError naming the parameter."""
    with pytest.raises(error, match=pattern):
        GracefulShutdown(**kwargs)


# -- limits, budget, errors ----------------------------------------------------------------


def test_hung_sync_callback_is_abandoned_and_the_rest_run(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync callback past its own timeout is abandoned and logged; the next one runs."""
    release = threading.Event()
    ran: list[str] = []
    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("hung", release.wait, priority=1, timeout=2)
    shutdown.register("after", lambda: ran.append("after"), priority=2)
    with caplog.at_level(logging.ERROR, logger="seawall"):
        thread, box = in_thread(shutdown.trigger)
        clock.wait_for_sleepers(1)
        clock.advance(2)
        thread.join(30)
    release.set()
    assert summary(box["value"]) == [("hung", "timeout", 2.0), ("after", "ok", 0.0)]
    assert ran == ["after"]
    assert [r.getMessage() for r in caplog.records] == [
        "shutdown callback 'hung' did not finish within its 2s limit (2.000s)"
    ]


def test_hung_async_callback_is_cancelled_by_sync_trigger(clock: FakeClock) -> None:
    """From trigger(), an async callback past its timeout is cancelled on its own loop."""
    started, cancelled = threading.Event(), threading.Event()
    ran: list[str] = []

    async def hung() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("hung", hung, priority=1, timeout=1)
    shutdown.register("after", lambda: ran.append("after"), priority=2)
    thread, box = in_thread(shutdown.trigger)
    assert started.wait(30)
    clock.wait_for_sleepers(1)
    clock.advance(1)
    thread.join(30)
    assert summary(box["value"]) == [("hung", "timeout", 1.0), ("after", "ok", 0.0)]
    assert cancelled.wait(30) is True
    assert ran == ["after"]


def test_total_budget_limits_callbacks_and_skips_the_rest(clock: FakeClock) -> None:
    """With timeout=5: a 3 s limit, then the 2 s left, then nothing: the last is skipped."""
    release = threading.Event()
    shutdown = GracefulShutdown(timeout=5, clock=clock)
    shutdown.register("a", release.wait, priority=1, timeout=3)
    shutdown.register("b", release.wait, priority=2)
    shutdown.register("c", lambda: None, priority=3)
    thread, box = in_thread(shutdown.trigger)
    clock.wait_for_sleepers(1)
    clock.advance(3)
    clock.wait_for_sleepers(1)
    clock.advance(2)
    thread.join(30)
    release.set()
    assert summary(box["value"]) == [
        ("a", "timeout", 3.0),
        ("b", "timeout", 2.0),
        ("c", "skipped", 0.0),
    ]


def test_default_callback_timeout_applies_without_an_own_timeout(clock: FakeClock) -> None:
    """default_callback_timeout limits callbacks that set no timeout of their own."""
    release = threading.Event()
    shutdown = GracefulShutdown(timeout=30, default_callback_timeout=1, clock=clock)
    shutdown.register("hung", release.wait)
    thread, box = in_thread(shutdown.trigger)
    clock.wait_for_sleepers(1)
    clock.advance(1)
    thread.join(30)
    release.set()
    assert summary(box["value"]) == [("hung", "timeout", 1.0)]


def test_errors_are_logged_with_traceback_and_the_rest_run(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback is logged at ERROR with its traceback; later callbacks still run."""
    ran: list[str] = []

    def fails() -> None:
        raise ValueError("boom")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("fails", fails, priority=1)
    shutdown.register("after", lambda: ran.append("after"), priority=2)
    with caplog.at_level(logging.ERROR, logger="seawall"):
        results = shutdown.trigger()
    assert [(r.name, r.status) for r in results] == [("fails", "error"), ("after", "ok")]
    assert isinstance(results[0].error, ValueError)
    assert ran == ["after"]
    [record] = caplog.records
    assert (record.name, record.levelno) == ("seawall", logging.ERROR)
    assert record.getMessage() == "shutdown callback 'fails' failed after 0.000s"
    assert record.exc_info is not None
    assert record.exc_info[1] is results[0].error
    assert "ValueError: boom" in caplog.text
    assert "in fails" in caplog.text


def test_trigger_is_idempotent(clock: FakeClock) -> None:
    """A second trigger() runs nothing again and returns the first run's results."""
    ran: list[str] = []
    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("once", lambda: ran.append("once"))
    assert shutdown.is_shutting_down is False
    first = shutdown.trigger()
    assert shutdown.is_shutting_down is True
    assert shutdown.trigger() is first
    assert ran == ["once"]


def test_concurrent_trigger_waits_for_the_first_run(clock: FakeClock) -> None:
    """A trigger() during a run blocks until that run ends and returns the same results."""
    started, gate = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        assert gate.wait(30)
        ran.append("slow")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("slow", slow)
    first, first_box = in_thread(shutdown.trigger)
    assert started.wait(30)
    second, second_box = in_thread(shutdown.trigger)
    assert shutdown.is_shutting_down is True
    assert shutdown.wait(0) is False
    gate.set()
    first.join(30)
    second.join(30)
    assert second_box["value"] is first_box["value"]
    assert ran == ["slow"]


def test_wait_times_out_then_reports_completion(clock: FakeClock) -> None:
    """wait(timeout) is False when the timeout passes first, True once shutdown is done."""
    shutdown = GracefulShutdown(clock=clock)
    thread, box = in_thread(lambda: shutdown.wait(timeout=1))
    clock.wait_for_sleepers(1)
    clock.advance(1)
    thread.join(30)
    assert box["value"] is False
    shutdown.trigger()
    assert shutdown.wait() is True
    assert shutdown.wait(timeout=0) is True


def test_async_callables_are_detected_by_calling_them(clock: FakeClock) -> None:
    """trigger() awaits async functions, async __call__ objects, partials and coroutine lambdas."""
    ran: list[str] = []

    async def record(name: str) -> None:
        await anyio.lowlevel.checkpoint()
        ran.append(name)

    class AsyncCallable:
        async def __call__(self) -> None:
            await record("object")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("object", AsyncCallable(), priority=1)
    shutdown.register("lambda", lambda: record("lambda"), priority=2)
    shutdown.register("partial", functools.partial(record, "partial"), priority=3)
    results = shutdown.trigger()
    assert ran == ["object", "lambda", "partial"]
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert CleanupCallback("x", AsyncCallable()).is_async is True
    assert CleanupCallback("x", functools.partial(record, "x")).is_async is True


# -- event loops -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_atrigger_runs_async_on_the_loop_and_sync_in_a_thread(clock: FakeClock) -> None:
    """atrigger() awaits async callbacks on the running loop; sync ones run in a worker thread."""
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    async def on_loop() -> None:
        seen["async"] = threading.get_ident()

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("async", on_loop, priority=1)
    shutdown.register("sync", lambda: seen.setdefault("sync", threading.get_ident()), priority=2)
    shutdown.register("lambda", lambda: on_loop(), priority=3)
    results = await shutdown.atrigger()
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert seen["async"] == loop_thread
    assert seen["sync"] != loop_thread


@pytest.mark.anyio
async def test_sync_callbacks_do_not_block_the_loop(clock: FakeClock) -> None:
    """While a sync callback waits, another task on the loop runs and releases it."""
    started, gate = threading.Event(), threading.Event()
    released: list[bool] = []

    def waits_for_the_loop() -> None:
        started.set()
        released.append(gate.wait(30))

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("sync", waits_for_the_loop)

    async def release_from_the_loop() -> None:
        await anyio.to_thread.run_sync(started.wait, 30)
        gate.set()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(release_from_the_loop)
        results = await shutdown.atrigger()
    assert released == [True]
    assert summary(results) == [("sync", "ok", 0.0)]


@pytest.mark.anyio
async def test_hung_callbacks_are_abandoned_by_atrigger(clock: FakeClock) -> None:
    """In atrigger() a hung async callback is cancelled and a hung sync one abandoned."""
    cancelled: list[bool] = []
    release = threading.Event()

    async def hung_async() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("async", hung_async, priority=1, timeout=1)
    shutdown.register("sync", release.wait, priority=2, timeout=2)
    shutdown.register("after", lambda: None, priority=3)
    box: dict[str, tuple[CleanupResult, ...]] = {}

    async def run() -> None:
        box["results"] = await shutdown.atrigger()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        clock.advance(2)
    release.set()
    assert summary(box["results"]) == [
        ("async", "timeout", 1.0),
        ("sync", "timeout", 2.0),
        ("after", "ok", 0.0),
    ]
    assert cancelled == [True]


@pytest.mark.anyio
async def test_concurrent_atrigger_returns_the_first_results(clock: FakeClock) -> None:
    """A second atrigger() during a run waits for it and returns the same tuple."""
    gate = anyio.Event()
    ran: list[str] = []

    async def slow() -> None:
        await gate.wait()
        ran.append("slow")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("slow", slow)
    box: dict[str, tuple[CleanupResult, ...]] = {}

    async def run(key: str) -> None:
        box[key] = await shutdown.atrigger()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run, "first")
        await anyio.wait_all_tasks_blocked()
        task_group.start_soon(run, "second")
        await anyio.wait_all_tasks_blocked()
        assert box == {}
        gate.set()
    assert box["second"] is box["first"]
    assert ran == ["slow"]


@pytest.mark.anyio
async def test_await_shutdown_times_out_then_completes(clock: FakeClock) -> None:
    """await_shutdown(timeout) is False before shutdown, True once it is complete."""
    shutdown = GracefulShutdown(clock=clock)
    box: dict[str, bool] = {}

    async def waiter() -> None:
        box["early"] = await shutdown.await_shutdown(timeout=1)

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1)
    assert box == {"early": False}
    await shutdown.atrigger()
    assert await shutdown.await_shutdown() is True


@pytest.mark.anyio
async def test_sync_trigger_inside_a_running_loop(clock: FakeClock, anyio_backend: str) -> None:
    """trigger() called on a running loop runs sync and async callbacks (fresh loop, same kind)."""
    seen: list[str] = []

    async def cleanup() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(f"async:{_current_backend()}")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("sync", lambda: seen.append("sync"), priority=1)
    shutdown.register("async", cleanup, priority=2)
    results = shutdown.trigger()
    assert [r.status for r in results] == ["ok", "ok"]
    assert seen == ["sync", f"async:{anyio_backend}"]


@pytest.mark.anyio
async def test_atrigger_is_shielded_from_caller_cancellation(clock: FakeClock) -> None:
    """Cancelling the task that called atrigger() does not cut the callbacks short."""
    gate = anyio.Event()
    ran: list[str] = []

    async def slow() -> None:
        await gate.wait()
        ran.append("slow")

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("slow", slow)
    scopes: list[anyio.CancelScope] = []

    async def run() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await shutdown.atrigger()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        scopes[0].cancel()
        await anyio.wait_all_tasks_blocked()
        assert ran == []
        gate.set()
    assert scopes[0].cancel_called is True
    assert ran == ["slow"]
    assert summary(shutdown.results) == [("slow", "ok", 0.0)]


# -- overrun and budget on the loop ---------------------------------------------------------


@pytest.mark.anyio
async def test_async_callback_blocking_the_loop_is_reported_as_overrun(clock: FakeClock) -> None:
    """An async callback that blocks the loop 1 s on a 0.2 s limit is a 1.0 s timeout, not ok."""

    async def blocks_the_loop() -> None:
        clock.advance(1.0)  # a sync busy loop: time passes and no checkpoint comes

    shutdown = GracefulShutdown(clock=clock)
    shutdown.register("busy", blocks_the_loop, priority=1, timeout=0.2)
    shutdown.register("after", lambda: None, priority=2)
    results = await shutdown.atrigger()
    assert summary(results) == [("busy", "timeout", 1.0), ("after", "ok", 0.0)]


@pytest.mark.anyio
async def test_cancelled_callback_unwinds_before_the_next_one_starts(clock: FakeClock) -> None:
    """Cancelled at its 1 s limit, a callback ends its 2 s shielded close; then the next runs."""
    order: list[str] = []

    async def closes_slowly() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await clock.asleep(2)
            order.append("closed")

    shutdown = GracefulShutdown(timeout=30, clock=clock)
    shutdown.register("pool", closes_slowly, priority=1, timeout=1)
    shutdown.register("after", lambda: order.append("after"), priority=2)
    box: dict[str, tuple[CleanupResult, ...]] = {}

    async def run() -> None:
        box["results"] = await shutdown.atrigger()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        clock.advance(2)
        await anyio.wait_all_tasks_blocked()
    assert summary(box["results"]) == [("pool", "timeout", 3.0), ("after", "ok", 0.0)]
    assert order == ["closed", "after"]


@pytest.mark.anyio
async def test_callback_ignoring_cancellation_is_left_running_at_the_budget(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback shielding a 10 s wait: atrigger() returns at the 5 s budget, it ends later."""
    ended: list[float] = []

    async def stubborn() -> None:
        with anyio.CancelScope(shield=True):
            await clock.asleep(10)
        ended.append(clock.monotonic())

    shutdown = GracefulShutdown(timeout=5, clock=clock)
    shutdown.register("stubborn", stubborn, priority=1, timeout=1)
    shutdown.register("after", lambda: None, priority=2)
    box: dict[str, tuple[CleanupResult, ...]] = {}

    async def run() -> None:
        box["results"] = await shutdown.atrigger()

    with caplog.at_level(logging.WARNING, logger="seawall"):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            clock.advance(1)
            await anyio.wait_all_tasks_blocked()
            clock.advance(4)
            await anyio.wait_all_tasks_blocked()
            at_the_budget = (dict(box), list(ended))
            clock.advance(5)  # the callback's own wait ends: it finishes in the background
            await anyio.wait_all_tasks_blocked()
    results, ended_by_then = at_the_budget
    assert summary(results["results"]) == [("stubborn", "timeout", 5.0), ("after", "skipped", 0.0)]
    assert ended_by_then == []
    assert ended == [10.0]
    assert [r.getMessage() for r in caplog.records] == [
        "shutdown callback 'stubborn' ignored cancellation and is left running: "
        "the shutdown budget is spent",
        "shutdown callback 'stubborn' did not finish within its 1s limit (5.000s)",
        "shutdown callback 'after' skipped: the shutdown time budget is spent",
        "abandoned shutdown callback 'stubborn' has now ended",
    ]


# -- signals in this process (SIGUSR1, exit_on_signal=False) ---------------------------------


@pytest.fixture
def usr1_handler() -> Iterator[list[int]]:
    """A recording Python handler for SIGUSR1, restored to the original afterwards."""
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    original = signal.signal(signal.SIGUSR1, previous)
    try:
        yield calls
    finally:
        signal.signal(signal.SIGUSR1, original)


def test_signal_runs_callbacks_in_the_runner_and_chains(usr1_handler: list[int]) -> None:
    """A handled signal runs the callbacks off the handler and then calls the previous handler."""
    ran: list[str] = []
    shutdown = GracefulShutdown(signals=(signal.SIGUSR1,), exit_on_signal=False)
    shutdown.register("main-thread?", lambda: ran.append(threading.current_thread().name))
    previous = signal.getsignal(signal.SIGUSR1)
    shutdown.install()
    try:
        assert signal.getsignal(signal.SIGUSR1) is not previous
        signal.raise_signal(signal.SIGUSR1)
        assert shutdown.is_shutting_down is True
        assert shutdown.wait(timeout=60) is True
    finally:
        shutdown.uninstall()
    assert usr1_handler == [signal.SIGUSR1]
    assert ran == ["seawall-shutdown:main-thread?"]
    assert [r.status for r in shutdown.results] == ["ok"]
    assert signal.getsignal(signal.SIGUSR1) is previous


def test_context_manager_installs_then_runs_and_restores(usr1_handler: list[int]) -> None:
    """with installs the handlers; leaving the block runs the callbacks and restores them."""
    ran: list[str] = []
    previous = signal.getsignal(signal.SIGUSR1)
    with GracefulShutdown(signals=(signal.SIGUSR1,)) as shutdown:
        shutdown.register("cleanup", lambda: ran.append("cleanup"))
        assert shutdown.is_installed is True
        assert ran == []
    assert ran == ["cleanup"]
    assert shutdown.is_installed is False
    assert signal.getsignal(signal.SIGUSR1) is previous


def test_install_twice_or_off_the_main_thread_raises(usr1_handler: list[int]) -> None:
    """install() raises ShutdownError when already installed or called from another thread."""
    shutdown = GracefulShutdown(signals=(signal.SIGUSR1,))
    thread, box = in_thread(lambda: _error_of(shutdown.install))
    thread.join(30)
    assert isinstance(box["value"], ShutdownError)
    assert "main thread" in str(box["value"])
    assert shutdown.is_installed is False
    shutdown.install()
    try:
        with pytest.raises(ShutdownError, match="already installed"):
            shutdown.install()
    finally:
        shutdown.uninstall()
    shutdown.uninstall()  # idempotent
    assert shutdown.is_installed is False


def _error_of(fn: Callable[[], object]) -> BaseException | None:
    try:
        fn()
    except BaseException as exc:
        return exc
    return None


# -- real processes ------------------------------------------------------------------------


class Child:
    """A child process whose stdout lines arrive on a queue (so reads have a failure guard)."""

    def __init__(self, mode: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), mode, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, line: str) -> None:
        assert self.lines.get(timeout=60) == line

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for exit; return the status, the remaining stdout lines and stderr."""
        status = self.process.wait(timeout=60)
        rest: list[str] = []
        while (line := self.lines.get(timeout=60)) is not None:
            rest.append(line)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        with self.process.stdout, self.process.stderr:
            return status, rest, self.process.stderr.read()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    """Start children; any the test did not finish (it failed) is killed and reaped."""
    children: list[Child] = []

    def start(mode: str, *args: str) -> Child:
        children.append(Child(mode, *args))
        return children[-1]

    yield start
    for child in children:
        assert child.process.stdout is not None
        if not child.process.stdout.closed:
            child.process.kill()
            child.finish()


@pytest.mark.slow
def test_sigterm_runs_callbacks_in_order_chains_and_exits_143(
    spawn: Callable[[str], Child],
) -> None:
    """SIGTERM: the callbacks run in priority order, the old handler is chained, status 143."""
    child = spawn("ordered")
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    status, lines, stderr = child.finish()
    assert status == 143, stderr
    assert [line for line in lines if line.startswith("callback:")] == [
        f"callback:{name}" for name in EXPECTED
    ]
    assert lines.count("previous:15") == 1
    assert "wait returned" not in lines


@pytest.mark.slow
def test_a_slow_chained_handler_runs_to_its_end_before_the_callbacks(
    spawn: Callable[[str], Child],
) -> None:
    """The previous SIGTERM handler finishes before the runner starts (and so before the exit)."""
    child = spawn("slow-previous")
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    status, lines, stderr = child.finish()
    assert status == 143, stderr
    assert lines == ["previous:15"] + [f"callback:{name}" for name in EXPECTED]


@pytest.mark.slow
def test_sigint_exits_130_after_callbacks_without_keyboard_interrupt(
    spawn: Callable[[str], Child],
) -> None:
    """SIGINT runs the callbacks and exits 130, with no KeyboardInterrupt traceback."""
    child = spawn("ordered")
    child.expect("ready")
    child.process.send_signal(signal.SIGINT)
    status, lines, stderr = child.finish()
    assert status == 130, stderr
    assert lines == [f"callback:{name}" for name in EXPECTED]
    assert "KeyboardInterrupt" not in stderr


@pytest.mark.slow
def test_second_signal_during_a_hung_callback_exits_at_once(
    spawn: Callable[[str], Child],
) -> None:
    """A SIGINT while a callback hangs ends the process at once with 130; nothing else runs."""
    child = spawn("hang")
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    lines_before: list[str] = []
    while (line := child.lines.get(timeout=60)) != "hanging":
        lines_before.append(line)
    child.process.send_signal(signal.SIGINT)
    status, lines, stderr = child.finish()
    assert status == 130, stderr
    assert lines_before in ([], ["previous:15"])
    assert "callback:after" not in lines


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_in_an_async_app_runs_async_callbacks(
    spawn: Callable[[str], Child], backend: str
) -> None:
    """Installed from inside a running loop, SIGTERM runs async callbacks too and exits 143."""
    child = spawn(backend)
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    status, lines, stderr = child.finish()
    assert status == 143, stderr
    assert lines == [
        "callback:z",
        f"callback:async-on-{backend}",
        *[f"callback:{name}" for name in EXPECTED[1:]],
    ]


# -- the guide's arguments and a failed install (issue 17) -----------------------------------


def _runners() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "seawall-shutdown-runner"]


def test_failed_install_restores_the_handlers_and_closes_what_it_opened(
    usr1_handler: list[int],
) -> None:
    """install() with SIGKILL raises ShutdownError naming it; handlers, fds, threads unchanged."""
    shutdown = GracefulShutdown(signals=(signal.SIGUSR1, signal.SIGKILL), exit_on_signal=False)
    previous = signal.getsignal(signal.SIGUSR1)
    with no_collection():
        fds, runners = open_fds(), _runners()
        with pytest.raises(ShutdownError, match=r"cannot handle SIGKILL \(9\)") as caught:
            shutdown.install()
        assert (open_fds(), _runners()) == (fds, runners)
    assert isinstance(caught.value.__cause__, OSError)
    assert signal.getsignal(signal.SIGUSR1) is previous
    assert shutdown.is_installed is False
    signal.raise_signal(signal.SIGUSR1)
    assert (usr1_handler, shutdown.is_shutting_down) == ([signal.SIGUSR1], False)


def test_install_works_after_a_failed_install(usr1_handler: list[int]) -> None:
    """After a refused install, installing the same object's good signals handles them."""
    bad = GracefulShutdown(signals=(signal.SIGUSR1, signal.SIGSTOP), exit_on_signal=False)
    with pytest.raises(ShutdownError, match="SIGSTOP"):
        bad.install()
    good = GracefulShutdown(signals=(signal.SIGUSR1,), exit_on_signal=False)
    good.install()
    try:
        signal.raise_signal(signal.SIGUSR1)
        assert good.wait(timeout=60) is True
    finally:
        good.uninstall()
    assert usr1_handler == [signal.SIGUSR1]


def test_a_signal_listed_twice_is_restored_by_uninstall(usr1_handler: list[int]) -> None:
    """signals=(SIGUSR1, SIGUSR1): uninstall() restores the handler from before install()."""
    shutdown = GracefulShutdown(signals=(signal.SIGUSR1, signal.SIGUSR1), exit_on_signal=False)
    previous = signal.getsignal(signal.SIGUSR1)
    shutdown.install()
    shutdown.uninstall()
    # Listed twice without care, the second install would record seawall's own handler as
    # "previous" (and a signal would then chain the handler to itself and exit the process).
    assert signal.getsignal(signal.SIGUSR1) is previous


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"force_exit_code": "2"}, TypeError, "force_exit_code must be an int, got '2'"),
        ({"force_exit_code": True}, TypeError, "force_exit_code must be an int, got True"),
        ({"force_exit_code": 256}, ValueError, "force_exit_code must be from 0 to 255, got 256"),
        (
            {"force_exit_code": 2, "exit_on_signal": False},
            ValueError,
            "force_exit_code=2 needs exit_on_signal=True: without it seawall never ends the "
            "process",
        ),
    ],
)
def test_bad_force_exit_code_raises(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A force_exit_code that is not an exit status, or cannot apply, raises naming it."""
    with pytest.raises(error) as caught:
        GracefulShutdown(**kwargs)
    assert str(caught.value) == message


def test_cleanup_callback_takes_the_guides_is_async(clock: FakeClock) -> None:
    """CleanupCallback(..., is_async=False) works; left out, is_async is detected."""

    async def close() -> None:
        pass

    def flush() -> None:
        pass

    assert CleanupCallback("db", flush, 10, None, is_async=False).is_async is False
    assert CleanupCallback("db", close, 10, None, is_async=True).is_async is True
    assert CleanupCallback("db", close).is_async is True
    assert CleanupCallback("db", flush).is_async is False
    with pytest.raises(TypeError, match="is_async must be a bool or None, got 'yes'"):
        CleanupCallback("db", flush, is_async="yes")  # type: ignore[arg-type]


@pytest.mark.slow
def test_force_exit_code_is_the_status_after_a_signal(spawn: Callable[..., Child]) -> None:
    """GracefulShutdown(force_exit_code=2): SIGTERM runs the callbacks, then the status is 2."""
    child = spawn("ordered", "2")
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    status, lines, stderr = child.finish()
    assert status == 2, stderr
    assert [line for line in lines if line.startswith("callback:")] == [
        f"callback:{name}" for name in EXPECTED
    ]


@pytest.mark.slow
def test_force_exit_code_is_the_status_of_a_second_signal(spawn: Callable[..., Child]) -> None:
    """With force_exit_code=3, a SIGINT during a hung callback exits at once with 3."""
    child = spawn("hang", "3")
    child.expect("ready")
    child.process.send_signal(signal.SIGTERM)
    while child.lines.get(timeout=60) != "hanging":
        pass
    child.process.send_signal(signal.SIGINT)
    status, lines, stderr = child.finish()
    assert status == 3, stderr
    assert "callback:after" not in lines
