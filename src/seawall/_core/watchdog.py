"""The watchdog's decisions, apart from threads and loops.

:class:`WatchdogTimer` is the pure core (no clock, no lock, no I/O): given ping times and the
current time, it says whether a watchdog fires and when it next could.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WatchdogTimer"]


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
