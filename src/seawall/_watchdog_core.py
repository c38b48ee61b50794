"""The watchdog's decisions, apart from threads and loops.

:class:`WatchdogTimer` is the pure core (no clock, no lock, no I/O): given ping times and the
current time, it says whether a watchdog fires and when it next could. :class:`StateFile` reads
a heartbeat file defensively for ``Watchdog.from_state_file``; it does not import the heartbeat
module, only its file format: a JSON object with an ISO 8601 ``timestamp`` carrying a zone,
``pid``, ``hostname``, ``metadata`` and, after a clean stop, ``"stopped": true``.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime

__all__ = ["StateFile", "WatchdogTimer"]

_MAX_STATE_BYTES = 64 * 1024  # a heartbeat file is a few hundred bytes; more is not one


@dataclass(slots=True)
class WatchdogTimer:
    """Pure core: when a watchdog fires, given its pings. No clock, no lock, no I/O."""

    timeout: float
    last_ping: float = 0.0
    fired: bool = False

    def ping(self, now: float) -> bool:
        """Reset the timer at ``now``; True when this re-armed a fired timer."""
        self.last_ping = now
        rearmed, self.fired = self.fired, False
        return rearmed

    def observe(self, stamp: float, now: float) -> None:
        """State-file mode: the file proves life at ``stamp``; re-arm only if that is fresh."""
        self.last_ping = stamp
        if now - stamp < self.timeout:
            self.fired = False

    def check(self, now: float, *, dead: bool = False) -> float | None:
        """Fire if due (or ``dead``) and not fired yet: return the idle seconds, else None."""
        idle = now - self.last_ping
        if self.fired or (idle < self.timeout and not dead):
            return None
        self.fired = True
        return idle

    def deadline(self) -> float | None:
        """When the timer fires if no ping comes; None once fired."""
        return None if self.fired else self.last_ping + self.timeout


@dataclass(frozen=True, slots=True)
class StateFile:
    """A heartbeat file, read defensively: anything unexpected means "not alive"."""

    path: str
    interval: float

    def age(self, wall_now: float) -> float | None:
        """Seconds since the file's timestamp, or None when it does not prove life."""
        try:
            raw = _read_regular_file(self.path, _MAX_STATE_BYTES + 1)
            data = json.loads(raw) if raw is not None and len(raw) <= _MAX_STATE_BYTES else None
        except (OSError, ValueError, RecursionError):  # missing, unreadable, not JSON
            return None
        if not isinstance(data, dict) or data.get("stopped") is True:
            return None
        stamp = data.get("timestamp")
        if not isinstance(stamp, str):
            return None
        try:
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None:  # no zone: ambiguous, as Heartbeat.read_state says too
                return None
            return max(0.0, wall_now - moment.timestamp())
        except (ValueError, OverflowError):
            return None


def _read_regular_file(path: str, limit: int) -> bytes | None:
    # Non-blocking open and a type check: a FIFO planted at the path must not hang the monitor.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)
