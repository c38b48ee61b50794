"""GracefulShutdown: run registered cleanup callbacks once, in order, within a time budget.

Theory of operation::

    idle --trigger()/atrigger()/signal--> running --all callbacks settled--> done

* Callbacks run one after another, lowest ``priority`` first, ties in registration order.
  Each gets a limit: its own ``timeout`` (else ``default_callback_timeout``), never more than
  what is left of the total ``timeout``. A callback that overruns is abandoned (async: cancelled,
  then waited for until the budget ends at most) and logged as a timeout with its real duration;
  one that raises is logged with its traceback; either way the next one runs. Callbacks whose
  turn comes after the budget is spent are skipped (and logged).
* ``trigger()`` (sync) runs every callback in a daemon worker thread, and awaits async ones on
  a fresh event loop in that thread, so it works from plain code and from inside a running loop
  (it blocks the caller until done). ``await atrigger()`` runs async callbacks on the *running*
  loop and sync ones in worker threads, so the loop keeps serving. Both are idempotent: a second
  call waits for the first run and returns its results.
* ``install()`` (main thread only) relays SIGTERM/SIGINT to a runner thread, which runs the
  callbacks like ``trigger()`` and then ends the process with ``128 + signum`` (143 for SIGTERM,
  130 for SIGINT; ``force_exit_code`` replaces it) unless ``exit_on_signal=False``. A signal
  during shutdown exits at once, with the same status. ``install()`` is all or nothing: a
  signal that cannot be handled raises ShutdownError and leaves everything as it was.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio

from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_callable, check_number, check_optional_number
from .._errors import ShutdownError
from .._log import logger
from .._wakeup import AsyncWaiter, SyncWaiter, Waiter
from ..config import current
from .run import CleanupCallback, CleanupResult, judged, run_in_thread, run_on_loop
from .signals import SignalRelay, exit_now

__all__ = ["CleanupCallback", "CleanupResult", "GracefulShutdown", "limit_for"]


class _Unset:
    """The type of UNSET: "not given", where None is a meaningful value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


Results = tuple[CleanupResult, ...]
W = TypeVar("W", SyncWaiter, AsyncWaiter)


def limit_for(own: float | None, default: float | None, remaining: float) -> float | None:
    """A callback's time limit, or None when the budget is spent and it must be skipped."""
    if remaining <= 0:
        return None
    wanted = own if own is not None else default
    return remaining if wanted is None else min(wanted, remaining)


class GracefulShutdown:
    """Priority-ordered cleanup on SIGTERM/SIGINT or on demand, for sync and async code."""

    def __init__(
        self,
        *,
        timeout: float | None = None,
        default_callback_timeout: float | _Unset | None = UNSET,
        signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
        exit_on_signal: bool = True,
        force_exit_code: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Left out, both come from seawall.config (shutdown.timeout, shutdown.default_timeout).
        settings = current().shutdown
        self._timeout = check_number("timeout", settings.timeout if timeout is None else timeout)
        if isinstance(default_callback_timeout, _Unset):
            default_callback_timeout = settings.default_timeout
        self._default_timeout = check_optional_number(
            "default_callback_timeout", default_callback_timeout
        )
        self._signals = _check_signals(signals)
        self._exit_on_signal = bool(exit_on_signal)
        self._force_exit_code = _check_exit_code(force_exit_code, self._exit_on_signal)
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._callbacks: dict[str, CleanupCallback] = {}
        self._phase: Literal["idle", "running", "done"] = "idle"
        self._requested = False
        self._results: Results = ()
        self._waiters: list[Waiter] = []
        self._relay: SignalRelay | None = None
        self._backend = "asyncio"

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        callback: Callable[[], Any],
        *,
        priority: int = 100,
        timeout: float | None = None,
    ) -> CleanupCallback:
        """Add a cleanup step; ShutdownError on a duplicate name or once shutdown has begun."""
        entry = _make_entry(name, callback, priority, timeout)
        with self._lock:
            if self._requested:
                raise ShutdownError(f"cannot register {name!r}: shutdown has already begun")
            if name in self._callbacks:
                raise ShutdownError(f"a shutdown callback named {name!r} is already registered")
            self._callbacks[name] = entry
        return entry

    def unregister(self, name: str) -> bool:
        """Remove the step called ``name``; False if there was none."""
        with self._lock:
            return self._callbacks.pop(name, None) is not None

    @property
    def callbacks(self) -> tuple[CleanupCallback, ...]:
        """The registered steps in the order they will run."""
        with self._lock:
            return tuple(sorted(self._callbacks.values(), key=lambda entry: entry.priority))

    # -- state ----------------------------------------------------------------------------

    @property
    def is_shutting_down(self) -> bool:
        """True from the moment shutdown is requested (signal or trigger) onwards."""
        return self._requested

    @property
    def is_installed(self) -> bool:
        return self._relay is not None

    @property
    def results(self) -> Results:
        """The finished run's results, in run order (empty until shutdown is complete)."""
        return self._results

    @property
    def timeout(self) -> float:
        return self._timeout

    # -- running --------------------------------------------------------------------------

    def trigger(self) -> Results:
        """Run every callback once (blocking) and return their results; idempotent."""
        plan = self._begin("trigger() called")
        if plan is None:
            self.wait()
            return self._results
        return self._finish(self._run_sync(plan, _current_backend()))

    async def atrigger(self) -> Results:
        """Run every callback once from the running loop and return their results; idempotent.

        The run is shielded from cancellation of the caller: the total budget bounds it.
        """
        plan = self._begin("atrigger() called")
        if plan is None:
            await self.await_shutdown()
            return self._results
        with anyio.CancelScope(shield=True):
            results = await self._run_async(plan)
        return self._finish(results)

    def _begin(self, reason: str) -> tuple[CleanupCallback, ...] | None:
        with self._lock:
            self._requested = True
            if self._phase != "idle":
                return None
            self._phase = "running"
        plan = self.callbacks
        logger.info("shutdown started (%s): %d callbacks", reason, len(plan))
        return plan

    def _run_sync(self, plan: tuple[CleanupCallback, ...], backend: str) -> Results:
        deadline = self._clock.monotonic() + self._timeout
        results = []
        for entry in plan:
            remaining = deadline - self._clock.monotonic()
            limit = limit_for(entry.timeout, self._default_timeout, remaining)
            if limit is None:
                result = CleanupResult(entry.name, "skipped", 0.0)
            else:
                result = judged(run_in_thread(entry, limit, self._clock, backend), limit)
            results.append(_logged(result, limit))
        return tuple(results)

    async def _run_async(self, plan: tuple[CleanupCallback, ...]) -> Results:
        deadline = self._clock.monotonic() + self._timeout
        results = []
        for entry in plan:
            remaining = deadline - self._clock.monotonic()
            limit = limit_for(entry.timeout, self._default_timeout, remaining)
            if limit is None:
                result = CleanupResult(entry.name, "skipped", 0.0)
            else:
                result = await run_on_loop(entry, limit, self._clock, deadline)
            results.append(_logged(result, limit))
        return tuple(results)

    def _finish(self, results: Results, *, publish: bool = True) -> Results:
        failed = sum(result.status != "ok" for result in results)
        logger.info("shutdown finished: %d ok, %d not ok", len(results) - failed, failed)
        if publish:
            with self._lock:
                self._results = results
                self._phase = "done"
                waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.wake()
        return results

    # -- waiting --------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until shutdown is complete or ``timeout`` passes; True if complete."""
        limit = check_optional_number("timeout", timeout, inclusive=True)
        waiter = self._enqueue(SyncWaiter()) if limit is None or limit > 0 else None
        if waiter is not None:
            self._clock.wait_for(waiter.event, limit)
        return self._settle(waiter)

    async def await_shutdown(self, timeout: float | None = None) -> bool:
        """Wait until shutdown is complete or ``timeout`` passes; True if complete."""
        limit = check_optional_number("timeout", timeout, inclusive=True)
        waiter = self._enqueue(AsyncWaiter()) if limit is None or limit > 0 else None
        if waiter is not None:
            await self._clock.await_event(waiter.event, limit)
        return self._settle(waiter)

    def _enqueue(self, waiter: W) -> W | None:
        with self._lock:
            if self._phase == "done":
                return None
            self._waiters.append(waiter)
            return waiter

    def _settle(self, waiter: Waiter | None) -> bool:
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return self._phase == "done"

    # -- signals --------------------------------------------------------------------------

    def install(self) -> None:
        """Handle the configured signals (main thread only); ShutdownError if installed."""
        if self._relay is not None:
            raise ShutdownError("signal handlers are already installed")
        relay = SignalRelay(
            self._signals,
            is_shutting_down=lambda: self._requested,
            mark_requested=self._mark_requested,
            on_signal=self._on_signal,
            exit_status=self._exit_status,
        )
        relay.install()
        self._relay = relay
        self._backend = _current_backend()

    def uninstall(self) -> None:
        """Restore the handlers that were installed before. Idempotent."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.uninstall()

    def _mark_requested(self) -> None:
        self._requested = True  # a plain store: this runs inside a signal handler

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        plan = self._begin(f"received {name}")
        if plan is None:
            self.wait()  # a run was already under way: let it finish
        else:
            # When the process is about to exit, waiters are not woken: a main thread that
            # returned from wait() could otherwise exit 0 before we exit with 128 + signum.
            self._finish(self._run_sync(plan, self._backend), publish=not self._exit_on_signal)
        if self._exit_on_signal:
            status = self._exit_status(signum)
            logger.info("exiting with status %d after %s", status, name)
            exit_now(status)

    def _exit_status(self, signum: int) -> int:
        return 128 + signum if self._force_exit_code is None else self._force_exit_code

    # -- context managers -----------------------------------------------------------------

    def __enter__(self) -> GracefulShutdown:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.trigger()
        finally:
            self.uninstall()

    async def __aenter__(self) -> GracefulShutdown:
        self.install()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.atrigger()
        finally:
            self.uninstall()

    def __repr__(self) -> str:
        return (
            f"GracefulShutdown(timeout={self._timeout!r}, callbacks={len(self._callbacks)}, "
            f"phase={self._phase!r})"
        )


def _make_entry(
    name: object, callback: object, priority: object, timeout: object
) -> CleanupCallback:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    if not name:
        raise ValueError("name must not be empty")
    check_callable("callback", callback)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    limit = check_optional_number("timeout", timeout)
    return CleanupCallback(name, callback, priority, limit)  # type: ignore[arg-type]


def _check_signals(signals: Iterable[int]) -> tuple[signal.Signals, ...]:
    result: list[signal.Signals] = []
    for sig in signals:
        if isinstance(sig, bool) or not isinstance(sig, int):
            raise TypeError(f"signals must hold signal numbers, got {sig!r}")
        try:
            known = signal.Signals(sig)
        except ValueError:
            raise ValueError(f"signals: {sig!r} is not a signal number") from None
        if known not in result:  # twice would chain the handler to itself
            result.append(known)
    return tuple(result)


def _check_exit_code(code: object, exit_on_signal: bool) -> int | None:
    if code is None:
        return None
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"force_exit_code must be an int, got {code!r}")
    if not 0 <= code <= 255:
        raise ValueError(f"force_exit_code must be from 0 to 255, got {code!r}")
    if not exit_on_signal:
        raise ValueError(
            f"force_exit_code={code!r} needs exit_on_signal=True: without it seawall never "
            "ends the process"
        )
    return code


def _current_backend() -> str:
    """The async library running in this thread, for fresh loops made on its behalf."""
    import asyncio

    try:
        asyncio.get_running_loop()
        return "asyncio"
    except RuntimeError:
        pass
    trio: Any = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
            return "trio"
        except RuntimeError:
            pass
    return "asyncio"


def _logged(result: CleanupResult, limit: float | None) -> CleanupResult:
    if result.status == "ok":
        logger.debug("shutdown callback %r finished in %.3fs", result.name, result.duration)
    elif result.status == "error":
        assert result.error is not None
        logger.error(
            "shutdown callback %r failed after %.3fs",
            result.name,
            result.duration,
            exc_info=(type(result.error), result.error, result.error.__traceback__),
        )
    elif result.status == "timeout":
        logger.error(
            "shutdown callback %r did not finish within its %.3gs limit (%.3fs)",
            result.name,
            limit,
            result.duration,
        )
    else:
        logger.error("shutdown callback %r skipped: the shutdown time budget is spent", result.name)
    return result
