"""Heartbeat: a file that says "this process is alive", rewritten every ``interval``.

Theory of operation: the process writes its state (time, pid, host, metadata) right at
``start()`` and then every ``interval`` seconds, from a daemon thread (``start``/``stop``,
``with``) or from a task on the running event loop (``astart``/``astop``, ``async with``). The
async driver beats *from the loop*, so a blocked event loop stops the beats and a monitor
notices: that is the point of a liveness signal. Each write is atomic and never follows a
symlink (see ``_heartbeat_file``). A clean stop writes a last state marked ``stopped``.

States::

    idle --start()/astart()--> running --stop()/astop()--> idle   (file says "stopped")

A failed write in the background is logged under ``seawall`` and counted (``failures``,
``last_error``); the loop keeps beating. The first beat in ``start()``/``astart()`` raises
``HeartbeatError`` instead, so a wrong path is found at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio

from ._clock import SYSTEM_CLOCK, Clock
from ._core.validate import check_number
from ._errors import HeartbeatError
from ._heartbeat_file import HeartbeatState, format_timestamp, read_state, write_state
from ._log import logger
from .config import current

__all__ = ["Heartbeat", "HeartbeatState"]


def next_due(previous: float, interval: float, now: float) -> float:
    """When the next beat is due: one interval after the last due time, skipping missed ones."""
    due = previous + interval
    return due if due > now else now + interval


class Heartbeat:
    """Write a liveness file for external monitors (container probes, supervisors)."""

    def __init__(
        self,
        state_file: str | os.PathLike[str],
        *,
        interval: float | None = None,
        metadata: dict[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(state_file, str | os.PathLike):
            raise TypeError(f"state_file must be a path, got {state_file!r}")
        self._path = Path(state_file)
        # Left out, it comes from seawall.config (heartbeat.interval, 10 s unless configured).
        self._interval = check_number(
            "interval", current().heartbeat.interval if interval is None else interval
        )
        self._metadata = _check_metadata(metadata)
        self._clock = clock or SYSTEM_CLOCK
        self._write_lock = threading.Lock()
        self._mode: Literal["thread", "task"] | None = None
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._astop: anyio.Event | None = None  # made on the loop, in astart()
        self._beats = 0
        self._failures = 0
        self._last_error: HeartbeatError | None = None
        self._shut = False

    # -- read-only views ------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self._path

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata dict, kept by reference: changes show in the next beat."""
        return self._metadata

    @property
    def is_running(self) -> bool:
        return self._mode is not None

    @property
    def beats(self) -> int:
        """Successful writes so far (including the stop marker)."""
        return self._beats

    @property
    def failures(self) -> int:
        """Failed writes so far."""
        return self._failures

    @property
    def last_error(self) -> HeartbeatError | None:
        """The most recent write failure, or None."""
        return self._last_error

    # -- beating --------------------------------------------------------------------------

    def beat(self, *, stopped: bool = False) -> HeartbeatState:
        """Write the state now and return it; HeartbeatError when the write fails."""
        state = HeartbeatState(
            timestamp=format_timestamp(self._clock.time()),
            pid=os.getpid(),
            hostname=socket.gethostname(),
            metadata=self._metadata,
            stopped=stopped,
        )
        with self._write_lock:
            try:
                write_state(self._path, state)
            except HeartbeatError as exc:
                self._failures += 1
                self._last_error = exc
                raise
            self._beats += 1
        return state

    async def abeat(self, *, stopped: bool = False) -> HeartbeatState:
        """Like :meth:`beat`, writing from a worker thread so the event loop never blocks."""
        return await anyio.to_thread.run_sync(lambda: self.beat(stopped=stopped))

    def _beat_logged(self, *, stopped: bool = False) -> None:
        try:
            self.beat(stopped=stopped)
        except HeartbeatError as exc:
            logger.warning("heartbeat write failed (will retry next interval): %s", exc)

    async def _abeat_logged(self, *, stopped: bool = False) -> None:
        try:
            await self.abeat(stopped=stopped)
        except HeartbeatError as exc:
            logger.warning("heartbeat write failed (will retry next interval): %s", exc)

    # -- thread driver --------------------------------------------------------------------

    def start(self) -> None:
        """Beat now, then every ``interval`` from a daemon thread."""
        self._claim("thread")
        try:
            self.beat()
        except BaseException:
            self._mode = None
            raise
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run_thread, name=f"seawall-heartbeat:{self._path.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and mark the file stopped. Idempotent."""
        if self._mode is None:
            return
        if self._mode == "task":
            raise HeartbeatError("this heartbeat was started with astart(); stop it with astop()")
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        self._mode = None
        self._beat_logged(stopped=True)

    def _run_thread(self) -> None:
        due = self._clock.monotonic() + self._interval
        while True:
            self._wake.clear()
            if self._stopping:
                return
            delay = due - self._clock.monotonic()
            if delay > 0:
                self._clock.wait_for(self._wake, delay)
            if self._stopping:
                return
            if self._clock.monotonic() < due:
                continue  # woken early (a fake clock, or a spurious wake): wait the rest
            self._beat_logged()
            due = next_due(due, self._interval, self._clock.monotonic())

    # -- task driver ----------------------------------------------------------------------

    async def astart(self) -> None:
        """Beat now, then every ``interval`` from a task on the running loop (asyncio or trio).

        The task lives in a task group this heartbeat opens here and closes in
        :meth:`astop`, so ``astart``/``astop`` must be called from the same task and nest
        like a block; ``async with heartbeat:`` does exactly that.
        """
        self._claim("task")
        try:
            await self.abeat()
            self._stopping = False
            self._astop = anyio.Event()
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        except BaseException:
            self._mode = None
            raise
        self._task_group = task_group
        task_group.start_soon(self._run_task, name=f"seawall-heartbeat:{self._path.name}")

    async def astop(self) -> None:
        """Stop the beating task and mark the file stopped. Idempotent."""
        if self._mode is None:
            return
        if self._mode == "thread":
            raise HeartbeatError("this heartbeat was started with start(); stop it with stop()")
        self._stopping = True
        if self._astop is not None:
            self._astop.set()
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                await task_group.__aexit__(None, None, None)
        finally:
            self._mode = None
            with anyio.CancelScope(shield=True):
                await self._abeat_logged(stopped=True)

    async def _run_task(self) -> None:
        assert self._astop is not None
        due = self._clock.monotonic() + self._interval
        while not self._stopping:
            delay = due - self._clock.monotonic()
            if delay > 0:
                await self._clock.await_event(self._astop, delay)
            if self._stopping:
                return
            if self._clock.monotonic() < due:
                continue
            await self._abeat_logged()
            due = next_due(due, self._interval, self._clock.monotonic())

    # -- the guide's shutdown -------------------------------------------------------------

    @property
    def is_shutdown(self) -> bool:
        """True once :meth:`shutdown` or :meth:`ashutdown` has run: no later start is allowed."""
        return self._shut

    def shutdown(self) -> None:
        """Stop for good (the guide's name): :meth:`stop`, then refuse any later start."""
        self.stop()
        self._shut = True

    async def ashutdown(self) -> None:
        """:meth:`shutdown` for async code; it stops either driver without blocking the loop."""
        if self._mode == "thread":
            await anyio.to_thread.run_sync(self.stop)
        else:
            await self.astop()
        self._shut = True

    def _claim(self, mode: Literal["thread", "task"]) -> None:
        if self._shut:
            raise HeartbeatError("Heartbeat is shut down: build a new one to beat again")
        if self._mode is not None:
            raise HeartbeatError("Heartbeat is already running")
        self._mode = mode

    # -- context managers -----------------------------------------------------------------

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Heartbeat:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- monitors -------------------------------------------------------------------------

    @staticmethod
    def read_state(path: str | os.PathLike[str]) -> HeartbeatState | None:
        """The state in ``path``, or None if it is missing, unreadable or malformed."""
        return read_state(path)

    @staticmethod
    def is_alive(
        path: str | os.PathLike[str], max_age: float = 30.0, *, clock: Clock | None = None
    ) -> bool:
        """True when ``path`` holds a beat at most ``max_age`` seconds old, not stopped.

        A timestamp in the future (clock skew between hosts) counts as alive.
        """
        limit = check_number("max_age", max_age)
        state = read_state(path)
        if state is None or state.stopped:
            return False
        return state.age((clock or SYSTEM_CLOCK).time()) <= limit

    def __repr__(self) -> str:
        status = "running" if self._mode else "idle"
        return f"Heartbeat({str(self._path)!r}, interval={self._interval!r}, {status})"


def _check_metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {metadata!r}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable, got {metadata!r}: {exc}") from exc
    return metadata
