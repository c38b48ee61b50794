"""A heartbeat file read for ``Watchdog.from_state_file``, defensively.

:class:`StateFile` does not import the heartbeat module, only its file format: a JSON object
with an ISO 8601 ``timestamp`` carrying a zone, ``pid``, ``hostname``, ``metadata`` and, after a
clean stop, ``"stopped": true``. Anything unexpected means "not alive", never an exception.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime

__all__ = ["StateFile"]

_MAX_STATE_BYTES = 64 * 1024  # a heartbeat file is a few hundred bytes; more is not one


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
