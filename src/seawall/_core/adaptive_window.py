"""Gathering per-call samples into windows, and the in-flight ceiling of each priority.

Samples usually arrive one per call, which is noisy. :class:`SampleWindow` gathers them over
``window`` seconds (and at least ``window_samples`` samples) and hands the rule one sample per
window: the mean latency of the calls that were not drops, the highest in-flight count, and
whether any call dropped. This is the only place where time enters, as the ``now`` argument.

Priorities: :func:`ceilings` lets a ``sheddable`` call in only while the in-flight count is
below ``sheddable_share`` of the limit, a ``default`` one below the limit, and a ``critical``
one below ``critical_share`` of it (at least one above the limit). Under overload the in-flight
count sits at the limit, so sheddable calls are refused first and critical ones last.
"""

from __future__ import annotations

import math

__all__ = ["PRIORITIES", "SampleWindow", "ceilings"]

#: The request priorities, from first shed to last shed.
PRIORITIES = ("sheddable", "default", "critical")


def _check_window(window: object) -> float:
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise TypeError(f"window must be a number, got {window!r} ({type(window).__name__})")
    if math.isnan(window) or window < 0 or window == math.inf:
        raise ValueError(f"window must be in [0, inf), got {window!r}")
    return float(window)


class SampleWindow:
    """Gathers per-call samples into one sample per window for an update rule.

    A window closes at the first sample at least ``window`` seconds after it opened, once it
    holds ``window_samples`` samples; :meth:`add` then returns the window's sample
    ``(mean rtt of the calls that were not drops, max in-flight, any drop)`` and opens the next.
    A window of drops only reports the mean rtt of its drops.
    """

    __slots__ = (
        "_drop_sum",
        "_drops",
        "_max_in_flight",
        "_ok",
        "_ok_sum",
        "_opened",
        "window",
        "window_samples",
    )

    def __init__(self, window: float = 1.0, window_samples: int = 10) -> None:
        self.window = _check_window(window)
        if (
            isinstance(window_samples, bool)
            or not isinstance(window_samples, int)
            or window_samples < 1
        ):
            raise ValueError(f"window_samples must be an int >= 1, got {window_samples!r}")
        self.window_samples = window_samples
        self._opened: float | None = None
        self._clear()

    def _clear(self) -> None:
        self._ok = 0
        self._ok_sum = 0.0
        self._drops = 0
        self._drop_sum = 0.0
        self._max_in_flight = 0

    def add(
        self, rtt: float, in_flight: int, dropped: bool, now: float
    ) -> tuple[float, int, bool] | None:
        """Record one call; return the window's sample when this call closes it, else None."""
        if self._opened is None:
            self._opened = now
        if dropped:
            self._drops += 1
            self._drop_sum += rtt
        else:
            self._ok += 1
            self._ok_sum += rtt
        if in_flight > self._max_in_flight:
            self._max_in_flight = in_flight
        if now - self._opened < self.window or self._ok + self._drops < self.window_samples:
            return None
        if self._ok:
            sample = (self._ok_sum / self._ok, self._max_in_flight, self._drops > 0)
        else:
            sample = (self._drop_sum / self._drops, self._max_in_flight, True)
        self._opened = now
        self._clear()
        return sample


def ceilings(limit: int, sheddable_share: float, critical_share: float) -> tuple[int, int, int]:
    """The in-flight ceilings of (sheddable, default, critical) for an integer ``limit``.

    Sheddable: ``floor(limit * sheddable_share)``, at least 1; default: ``limit``; critical:
    ``ceil(limit * critical_share)``, at least ``limit + 1``.
    """
    sheddable = max(1, math.floor(limit * sheddable_share))
    critical = max(limit + 1, math.ceil(limit * critical_share))
    return sheddable, limit, critical
