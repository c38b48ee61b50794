"""Time, in one place.

Every seawall primitive takes a ``clock=`` and asks it for the time, to sleep, or to wait for an
event with a timeout. This module is the only code in seawall that reads the system clock, so a
test that hands in a :class:`seawall.testing.FakeClock` controls time completely.

A clock offers two readings:

* ``monotonic()``: seconds from an arbitrary origin that never goes backwards; all in-process
  decisions (open periods, token refill, leases) use it.
* ``time()``: wall-clock seconds since the epoch; only state shared between processes or
  machines (the file and Redis stores, heartbeat files) uses it, because monotonic readings mean
  nothing outside the process that took them.

and four ways to wait, sync and async side by side. The waits that take an event return early
when the event is set; they never raise on timeout, and callers check their own condition after.
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock", "SYSTEM_CLOCK"]


@runtime_checkable
class Clock(Protocol):
    """What seawall needs from a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (asyncio or trio)."""
        ...

    def wait_for(self, event: threading.Event, timeout: float | None) -> bool:
        """Block until ``event`` is set or ``timeout`` passes; return whether it is set.

        On a fake clock the timeout may be signalled by setting ``event`` itself, so callers
        must check their own state afterwards rather than trust the return value alone.
        """
        ...

    async def await_event(self, event: anyio.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` passes; return whether it is set."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and the event loop's own timers."""

    __slots__ = ()

    # Bound straight to the C functions: a reading is on every policy's hot path, and a
    # Python-level method around them costs about 30 ns per call (5-8 % of a limiter grant,
    # measured for issue 17). So ``mock.patch("time.monotonic")`` does not reach seawall:
    # tests hand a FakeClock in instead (docs/migration.md shows the two-line change).
    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await anyio.sleep(seconds if seconds > 0 else 0)

    def wait_for(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)

    async def await_event(self, event: anyio.Event, timeout: float | None) -> bool:
        if timeout is None:
            await event.wait()
            return True
        with anyio.move_on_after(timeout):
            await event.wait()
        return event.is_set()

    def __repr__(self) -> str:
        return "SystemClock()"


#: The shared default clock. Stateless, so one instance serves everyone.
SYSTEM_CLOCK = SystemClock()
