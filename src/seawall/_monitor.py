"""The monitor thread shared by every watchdog and stall detector.

Theory of operation
-------------------
A watchdog must fire even when the event loop it watches is blocked, so the thing that notices
a missed deadline cannot be a task on that loop: it is an OS thread. One thread per clock (in
production, one thread for the whole process: everything uses ``SYSTEM_CLOCK``) serves every
active *watch*. A watch is any object with ``poll(now) -> next_deadline | None``: the monitor
calls it, the watch acts on whatever is due (fires callbacks, reports stalls) and says when it
next wants to be polled, or ``None`` when only an outside event (a ping) can make it due again.

The thread sleeps until the earliest deadline through ``clock.wait_for(wake, timeout)``, so a
``FakeClock`` controls it like any other sleeper; there is no polling tick. Anything that makes
a deadline earlier (a watch added, a fired watchdog re-armed by a ping) sets ``wake``. The thread
starts lazily with the first watch and ends when the last one is removed.

:func:`settle` is the test handshake: it returns once the monitor has polled every watch at the
clock's current time, so a test can ``advance`` a fake clock, ``settle`` and then assert.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from ._clock import Clock
from ._log import logger

__all__ = ["LoopHandle", "Watch", "settle", "unwatch", "wake", "watch"]


class Watch(Protocol):
    """Something the monitor polls."""

    def poll(self, now: float) -> float | None:
        """Act on what is due at ``now``; return when to poll next (``None``: when woken)."""
        ...


class _Monitor:
    """One daemon thread polling the watches of one clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.watches: dict[Watch, None] = {}  # an ordered set: O(1) removal
        self.cond = threading.Condition()
        self.wake = threading.Event()
        self.requested = 0  # settle() requests made ...
        self.served = 0  # ... and the latest one a completed pass has seen
        self.retired = False
        self.thread = threading.Thread(target=self._run, name="seawall-monitor", daemon=True)

    def _run(self) -> None:
        while self._pass():
            pass

    def _pass(self) -> bool:
        """Poll every watch once, then wait; return False when the monitor retires."""
        with self.cond:
            # Clear before reading the time: a wake that arrives during the pass is kept.
            self.wake.clear()
            watches = list(self.watches)
            seen = self.requested
        if not watches and _retire(self):
            return False
        now = self.clock.monotonic()
        deadlines = [d for w in watches if (d := _poll(w, now)) is not None]
        with self.cond:
            self.served = seen
            self.cond.notify_all()
        earliest = min(deadlines, default=None)
        timeout = None if earliest is None else earliest - self.clock.monotonic()
        if timeout is None or timeout > 0:
            self.clock.wait_for(self.wake, timeout)
        return True


def _poll(w: Watch, now: float) -> float | None:
    try:
        return w.poll(now)
    except Exception:
        # A broken watch must not take the others down with the thread.
        logger.exception("seawall monitor: polling %r failed", w)
        return None


_MONITORS: dict[int, _Monitor] = {}
_REGISTRY = threading.Lock()  # taken before any monitor's own condition, never after


def _retire(monitor: _Monitor) -> bool:
    with _REGISTRY, monitor.cond:
        if monitor.watches:
            return False
        _MONITORS.pop(id(monitor.clock), None)
        monitor.retired = True
        monitor.cond.notify_all()
        return True


def watch(clock: Clock, w: Watch) -> None:
    """Start polling ``w`` on ``clock``'s monitor, starting that monitor if needed."""
    with _REGISTRY:
        monitor = _MONITORS.get(id(clock))
        fresh = monitor is None
        if monitor is None:
            monitor = _MONITORS[id(clock)] = _Monitor(clock)
        with monitor.cond:
            monitor.watches[w] = None
            monitor.wake.set()
        if fresh:
            monitor.thread.start()


def unwatch(clock: Clock, w: Watch) -> None:
    """Stop polling ``w``; the monitor retires by itself when nothing is left to poll."""
    with _REGISTRY:
        monitor = _MONITORS.get(id(clock))
        if monitor is None:
            return
        with monitor.cond:
            monitor.watches.pop(w, None)
            monitor.wake.set()


def wake(clock: Clock) -> None:
    """Make ``clock``'s monitor poll again now (a deadline moved earlier)."""
    monitor = _MONITORS.get(id(clock))
    if monitor is not None:
        monitor.wake.set()


def monitor_thread(clock: Clock) -> threading.Thread | None:
    """The thread serving ``clock``, if one is running (for tests and diagnostics)."""
    monitor = _MONITORS.get(id(clock))
    return None if monitor is None else monitor.thread


def settle(clock: Clock, timeout: float = 5.0) -> None:
    """Block until ``clock``'s monitor has polled every watch at the current time.

    A handshake for tests: after ``clock.advance(...)``, ``settle(clock)`` returns once every
    sync callback that became due has run. ``timeout`` is in real seconds and only guards
    against a hung test; exceeding it raises ``AssertionError``.
    """
    monitor = _MONITORS.get(id(clock))
    if monitor is None:
        return
    with monitor.cond:
        monitor.requested += 1
        target = monitor.requested
        monitor.wake.set()
        done = monitor.cond.wait_for(lambda: monitor.served >= target or monitor.retired, timeout)
    if not done:
        raise AssertionError(f"the seawall monitor did not settle within {timeout} s")


_Spawn = Callable[[Coroutine[Any, Any, None]], object]


class LoopHandle:
    """The event loop that made this handle, reachable from any thread without blocking.

    The monitor thread must never wait for the loop (the loop may be the thing that is
    stuck), and must never start a second loop: it hands work to the loop's own thread-safe
    entry (``call_soon_threadsafe`` on asyncio, ``TrioToken.run_sync_soon`` on trio) and
    returns at once.
    """

    __slots__ = ("_call_soon", "_spawn", "thread_id")

    def __init__(self) -> None:
        """Capture the running loop; call from inside it (asyncio or trio)."""
        self.thread_id = threading.get_ident()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Not on asyncio, so on trio (the only other anyio backend).
            import trio

            self._call_soon: Callable[[Callable[[], object]], object] = (
                trio.lowlevel.current_trio_token().run_sync_soon
            )
            self._spawn: _Spawn = _trio_spawner()
        else:
            self._call_soon = loop.call_soon_threadsafe
            self._spawn = _asyncio_spawner(loop)

    def call_soon(self, fn: Callable[[], object]) -> bool:
        """Run ``fn()`` on the loop thread soon; False if the loop has already finished."""
        try:
            self._call_soon(fn)
        except RuntimeError:  # asyncio: loop closed; trio: RunFinishedError
            return False
        return True

    def start_task(self, awaitable: Awaitable[Any], what: str) -> bool:
        """Await ``awaitable`` in a new task on the loop; exceptions are logged as ``what``."""
        scheduled = self.call_soon(lambda: self.start_task_here(awaitable, what))
        if not scheduled and asyncio.iscoroutine(awaitable):
            awaitable.close()  # never awaited, on purpose
        return scheduled

    def start_task_here(self, awaitable: Awaitable[Any], what: str) -> None:
        """Like :meth:`start_task`, called on the loop thread itself: the task exists on return."""
        self._spawn(_guarded(awaitable, what))


async def _guarded(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("seawall: %s raised", what)


def _asyncio_spawner(
    loop: asyncio.AbstractEventLoop,
) -> _Spawn:
    tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks

    def spawn(coro: Coroutine[Any, Any, None]) -> object:
        task = loop.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    return spawn


def _trio_spawner() -> _Spawn:
    import trio

    async def run(coro: Coroutine[Any, Any, None]) -> None:
        await coro

    # A system task outlives the caller's nursery, like a task asyncio.create_task makes; it
    # never raises (_guarded logs), which a trio system task must not do.
    return lambda coro: trio.lowlevel.spawn_system_task(run, coro)
