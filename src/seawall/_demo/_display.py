"""What the demo shows while it runs: event lines, and a status block refreshed in place.

On a terminal the status block (a progress bar, the outcome counts, the breakers' states) is
redrawn ten times a second under the event lines, with plain ANSI escapes; anywhere else
(a pipe, a file, a test) a one-line status is printed once a second instead, so the output
stays readable as a log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from .._clock import SYSTEM_CLOCK
from ._schedule import Schedule

__all__ = ["Display", "Snapshot"]

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # cursor to the start of n lines up, erase to the end
_BAR = 30

_LABELS = (
    ("fresh", "served"),
    ("degraded", "degraded"),
    ("rate_limited", "429"),
    ("overloaded", "shed 503"),
    ("circuit_open", "open 503"),
    ("timeout", "504"),
    ("error", "errors"),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers the status shows, read at one moment."""

    elapsed: float
    sent: int
    seen: Mapping[str, int]
    retries: int
    breakers: Mapping[str, str]
    degraded_decisions: int = 0


class Display:
    """Prints events and the live status to ``out``; ``live`` redraws in place (a TTY)."""

    def __init__(self, out: TextIO, schedule: Schedule, *, live: bool) -> None:
        self._out = out
        self._schedule = schedule
        self._live = live
        self._drawn = 0
        self._last: Snapshot | None = None
        self._notes: deque[str] = deque()

    @property
    def duration(self) -> float:
        """The run's length in seconds."""
        return self._schedule.duration

    @property
    def schedule(self) -> Schedule:
        """The run's schedule."""
        return self._schedule

    def note(self, text: str) -> None:
        """Queue an event line from any thread; the next update prints it."""
        self._notes.append(text)

    def event(self, elapsed: float, text: str) -> None:
        """Print one event line (above the status block on a terminal)."""
        self._erase()
        self._out.write(f"[{elapsed:6.2f}s] {text}\n")
        self._draw()

    async def run(self, snapshot: Callable[[], Snapshot]) -> None:
        """Refresh the status until cancelled (10 Hz live, else one line a second)."""
        period = 0.1 if self._live else 1.0
        while True:
            self.update(snapshot())
            await SYSTEM_CLOCK.asleep(period)

    async def announce_phases(self, elapsed: Callable[[], float]) -> None:
        """Print each phase as it begins (``elapsed`` reads the run's stopwatch)."""
        for phase in self._schedule.phases:
            await SYSTEM_CLOCK.asleep(max(0.0, phase.start - elapsed()))
            self.event(elapsed(), f"phase {phase.name}: {phase.description}")

    def update(self, snap: Snapshot) -> None:
        """Show ``snap``: print queued notes, then redraw the block or print the line."""
        while self._notes:
            self.event(snap.elapsed, self._notes.popleft())
        self._last = snap
        if self._live:
            self._erase()
            self._draw()
        else:
            self._out.write(f"[{snap.elapsed:6.2f}s] {self._counts(snap)}  {self._states(snap)}\n")
        self._out.flush()

    def finish(self) -> None:
        """Leave the last status block on screen and stop redrawing it."""
        self._drawn = 0
        self._last = None
        self._out.flush()

    # -- drawing ------------------------------------------------------------------------------

    def _erase(self) -> None:
        if self._live and self._drawn:
            self._out.write(_UP_AND_CLEAR.format(n=self._drawn))
            self._drawn = 0

    def _draw(self) -> None:
        snap = self._last
        if not self._live or snap is None:
            return
        lines = [self._progress(snap), "  " + self._counts(snap), "  " + self._states(snap)]
        self._out.write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)

    def _progress(self, snap: Snapshot) -> str:
        total = self._schedule.duration
        shown = min(snap.elapsed, total)
        filled = round(shown / total * _BAR)
        bar = "#" * filled + "-" * (_BAR - filled)
        phase = self._schedule.phase_at(shown).name
        return f"[{bar}] {shown:5.1f}/{total:g} s  phase: {phase}"

    @staticmethod
    def _counts(snap: Snapshot) -> str:
        parts = [f"sent {snap.sent}"]
        parts += [f"{label} {snap.seen.get(key, 0)}" for key, label in _LABELS]
        parts.append(f"retries {snap.retries}")
        if snap.degraded_decisions:
            parts.append(f"store-degraded {snap.degraded_decisions}")
        return "  ".join(parts)

    @staticmethod
    def _states(snap: Snapshot) -> str:
        return "  ".join(f"{name}: {state}" for name, state in snap.breakers.items())
