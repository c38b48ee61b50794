"""Event-loop stall detection: how long the loop was blocked, and where.

Theory of operation
-------------------
A small task on the watched loop (the *beat*) stamps "the loop is alive" every ``interval``.
The shared monitor thread (:mod:`seawall._monitor`) checks the stamp when it could first be
``threshold`` old. If it is, the loop has not run the beat for that long: the monitor reads the
loop thread's current stack (``sys._current_frames()``) and reports a stall, once. When the
beat runs again it wakes the monitor, which reports the recovery with the total time the loop
failed to prove it was alive::

    ALIVE --(stamp >= threshold old)--> STALLED   report(recovered=False, stack)
    STALLED --(beat stamps again)-----> ALIVE     report(recovered=True, total duration)

``duration`` is measured between proofs of life, so it can exceed the real blocking time by up
to one ``interval``. Reports are logged under the ``seawall`` logger at WARNING and passed to
``on_stall`` in the monitor thread (the loop, being stuck, cannot run it).
"""

from __future__ import annotations

import inspect
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import anyio

from . import _monitor
from ._clock import SYSTEM_CLOCK, Clock
from ._core.validate import check_callable, check_number
from ._events import ACTIVE as _OBSERVED
from ._events import LoopStalled, emit
from ._log import logger
from ._monitor import LoopHandle

__all__ = ["LoopStallDetector", "LoopStallEvent"]


@dataclass(frozen=True, slots=True)
class LoopStallEvent:
    """One report of a stalled event loop."""

    duration: float  #: seconds the loop had not run the beat (so far, or in total if recovered)
    stack: str  #: the loop thread's stack when the stall was noticed, formatted
    thread_id: int  #: ``threading.get_ident()`` of the loop thread
    recovered: bool  #: False when the stall is noticed, True when the loop runs again


class LoopStallDetector:
    """Report when the current event loop is blocked for ``threshold`` seconds or more.

    ``async with LoopStallDetector(threshold=0.2, on_stall=cb):`` on asyncio or trio. The
    constructor starts nothing; entering starts the beat task and joins the monitor thread.
    ``on_stall(event)`` is a sync callable; it runs in the monitor thread.
    """

    def __init__(
        self,
        threshold: float = 0.2,
        on_stall: Callable[[LoopStallEvent], object] | None = None,
        *,
        interval: float | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._threshold = check_number("threshold", threshold)
        self._interval = check_number("interval", threshold / 4 if interval is None else interval)
        if self._interval >= self._threshold:
            raise ValueError(f"interval must be < threshold ({threshold!r}), got {interval!r}")
        if on_stall is not None and inspect.iscoroutinefunction(
            check_callable("on_stall", on_stall)
        ):
            raise TypeError(
                f"on_stall must be a sync callable (the loop is stuck), got {on_stall!r}"
            )
        self._on_stall = on_stall
        self._name = name if name is not None else "event loop"
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._state = threading.Lock()  # guards _stamp and _stalled_since; never held long
        self._polling = threading.Lock()  # one poll at a time: the monitor's, or the last one
        self._stamp = 0.0
        self._stalled_since: float | None = None
        self._stack = ""
        self._thread_id = 0
        self._running = False
        self._stalls = 0
        self._stop = anyio.Event()
        self._done = anyio.Event()

    @property
    def stalls_total(self) -> int:
        """How many stalls were reported since the detector was made."""
        return self._stalls

    async def __aenter__(self) -> LoopStallDetector:
        if self._running:
            raise RuntimeError(f"stall detector {self._name!r} is already running")
        self._thread_id = threading.get_ident()
        self._stop, self._done = anyio.Event(), anyio.Event()
        with self._state:
            self._stamp, self._stalled_since = self._clock.monotonic(), None
        self._running = True
        LoopHandle().start_task_here(self._beat(), f"stall detector {self._name!r}")
        _monitor.watch(self._clock, self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        now = self._clock.monotonic()
        self._alive(now)
        _monitor.unwatch(self._clock, self)
        with self._polling:  # report a recovery the monitor has not reported yet
            if self._running:
                self._check(now)
            self._running = False

    async def _beat(self) -> None:
        try:
            while not self._stop.is_set():
                await self._clock.await_event(self._stop, self._interval)
                self._alive(self._clock.monotonic())
        finally:
            self._done.set()

    def _alive(self, now: float) -> None:
        with self._state:
            self._stamp = now
            stalled = self._stalled_since is not None
        if stalled:
            _monitor.wake(self._clock)

    def poll(self, now: float) -> float | None:
        """Called by the monitor thread: report a new stall or a recovery."""
        with self._polling:
            return self._check(now) if self._running else None

    def _check(self, now: float) -> float | None:
        with self._state:
            stamp, since = self._stamp, self._stalled_since
            verdict = _verdict(stamp, since, now, self._threshold)
            if verdict != "still":
                self._stalled_since = stamp if verdict == "stalled" else None
        if verdict == "stalled":
            self._stack = _stack_of(self._thread_id)
            self._stalls += 1
            self._report(LoopStallEvent(now - stamp, self._stack, self._thread_id, False))
        elif verdict == "recovered":
            assert since is not None
            self._report(LoopStallEvent(stamp - since, self._stack, self._thread_id, True))
        # While stalled, only the beat (waking the monitor) can change anything.
        return None if verdict in ("stalled", "still") else stamp + self._threshold

    def _report(self, event: LoopStallEvent) -> None:
        if event.recovered:
            logger.warning("%s ran again after %.3f s blocked", self._name, event.duration)
        else:
            logger.warning(
                "%s blocked for %.3f s (threshold %g s); its thread is at:\n%s",
                self._name,
                event.duration,
                self._threshold,
                event.stack,
            )
        if _OBSERVED:
            emit(LoopStalled(self._name, event.duration, event.recovered, event.stack))
        if self._on_stall is not None:
            try:
                self._on_stall(event)
            except Exception:
                logger.exception("stall detector %r: on_stall raised", self._name)


def _verdict(stamp: float, since: float | None, now: float, threshold: float) -> str:
    """Pure core: "alive", "stalled" (newly), "still" (stalled) or "recovered"."""
    if since is None:
        return "stalled" if now - stamp >= threshold else "alive"
    return "recovered" if stamp > since else "still"


def _stack_of(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "<thread not found>\n"
    return "".join(traceback.format_stack(frame))
