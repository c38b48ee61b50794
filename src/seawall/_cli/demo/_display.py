"""What the demo shows while it runs: event lines, and a status block refreshed in place.

On a terminal the status block (a progress bar, the outcome counts, the breakers' states) is
redrawn ten times a second under the event lines, with plain ANSI escapes; anywhere else
(a pipe, a file, a test) a one-line status is printed once a second instead, so the output
stays readable as a log.

Redrawing in place means: move the cursor up over the lines printed last time, erase to the
end of the screen, print again. That only works if each printed line takes exactly one row:
a line the terminal wraps takes two, the cursor goes up too few rows, and every redraw leaves
a stale row behind. So every line of the block (and every event line, on a terminal) is fitted
to the terminal's width, measured at each draw: counts and states reflow onto more lines,
anything still too long is cut.
"""

from __future__ import annotations

import shutil
import textwrap
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from ..._clock import SYSTEM_CLOCK
from ._narration import ADAPTIVE_LABELS, LABELS, SHED_ORDER, Tally, opening, recap
from ._schedule import Phase, Schedule

__all__ = ["AdaptiveStatus", "Display", "Snapshot", "pack"]

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # cursor to the start of n lines up, erase to the end
_BAR = 30
_MIN_BAR = 10
_MIN_WIDTH = 20
_INDENT = "  "


@dataclass(frozen=True, slots=True)
class AdaptiveStatus:
    """What ``--adaptive`` shows of the service's adaptive bulkhead, read from its events."""

    limit: int | None
    """The limit the last event carried (None before the first one)."""
    in_flight: int
    shed: Mapping[str, int]
    """Shed requests by priority (``critical``, ``default``, ``sheddable``)."""
    lowest: int | None = None
    highest: int | None = None
    first: int | None = None
    """The limit at the first event (the initial limit)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers the status shows, read at one moment."""

    elapsed: float
    sent: int
    seen: Mapping[str, int]
    retries: int
    breakers: Mapping[str, str]
    degraded_decisions: int = 0
    groups: Tally = field(default_factory=dict)
    """Finished requests by ``(client group, outcome)``, for the phase recaps."""
    adaptive: AdaptiveStatus | None = None
    """The adaptive bulkhead's figures (``--adaptive`` only), shown instead of breakers."""


def pack(parts: Sequence[str], limit: int, indent: str = _INDENT) -> list[str]:
    """``parts`` joined by two spaces into lines of at most ``limit`` characters.

    Each line starts with ``indent``; a part too long for a line of its own is cut.
    """
    lines: list[str] = []
    line = ""
    for part in parts:
        if line and len(line) + 2 + len(part) <= limit:
            line += "  " + part
            continue
        if line:
            lines.append(line)
        line = _cut(indent + part, limit)
    if line:
        lines.append(line)
    return lines


def _limit(snap: Snapshot) -> int | None:
    return None if snap.adaptive is None else snap.adaptive.limit


def _cut(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Display:
    """Prints events and the live status to ``out``; ``live`` redraws in place (a TTY)."""

    def __init__(
        self, out: TextIO, schedule: Schedule, *, live: bool, width: int | None = None
    ) -> None:
        self._out = out
        self._schedule = schedule
        self._live = live
        self._width = width
        self._drawn = 0
        self._last: Snapshot | None = None
        self._notes: deque[str] = deque()
        self._phase: tuple[Phase, Tally, int | None] | None = None
        self._recaps = 0

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
        """Print one event (above the status block, reflowed to the width, on a terminal)."""
        self._erase()
        stamp = f"[{elapsed:6.2f}s] "
        if self._live:
            lines = textwrap.wrap(text, self._limit() - len(stamp)) or [""]
            text = ("\n" + " " * len(stamp)).join(lines)
        self._out.write(f"{stamp}{text}\n")
        self._draw()

    async def run(self, snapshot: Callable[[], Snapshot]) -> None:
        """Refresh the status until cancelled (10 Hz live, else one line a second)."""
        period = 0.1 if self._live else 1.0
        while True:
            self.update(snapshot())
            await SYSTEM_CLOCK.asleep(period)

    async def announce_phases(self, snapshot: Callable[[], Snapshot]) -> None:
        """Open each phase as it begins, closing the one before (see :meth:`begin_phase`)."""
        for phase in self._schedule.phases:
            await SYSTEM_CLOCK.asleep(max(0.0, phase.start - snapshot().elapsed))
            self.begin_phase(phase, snapshot())

    def begin_phase(self, phase: Phase, snap: Snapshot) -> None:
        """Recap the phase in progress, if any, then say what ``phase`` will show and why."""
        self.end_phase(snap)
        self.event(snap.elapsed, opening(phase))
        self._phase = (phase, dict(snap.groups), _limit(snap))

    def end_phase(self, snap: Snapshot) -> None:
        """Print what finished during the phase in progress (nothing if none is)."""
        if self._phase is not None:
            phase, before, limit = self._phase
            self._phase = None
            adaptive = snap.adaptive
            # Before its first request a run has no limit to show: the first event's is the start.
            start = limit if limit is not None or adaptive is None else adaptive.first
            limits = None if adaptive is None else (start, adaptive.limit)
            text = recap(phase, before, snap.groups, explain=not self._recaps, limits=limits)
            self.event(snap.elapsed, text)
            self._recaps += 1

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

    def _limit(self) -> int:
        # One column short of the width: some terminals wrap a line that fills the last
        # column as soon as the newline comes, which would take a second row.
        columns = self._width if self._width is not None else shutil.get_terminal_size().columns
        return max(columns - 1, _MIN_WIDTH)

    def _draw(self) -> None:
        snap = self._last
        if not self._live or snap is None:
            return
        lines = self.block(snap)
        self._out.write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)

    def block(self, snap: Snapshot) -> list[str]:
        """The status block's lines for ``snap``, each fitted to the terminal's width."""
        limit = self._limit()
        return [
            self._progress(snap, limit),
            *pack(self._count_parts(snap), limit),
            *pack(self._state_parts(snap), limit),
        ]

    def _progress(self, snap: Snapshot, limit: int) -> str:
        total = self._schedule.duration
        shown = min(snap.elapsed, total)
        phase = self._schedule.phase_at(shown).name
        rest = f" {shown:5.1f}/{total:g} s  phase: {phase}"
        width = max(_MIN_BAR, min(_BAR, limit - len(rest) - 2))
        filled = round(shown / total * width)
        return _cut(f"[{'#' * filled}{'-' * (width - filled)}]{rest}", limit)

    @staticmethod
    def _count_parts(snap: Snapshot) -> list[str]:
        parts = [f"sent {snap.sent}"]
        if snap.adaptive is not None:  # no rate limit, fallback or breaker: no such outcomes
            return parts + [f"{label} {snap.seen.get(key, 0)}" for key, label in ADAPTIVE_LABELS]
        parts += [f"{label} {snap.seen.get(key, 0)}" for key, label in LABELS]
        parts.append(f"retries {snap.retries}")
        if snap.degraded_decisions:
            parts.append(f"store-degraded {snap.degraded_decisions}")
        return parts

    @classmethod
    def _counts(cls, snap: Snapshot) -> str:
        return "  ".join(cls._count_parts(snap))

    @staticmethod
    def _state_parts(snap: Snapshot) -> list[str]:
        adaptive = snap.adaptive
        if adaptive is not None:
            limit = "-" if adaptive.limit is None else str(adaptive.limit)
            parts = [f"limit {limit}", f"in flight {adaptive.in_flight}"]
            return parts + [f"shed {p} {adaptive.shed.get(p, 0)}" for p in SHED_ORDER]
        return [f"{name}: {state}" for name, state in snap.breakers.items()]

    @classmethod
    def _states(cls, snap: Snapshot) -> str:
        return "  ".join(cls._state_parts(snap))
