"""Adaptive concurrency limits: learn how many calls may run at once from their latency.

Theory of operation
-------------------
A fixed concurrency limit is a guess. These rules move the limit from what the calls report:
each finished call gives a **sample** ``(rtt, in_flight, dropped)``: how long it took, how many
calls were in flight when it started, and whether it was a *drop* (a timeout, or a refusal by
what it called: the work did not get done). Three update rules are offered, each a small class
whose ``update(rtt, in_flight, dropped)`` returns the next limit (a float; callers use its
integer part, never below 1):

``Gradient2Limit`` (the default)
    Compares the recent latency (``rtt``) with a slow average of it (``long_rtt``, an
    exponential average over ``long_window`` samples, a plain mean for the first 10)::

        gradient  = clamp(tolerance * long_rtt / rtt, 0.5, 1.0)   (0.5 for a drop)
        candidate = limit * gradient + queue_size
        limit     = clamp(limit * (1 - smoothing) + candidate * smoothing, min_limit, max_limit)

    It leaves the limit alone while fewer than half of it are in flight (an idle service
    says nothing about its capacity), and when ``long_rtt`` is more than twice ``rtt`` (load
    went away) it shrinks ``long_rtt`` by 5% so the baseline comes back down quickly. A drop
    takes the steepest gradient; its ``rtt`` (often a timeout) is not a latency and is not
    averaged in.

``VegasLimit``
    Estimates the queue from the lowest latency seen (``rtt_noload``)::

        queue = ceil(limit * (1 - rtt_noload / rtt))

    With ``L = log10 step of the limit`` (``max(1, int(log10(limit)))``): a drop or a queue
    above ``6 L`` shrinks the limit by ``L``; a queue of at most ``L`` grows it by ``6 L``, one
    below ``3 L`` by ``L``; otherwise it stays. It does not grow while fewer than half of it
    are in flight. ``rtt_noload`` is measured again (reset to the current sample) every
    ``probe_multiplier * limit`` samples, so a baseline learned long ago cannot pin it.

``AIMDLimit``
    Additive increase, multiplicative decrease: a drop (or a sample slower than ``timeout``)
    multiplies the limit by ``backoff_ratio`` (rounded down), anything else adds 1 while at
    least half of it is in flight.

Samples usually arrive one per call, which is noisy: :mod:`.adaptive_window` gathers them
into one sample per window, and sets the in-flight ceiling of each priority.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["AIMDLimit", "Gradient2Limit", "LimitAlgorithm", "VegasLimit", "log10_step"]


class LimitAlgorithm(Protocol):
    """What an adaptive bulkhead needs from an update rule."""

    limit: float
    min_limit: int
    max_limit: int

    def update(self, rtt: float, in_flight: int, dropped: bool) -> float:
        """Take one sample (seconds, calls in flight at its start, drop?); return the limit."""
        ...


def _check_bounds(initial_limit: int, min_limit: int, max_limit: int) -> None:
    for name, value in (
        ("initial_limit", initial_limit),
        ("min_limit", min_limit),
        ("max_limit", max_limit),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if min_limit > max_limit:
        raise ValueError(f"min_limit must be <= max_limit, got {min_limit!r} > {max_limit!r}")
    if not min_limit <= initial_limit <= max_limit:
        raise ValueError(
            f"initial_limit must be between min_limit and max_limit "
            f"({min_limit}..{max_limit}), got {initial_limit!r}"
        )


def _check_real(name: str, value: object, low: float, high: float, *, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    above = number > low if low_open else number >= low
    if math.isnan(number) or not above or number > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return number


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def log10_step(limit: float) -> int:
    """Vegas's step: ``max(1, int(log10(limit)))`` (1 below 100, 2 below 1000...)."""
    whole = int(limit)
    return 1 if whole < 10 else max(1, int(math.log10(whole)))


class Gradient2Limit:
    """Netflix's Gradient2 rule: follow the ratio of the long latency average to the latest.

    Defaults: ``initial_limit=20``, ``min_limit=1``, ``max_limit=200``, ``smoothing=0.4``,
    ``queue_size=4``, ``tolerance=1.2`` (latency may grow 1.2x before the limit shrinks),
    ``long_window=600`` samples.

    Why not Netflix's 0.2 and 1.5: under overload the limit settles where
    ``limit * (1 - gradient) == queue_size``, so latency settles at
    ``tolerance / (1 - queue_size / limit)`` times the baseline. With 1.5 and 4 that is 2x the
    service time on a pool of 8 (limit 16-17, measured): past an objective of 2.5x for the
    requests queued last. 1.2 keeps it at 1.7x on 8 workers and 1.3x on 32; smoothing 0.4
    halves the seconds the limit takes to get there (and to grow on a large pool).
    ``benchmarks/bench_adaptive.py`` has the figures.
    """

    __slots__ = (
        "_count",
        "_warmup_sum",
        "limit",
        "long_rtt",
        "long_window",
        "max_limit",
        "min_limit",
        "queue_size",
        "smoothing",
        "tolerance",
    )

    #: Samples averaged plainly before the exponential average starts.
    WARMUP = 10

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 200,
        smoothing: float = 0.4,
        queue_size: int = 4,
        tolerance: float = 1.2,
        long_window: int = 600,
    ) -> None:
        _check_bounds(initial_limit, min_limit, max_limit)
        self.smoothing = _check_real("smoothing", smoothing, 0.0, 1.0, low_open=True)
        self.tolerance = _check_real("tolerance", tolerance, 1.0, math.inf, low_open=False)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 0:
            raise ValueError(f"queue_size must be an int >= 0, got {queue_size!r}")
        if isinstance(long_window, bool) or not isinstance(long_window, int) or long_window < 1:
            raise ValueError(f"long_window must be an int >= 1, got {long_window!r}")
        self.limit = float(initial_limit)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.queue_size = queue_size
        self.long_window = long_window
        self.long_rtt = 0.0
        self._count = 0
        self._warmup_sum = 0.0

    def update(self, rtt: float, in_flight: int, dropped: bool) -> float:
        """Fold one sample in and return the new limit (see the module docs for the rule)."""
        limit = self.limit
        if dropped:
            gradient = 0.5
        else:
            long_rtt = self._average(rtt)
            if long_rtt > 2 * rtt:
                self.long_rtt = long_rtt * 0.95
            if in_flight < limit / 2:
                return limit
            gradient = _clamp(self.tolerance * long_rtt / rtt, 0.5, 1.0)
        candidate = limit * gradient + self.queue_size
        smoothed = limit * (1 - self.smoothing) + candidate * self.smoothing
        self.limit = _clamp(smoothed, self.min_limit, self.max_limit)
        return self.limit

    def _average(self, rtt: float) -> float:
        if self._count < self.WARMUP:
            self._count += 1
            self._warmup_sum += rtt
            self.long_rtt = self._warmup_sum / self._count
        else:
            factor = 2.0 / (self.long_window + 1)
            self.long_rtt = self.long_rtt * (1 - factor) + rtt * factor
        return self.long_rtt

    def __repr__(self) -> str:
        return f"Gradient2Limit(limit={self.limit:g}, long_rtt={self.long_rtt:g})"


class VegasLimit:
    """The TCP Vegas rule: estimate the queue from the lowest latency and keep it small.

    Defaults: ``initial_limit=20``, ``min_limit=1``, ``max_limit=200``,
    ``probe_multiplier=30`` (re-measure the no-load latency every 30 x limit samples).
    """

    __slots__ = (
        "_since_probe",
        "limit",
        "max_limit",
        "min_limit",
        "probe_multiplier",
        "rtt_noload",
    )

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 200,
        probe_multiplier: int = 30,
    ) -> None:
        _check_bounds(initial_limit, min_limit, max_limit)
        if (
            isinstance(probe_multiplier, bool)
            or not isinstance(probe_multiplier, int)
            or probe_multiplier < 1
        ):
            raise ValueError(f"probe_multiplier must be an int >= 1, got {probe_multiplier!r}")
        self.limit = float(initial_limit)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.probe_multiplier = probe_multiplier
        self.rtt_noload = 0.0  # 0.0: not measured yet
        self._since_probe = 0

    def update(self, rtt: float, in_flight: int, dropped: bool) -> float:
        """Fold one sample in and return the new limit (see the module docs for the rule)."""
        limit = self.limit
        self._since_probe += 1
        if self._since_probe >= self.probe_multiplier * int(limit):
            # Forget the old baseline: this sample becomes the no-load latency.
            self._since_probe = 0
            self.rtt_noload = rtt
            return limit
        if not dropped and (self.rtt_noload == 0.0 or rtt < self.rtt_noload):
            self.rtt_noload = rtt
            return limit
        step = log10_step(limit)
        if dropped:
            new = limit - step
        elif in_flight * 2 < limit:
            return limit
        else:
            queue = math.ceil(limit * (1 - self.rtt_noload / rtt))
            if queue <= step:
                new = limit + 6 * step
            elif queue < 3 * step:
                new = limit + step
            elif queue > 6 * step:
                new = limit - step
            else:
                return limit
        self.limit = _clamp(new, self.min_limit, self.max_limit)
        return self.limit

    def __repr__(self) -> str:
        return f"VegasLimit(limit={self.limit:g}, rtt_noload={self.rtt_noload:g})"


class AIMDLimit:
    """Additive increase, multiplicative decrease on drops and on samples slower than ``timeout``.

    Defaults: ``initial_limit=20``, ``min_limit=1``, ``max_limit=200``,
    ``backoff_ratio=0.9`` (in [0.5, 1)), ``timeout=5.0`` seconds.
    """

    __slots__ = ("backoff_ratio", "limit", "max_limit", "min_limit", "timeout")

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 200,
        backoff_ratio: float = 0.9,
        timeout: float = 5.0,
    ) -> None:
        _check_bounds(initial_limit, min_limit, max_limit)
        ratio = _check_real("backoff_ratio", backoff_ratio, 0.5, 1.0, low_open=False)
        if ratio == 1.0:
            raise ValueError(f"backoff_ratio must be in [0.5, 1), got {backoff_ratio!r}")
        self.backoff_ratio = ratio
        self.timeout = _check_real("timeout", timeout, 0.0, math.inf, low_open=True)
        self.limit = float(initial_limit)
        self.min_limit = min_limit
        self.max_limit = max_limit

    def update(self, rtt: float, in_flight: int, dropped: bool) -> float:
        """Fold one sample in and return the new limit (see the module docs for the rule)."""
        limit = int(self.limit)
        if dropped or rtt > self.timeout:
            limit = int(limit * self.backoff_ratio)
        elif in_flight * 2 >= limit:
            limit += 1
        self.limit = float(min(self.max_limit, max(self.min_limit, limit)))
        return self.limit

    def __repr__(self) -> str:
        return f"AIMDLimit(limit={self.limit:g})"
