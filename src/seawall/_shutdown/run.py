"""Running one cleanup callback under a time limit, from a thread or from an event loop.

Theory of operation: a callback may be sync or async, and the only reliable way to tell is to
call it and look at the result (``inspect.iscoroutinefunction`` misses objects with an async
``__call__`` and lambdas returning coroutines). So:

* ``run_in_thread`` (the sync driver) calls the callback in a fresh *daemon* thread; if the
  result is awaitable it is awaited on a fresh event loop in that same thread. The caller waits
  on the clock up to the limit and then abandons the thread (a thread cannot be cancelled; being
  a daemon, it never holds up interpreter exit). An abandoned coroutine is cancelled on its loop.
* ``run_on_loop`` (the async driver) calls known-async callbacks on the running loop and awaits
  them in a detached task (``detach``); anything else runs in a daemon thread while
  the loop keeps serving, and an awaitable it returns is awaited back on the loop. At its limit
  an awaitable is cancelled and waited for until the total budget ends, no longer.
* A callback that finished, but after its limit (an async one that blocked the loop cannot be
  interrupted), is reported as a timeout with its real duration (``judged``).

Both return a :class:`CleanupResult`; neither raises for the callback's own errors.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from .._callables import is_async_callable
from .._clock import Clock
from .._log import logger
from .._wakeup import AsyncWaiter, _threadsafe_scheduler
from .detach import launch

__all__ = [
    "CleanupCallback",
    "CleanupResult",
    "is_async_callable",
    "judged",
    "run_in_thread",
    "run_on_loop",
]

Status = Literal["ok", "error", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class CleanupCallback:
    """One registered cleanup step. Lower ``priority`` runs first; ties run in registration order.

    ``timeout`` is this step's own limit in seconds (None: the shutdown's default, bounded by
    what is left of its total budget). ``is_async`` (the guide's field) says whether the
    callback is known to be async before it is called; left out, it is detected (objects with
    an async ``__call__`` count). Whatever it says, an awaitable result is always awaited.
    """

    name: str
    callback: Callable[[], Any]
    priority: int = 100
    timeout: float | None = None
    is_async: bool | None = None

    def __post_init__(self) -> None:
        if self.is_async is None:
            object.__setattr__(self, "is_async", is_async_callable(self.callback))
        elif not isinstance(self.is_async, bool):
            raise TypeError(f"is_async must be a bool or None, got {self.is_async!r}")


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What happened to one callback during a shutdown run.

    ``status`` is ``"ok"``, ``"error"`` (``error`` holds the exception), ``"timeout"`` (abandoned
    after its limit) or ``"skipped"`` (the total budget was used up before it started).
    ``duration`` is in seconds, on the shutdown's clock.
    """

    name: str
    status: Status
    duration: float
    error: BaseException | None = None


class _Box:
    """Hand-over between a worker thread and the waiter that may abandon it."""

    __slots__ = ("abandoned", "cancel", "error", "finished", "lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.abandoned = False
        self.value: object = None
        self.error: BaseException | None = None
        self.cancel: Callable[[], object] | None = None

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            cancel = self.cancel
        if cancel is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                cancel()


# -- sync driver ----------------------------------------------------------------------------


def run_in_thread(
    entry: CleanupCallback, limit: float, clock: Clock, backend: str
) -> CleanupResult:
    """Run ``entry`` in a daemon thread, waiting at most ``limit`` seconds on ``clock``."""
    box = _Box()
    done = threading.Event()
    started = clock.monotonic()
    thread = threading.Thread(
        target=_work,
        args=(entry.callback, box, done, backend),
        daemon=True,
        name=f"seawall-shutdown:{entry.name}",
    )
    thread.start()
    clock.wait_for(done, limit)
    elapsed = clock.monotonic() - started
    with box.lock:
        finished = box.finished
    if not finished:
        box.abandon()
        return CleanupResult(entry.name, "timeout", elapsed)
    if box.error is not None:
        return CleanupResult(entry.name, "error", elapsed, box.error)
    return CleanupResult(entry.name, "ok", elapsed)


def _work(callback: Callable[[], Any], box: _Box, done: threading.Event, backend: str) -> None:
    try:
        value = callback()
        if inspect.isawaitable(value):
            anyio.run(_drive, value, box, backend=backend)
    except BaseException as exc:  # a worker thread has no one else to report to
        box.error = exc
    finally:
        with box.lock:
            box.finished = True
        done.set()


async def _drive(awaitable: Awaitable[object], box: _Box) -> None:
    with anyio.CancelScope() as scope:
        schedule = _threadsafe_scheduler()
        with box.lock:
            if box.abandoned:
                _close(awaitable)
                return
            box.cancel = functools.partial(schedule, scope.cancel)
        await awaitable


def _close(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # a coroutine we will never await: close it rather than leak a warning


# -- async driver ---------------------------------------------------------------------------


async def run_on_loop(
    entry: CleanupCallback, limit: float, clock: Clock, deadline: float
) -> CleanupResult:
    """Run ``entry`` from the running loop, waiting at most ``limit`` seconds on ``clock``.

    An async callback still running at its limit is cancelled, and waited for until ``deadline``
    (the end of the total budget) at most: past that it is left running.
    """
    started = clock.monotonic()

    def result(status: Status, error: BaseException | None = None) -> CleanupResult:
        return CleanupResult(entry.name, status, clock.monotonic() - started, error)

    try:
        if entry.is_async:
            value: object = entry.callback()
        else:
            box = await _call_in_thread(entry, limit, clock)
            if not box.finished:
                return result("timeout")
            if box.error is not None:
                return result("error", box.error)
            value = box.value
        if inspect.isawaitable(value):
            remaining = limit - (clock.monotonic() - started)
            if not await _await_within(value, remaining, deadline, clock, entry.name):
                return result("timeout")
    except Exception as exc:
        return result("error", exc)
    return judged(result("ok"), limit)


def judged(result: CleanupResult, limit: float) -> CleanupResult:
    """``result``, turned into a timeout when the callback finished but past its limit.

    An async callback that blocks its loop (a sync busy loop, a blocking call) cannot be
    interrupted; it ends on its own, late, and is reported as overrun with its real duration.
    """
    if result.status == "ok" and result.duration > limit:
        return CleanupResult(result.name, "timeout", result.duration)
    return result


async def _call_in_thread(entry: CleanupCallback, limit: float, clock: Clock) -> _Box:
    box = _Box()
    waiter = AsyncWaiter()

    def work() -> None:
        try:
            box.value = entry.callback()
        except BaseException as exc:
            box.error = exc
        finally:
            with box.lock:
                box.finished = True
                abandoned = box.abandoned
            if abandoned:
                _close(box.value)
            with contextlib.suppress(RuntimeError):  # the loop may be gone if we were abandoned
                waiter.wake()

    threading.Thread(target=work, daemon=True, name=f"seawall-shutdown:{entry.name}").start()
    await clock.await_event(waiter.event, limit)
    with box.lock:
        if not box.finished:
            box.abandoned = True
    return box


async def _await_within(
    awaitable: Awaitable[object], limit: float, deadline: float, clock: Clock, name: str
) -> bool:
    """Await ``awaitable`` for ``limit``, then cancel it and wait until ``deadline`` at most.

    True if it finished within ``limit``. It runs as a detached task (see ``detach``)
    so that one which ignores cancellation cannot hold the caller past ``deadline``.
    """
    if limit <= 0:
        _close(awaitable)
        return False
    flight = launch(awaitable, name)
    await clock.await_event(flight.done, limit)
    finished = flight.done.is_set()
    if not finished:
        # Cancelled, a callback may still need time to unwind (a shielded close, say); it
        # gets what is left of the total budget, so the next callback still starts after it.
        flight.scope.cancel()
        grace = deadline - clock.monotonic()
        if grace > 0:
            await clock.await_event(flight.done, grace)
        if not flight.done.is_set():
            flight.abandoned = True
            logger.error(
                "shutdown callback %r ignored cancellation and is left running: "
                "the shutdown budget is spent",
                name,
            )
    if flight.error is not None:
        raise flight.error
    return finished
