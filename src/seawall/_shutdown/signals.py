"""Signal handling for GracefulShutdown: a handler that only hands off, and a runner thread.

Theory of operation: Python runs signal handlers on the main thread between bytecodes, in the
middle of whatever the main thread was doing (possibly inside the event loop, possibly holding a
lock a cleanup callback needs). So the handler does no work: it writes the signal number to a
pipe (no locks, safe at any moment) after calling the handler that was installed before it. A
daemon runner thread blocked on that pipe wakes up and does the work (runs the callbacks, then
exits the process). A signal that arrives once shutdown has begun ends the process at once.

The runner and the handler are wired to the owner through two plain callables, so this module
knows nothing about callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .._errors import ShutdownError

__all__ = ["SignalRelay", "exit_now"]

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def exit_now(status: int) -> None:
    """Flush what can be flushed and end the process with ``status``, skipping everything else."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    with contextlib.suppress(Exception):
        for handler in logging.getLogger().handlers + logging.getLogger("seawall").handlers:
            handler.flush()
    os._exit(status)


class SignalRelay:
    """Install handlers for ``signals`` that relay them to ``on_signal`` in a runner thread.

    ``is_shutting_down()`` is asked inside the handler: when it is already True, the process
    exits at once with ``exit_status(signum)`` (default ``128 + signum``); otherwise
    ``mark_requested()`` is called, the runner is woken, and the previous Python handler (if
    any) is chained.
    """

    def __init__(
        self,
        signals: tuple[signal.Signals, ...],
        *,
        is_shutting_down: Callable[[], bool],
        mark_requested: Callable[[], None],
        on_signal: Callable[[int], None],
        exit_status: Callable[[int], int] = lambda signum: 128 + signum,
    ) -> None:
        self._signals = signals
        self._exit_status = exit_status
        self._is_shutting_down = is_shutting_down
        self._mark_requested = mark_requested
        self._on_signal = on_signal
        self._previous: dict[int, _Handler] = {}
        self._pipe: tuple[int, int] | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise ShutdownError(
                "GracefulShutdown.install() must be called from the main thread "
                "(Python delivers signals to the main thread only)"
            )
        read_fd, write_fd = os.pipe()
        self._pipe = (read_fd, write_fd)
        # All or nothing: a signal that cannot be handled (SIGKILL, SIGSTOP) must not leave the
        # earlier ones bound to a handler whose runner never started, nor the pipe open.
        try:
            for sig in self._signals:
                self._previous[sig] = _bind(sig, self._handle)
            threading.Thread(
                target=self._runner, args=(read_fd,), name="seawall-shutdown-runner", daemon=True
            ).start()
        except BaseException:
            self._restore()
            os.close(read_fd)
            os.close(write_fd)
            self._pipe = None
            raise

    def uninstall(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise ShutdownError("GracefulShutdown.uninstall() must be called from the main thread")
        self._restore()
        if self._pipe is not None:
            os.close(self._pipe[1])  # the runner reads EOF and ends
            self._pipe = None

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._is_shutting_down():
            exit_now(self._exit_status(signum))
        self._mark_requested()
        previous = self._previous.get(signum)
        try:
            # default_int_handler would raise KeyboardInterrupt mid-cleanup: that is the
            # behaviour we replace, so only handlers someone installed on purpose are chained.
            # They run before the runner is woken: once it is, the callbacks may finish and
            # the process exit before this thread is scheduled again, skipping the chain.
            if callable(previous) and previous is not signal.default_int_handler:
                previous(signum, frame)
        finally:
            if self._pipe is not None:
                os.write(self._pipe[1], bytes([signum]))

    def _runner(self, read_fd: int) -> None:
        try:
            data = os.read(read_fd, 1)
        finally:
            os.close(read_fd)
        if data:
            self._on_signal(data[0])


def _bind(sig: signal.Signals, handler: Callable[[int, FrameType | None], Any]) -> _Handler:
    """Install ``handler`` for ``sig``; ShutdownError naming the signal when it cannot be."""
    try:
        return signal.signal(sig, handler)
    except (OSError, ValueError) as exc:
        raise ShutdownError(
            f"cannot handle {sig.name} ({int(sig)}): {exc}; no handler was installed "
            "(remove it from signals=)"
        ) from exc
