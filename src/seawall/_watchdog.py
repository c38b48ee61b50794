"""Watchdog: notice code that stopped making progress.

Theory of operation
-------------------
Watched code calls ``ping()`` (or ``await aping()``) as it makes progress. A watchdog that goes
``timeout`` seconds without a ping *fires*: it logs a warning under the ``seawall`` logger and
runs ``on_timeout``. The deadline is checked by the monitor thread (:mod:`seawall._monitor`),
never by a task on the watched loop, so a loop blocked by ``time.sleep`` is noticed too::

    STOPPED --start()--> ARMED --(no ping for `timeout`)--> FIRED
                         ARMED --ping()--> ARMED   (timer reset)
                         FIRED --ping()--> ARMED   (re-armed: one firing per inactivity episode)
    ARMED / FIRED --stop()--> STOPPED

Where callbacks run: a sync ``on_timeout`` runs in the monitor thread (keep it short: it delays
every other watchdog while it runs); an async one is handed to the event loop that called
``astart()`` / ``async with`` and runs there as a new task, never on a loop of its own.
Exceptions from either are logged under ``seawall`` and never stop the monitor.

``raise_on_timeout=True`` turns a firing into a :class:`WatchdogTimeoutError` in the watched
code: inside ``async with`` the block is cancelled and the error raised at its exit; otherwise
it is raised at the next ``ping()`` / ``aping()`` or when the ``with`` block exits.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from . import _monitor
from ._callables import is_async_callable as _is_async_callable
from ._clock import SYSTEM_CLOCK, Clock
from ._core.validate import check_callable, check_number
from ._core.watchdog import WatchdogTimer
from ._errors import WatchdogError, WatchdogTimeoutError
from ._events import ACTIVE as _OBSERVED
from ._events import WatchdogFired, emit
from ._log import logger
from ._monitor import LoopHandle
from ._watchdog_state import StateFile
from .config import current

__all__ = ["Watchdog", "WatchdogStats", "watchdog_context"]


OnTimeout = Callable[[], Any]  # returns None, or an awaitable for an async callback


@dataclass(frozen=True, slots=True)
class WatchdogStats:
    """A snapshot of a watchdog (monotonic readings in seconds, from its clock)."""

    name: str
    timeout: float
    is_running: bool
    is_triggered: bool
    pings_total: int
    timeouts_triggered: int
    seconds_since_ping: float
    last_ping_time: float
    start_time: float | None
    uptime: float


class Watchdog:
    """Fire ``on_timeout`` when the watched code goes ``timeout`` seconds without a ping.

    ``with Watchdog(timeout=30, on_timeout=cb) as wd: wd.ping()`` in sync code;
    ``async with Watchdog(...) as wd: await wd.aping()`` on asyncio or trio. The constructor
    starts nothing; ``start()`` / ``astart()`` or the context managers do.
    """

    def __init__(
        self,
        timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
        *,
        raise_on_timeout: bool = False,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Left out, it comes from seawall.config (watchdog.timeout, 30 s unless configured).
        if timeout is None:
            timeout = current().watchdog.timeout
        self._timeout = check_number("timeout", timeout)
        self._on_timeout = None if on_timeout is None else check_callable("on_timeout", on_timeout)
        self._raise = bool(raise_on_timeout)
        self._name = name if name is not None else "watchdog"
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.Lock()
        # The idle time counts from construction, as in the reference guide: a watchdog read
        # before start() reports how long it has gone without a ping, not 0.
        self._timer = WatchdogTimer(self._timeout, last_ping=self._clock.monotonic())
        self._running = False
        self._loop: LoopHandle | None = None
        self._scope: anyio.CancelScope | None = None
        self._pending: WatchdogTimeoutError | None = None
        self._last_idle = 0.0
        self._pings = 0
        self._timeouts = 0
        self._started_at: float | None = None
        self._state_file: StateFile | None = None

    @classmethod
    def from_state_file(
        cls,
        path: str | os.PathLike[str],
        max_age: float = 30.0,
        *,
        on_timeout: OnTimeout | None = None,
        check_interval: float | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> Watchdog:
        """A watchdog that watches a heartbeat file instead of pings.

        It fires when the file is ``max_age`` seconds old (by its ``timestamp`` and the wall
        clock), missing, malformed, or marked ``"stopped": true``; it re-arms when the file is
        fresh again. The file is read every ``check_interval`` (default ``max_age / 2``) and
        also right when it would turn stale.
        """
        max_age = check_number("max_age", max_age)
        interval = max_age / 2 if check_interval is None else check_interval
        interval = check_number("check_interval", interval)
        wd = cls(max_age, on_timeout, name=name or f"state file {os.fspath(path)}", clock=clock)
        wd._state_file = StateFile(os.fspath(path), interval)
        return wd

    # -- properties -----------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """Seconds without a ping before the watchdog fires."""
        return self._timeout

    @property
    def name(self) -> str:
        return self._name

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_triggered(self) -> bool:
        """True between a firing and the next ping (or ``reset()``)."""
        return self._running and self._timer.fired

    @property
    def check_interval(self) -> float | None:
        """How often a :meth:`from_state_file` watchdog re-reads its file; None for pings.

        (The guide reported this interval as ``timeout``; here ``timeout`` is ``max_age``,
        the age that makes the watchdog fire.)
        """
        return None if self._state_file is None else self._state_file.interval

    @property
    def seconds_since_ping(self) -> float:
        """Seconds since the last ping, start or construction, whichever came last."""
        return self._clock.monotonic() - self._timer.last_ping

    @property
    def stats(self) -> WatchdogStats:
        """A frozen snapshot of the counters."""
        now = self._clock.monotonic()
        with self._lock:
            started = self._started_at
            return WatchdogStats(
                name=self._name,
                timeout=self._timeout,
                is_running=self._running,
                is_triggered=self._running and self._timer.fired,
                pings_total=self._pings,
                timeouts_triggered=self._timeouts,
                seconds_since_ping=now - self._timer.last_ping,
                last_ping_time=self._timer.last_ping,
                start_time=started,
                uptime=0.0 if started is None or not self._running else now - started,
            )

    # -- pinging --------------------------------------------------------------------------

    def ping(self) -> None:
        """Reset the timer (re-arming a fired watchdog); raise a pending timeout error."""
        now = self._clock.monotonic()
        with self._lock:
            self._pings += 1
            if not self._timer.fired and self._pending is None:
                self._timer.last_ping = now  # the common case: only the stamp moves
                return
            rearmed = self._timer.ping(now) and self._running
            error, self._pending = self._pending, None
        if rearmed:
            _monitor.wake(self._clock)
        if error is not None:
            raise error

    async def aping(self) -> None:
        """``ping()`` for async code (it never waits)."""
        self.ping()

    def reset(self) -> None:
        """Re-arm and restart the timer without counting a ping; drop a pending error."""
        with self._lock:
            rearmed = self._timer.ping(self._clock.monotonic()) and self._running
            self._pending = None
        if rearmed:
            _monitor.wake(self._clock)

    # -- starting and stopping ------------------------------------------------------------

    def start(self) -> None:
        """Start watching from sync code (a sync ``on_timeout`` runs in the monitor thread)."""
        if _is_async_callable(self._on_timeout):
            raise TypeError(
                f"on_timeout {self._on_timeout!r} is async: start the watchdog with "
                "'await astart()' or 'async with' so it runs on your event loop"
            )
        self._start(None)

    async def astart(self) -> None:
        """Start watching; an async ``on_timeout`` will run on the calling event loop."""
        self._start(LoopHandle())

    def _start(self, loop: LoopHandle | None, scope: anyio.CancelScope | None = None) -> None:
        with self._lock:
            if self._running:
                raise WatchdogError(f"watchdog {self._name!r} is already running")
            now = self._clock.monotonic()
            self._timer.ping(now)
            self._running, self._loop, self._scope, self._started_at = True, loop, scope, now
            self._pending = None
        _monitor.watch(self._clock, self)

    def stop(self) -> None:
        """Stop watching (idempotent). A callback already running finishes on its own."""
        with self._lock:
            if not self._running:
                return
            self._running, self._loop = False, None
        _monitor.unwatch(self._clock, self)

    async def astop(self) -> None:
        """``stop()`` for async code."""
        self.stop()

    def __enter__(self) -> Watchdog:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        error = self._take_pending()
        if error is not None and exc is None:
            raise error

    async def __aenter__(self) -> Watchdog:
        # The scope exists before the watchdog starts, so even an instant firing can cancel.
        scope = anyio.CancelScope().__enter__() if self._raise else None
        try:
            self._start(LoopHandle(), scope)
        except BaseException:
            if scope is not None:
                scope.__exit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.stop()
        scope, self._scope = self._scope, None
        swallowed = False
        if scope is not None:  # trio's scope answers True on a clean exit too: ask only on error
            swallowed = bool(scope.__exit__(exc_type, exc, tb)) and exc is not None
        error = self._take_pending()
        if swallowed and error is None:  # our cancellation landed after aping() raised
            error = self._error(self._last_idle)
        if error is not None and (exc is None or swallowed):
            raise error from None
        return swallowed

    def _take_pending(self) -> WatchdogTimeoutError | None:
        with self._lock:
            error, self._pending = self._pending, None
        return error

    # -- firing (monitor thread) ----------------------------------------------------------

    def poll(self, now: float) -> float | None:
        """Called by the monitor thread: fire if due; return when to poll next."""
        state_file = self._state_file
        age = state_file.age(self._clock.time()) if state_file is not None else None
        with self._lock:
            if not self._running:
                return None
            if state_file is not None and age is not None:
                self._timer.observe(now - age, now)
            idle = self._timer.check(now, dead=state_file is not None and age is None)
            deadline = self._timer.deadline()
            if state_file is not None:
                recheck = now + state_file.interval
                deadline = recheck if deadline is None else min(deadline, recheck)
            if idle is None:
                return deadline
            self._timeouts += 1
            self._last_idle = idle
            if self._raise:
                self._pending = self._error(idle)
            loop, scope = self._loop, self._scope
        self._fire(idle, loop, scope)
        return deadline

    def _error(self, idle: float) -> WatchdogTimeoutError:
        return WatchdogTimeoutError(
            f"watchdog {self._name!r}: no ping for {idle:.3f} s (timeout {self._timeout:g} s)",
            seconds_inactive=idle,
        )

    def _fire(self, idle: float, loop: LoopHandle | None, scope: anyio.CancelScope | None) -> None:
        logger.warning(
            "watchdog %r: no ping for %.3f s (timeout %g s)", self._name, idle, self._timeout
        )
        if _OBSERVED:
            emit(WatchdogFired(self._name, idle, self._timeout))
        if loop is not None and scope is not None:
            loop.call_soon(lambda: self._cancel_block(scope))
        if self._on_timeout is None:
            return
        try:
            result = self._on_timeout()
        except Exception:
            logger.exception("watchdog %r: on_timeout raised", self._name)
            return
        if inspect.isawaitable(result):
            what = f"watchdog {self._name!r} on_timeout"
            if loop is None or not loop.start_task(result, what):
                logger.error("%s is async but its event loop is gone; it did not run", what)
                if inspect.iscoroutine(result):
                    result.close()

    def _cancel_block(self, scope: anyio.CancelScope) -> None:
        # Runs on the loop thread, where __aexit__ also runs: no race on self._scope.
        if self._scope is scope:
            scope.cancel()

    def __repr__(self) -> str:
        state = "fired" if self.is_triggered else "running" if self._running else "stopped"
        return f"Watchdog(name={self._name!r}, timeout={self._timeout:g}, {state})"


def watchdog_context(
    timeout: float = 10.0,
    on_timeout: OnTimeout | None = None,
    *,
    raise_on_timeout: bool = False,
    name: str | None = None,
    clock: Clock | None = None,
) -> Watchdog:
    """A :class:`Watchdog` for one ``with`` / ``async with`` block (the reference guide's name).

    With ``raise_on_timeout=True`` the block really fails with :class:`WatchdogTimeoutError`
    (``seconds_inactive`` is the measured idle time): an ``async with`` block is cancelled and
    the error raised at its exit; a sync block gets it at its next ``ping()`` or at its exit.
    """
    return Watchdog(timeout, on_timeout, raise_on_timeout=raise_on_timeout, name=name, clock=clock)
