"""The pure arithmetic of retrying: backoff, attempt cap, deadline, retry budget.

Theory of operation. A call makes attempt 1; after each failed attempt :func:`next_wait`
decides, from numbers alone, whether there is another attempt and how long to wait first:

* no attempts left (``attempts_made >= max_attempts``) -> stop;
* the wait is the backoff ceiling ``min(maximum, initial * multiplier ** (n - 1))`` for the
  n-th retry, times a uniform draw in [0, 1) ("full jitter", so a fleet that failed together
  does not retry together), or the ceiling itself when jitter is off;
* a server hint (``Retry-After``) is capped at ``max_hint`` and raises the wait to at least the
  hint: a server asking for 2 s gets 2 s, a hint of 0 leaves the backoff alone;
* with a deadline, a wait that would end at or after it stops the call at once: sleeping
  until the deadline and then making an attempt with no time left helps nobody.

:class:`BudgetWindow` is the retry budget's bookkeeping: counts of calls and retries in
one-second buckets over a sliding window; a retry is allowed while
``retries + 1 <= ratio * calls + minimum_per_second * window``. Nothing here reads a clock,
sleeps or locks; the callers in ``_retry.py`` do that.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .validate import check_int, check_number

__all__ = ["Backoff", "BudgetWindow", "next_wait"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff settings; :meth:`delay` turns a retry number into a wait."""

    initial: float
    maximum: float
    multiplier: float
    jitter: bool

    def __post_init__(self) -> None:
        check_number("initial", self.initial, inclusive=True)
        check_number("maximum", self.maximum, inclusive=True)
        check_number("multiplier", self.multiplier, minimum=1.0, inclusive=True)
        if self.maximum < self.initial:
            raise ValueError(f"maximum must be >= initial ({self.initial!r}), got {self.maximum!r}")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1 for the first retry)."""
        try:
            grown = self.initial * self.multiplier ** (retry - 1)
        except OverflowError:
            return self.maximum
        return min(self.maximum, grown)

    def delay(self, retry: int, draw: float) -> float:
        """The wait before retry ``retry``, given a uniform ``draw`` in [0, 1)."""
        ceiling = self.ceiling(retry)
        return ceiling * draw if self.jitter else ceiling


def next_wait(
    *,
    backoff: Backoff,
    attempts_made: int,
    max_attempts: int,
    draw: float,
    hint: float | None,
    max_hint: float,
    now: float,
    deadline_at: float | None,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the call must stop now."""
    if attempts_made >= max_attempts:
        return None
    wait = backoff.delay(attempts_made, draw)
    if hint is not None:
        wait = max(wait, min(hint, max_hint))
    if deadline_at is not None and now + wait >= deadline_at:
        return None
    return wait


def usable_hint(value: object) -> float | None:
    """``value`` as a wait in seconds if it is a finite number >= 0, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return None
    return seconds


class BudgetWindow:
    """Sliding-window counts of calls and retries, in one-second buckets (pure; not locked)."""

    __slots__ = ("_buckets", "_calls", "_minimum", "_ratio", "_retries", "_window")

    def __init__(self, *, ratio: float, minimum_per_second: float, window: float) -> None:
        self._ratio = check_number("ratio", ratio, inclusive=True)
        self._minimum = check_number("minimum_per_second", minimum_per_second, inclusive=True)
        self._window = check_int("window", window, minimum=1)
        # Each bucket is [second, calls, retries]; totals are kept alongside so a decision
        # costs O(1) amortised, whatever the traffic.
        self._buckets: deque[list[int]] = deque()
        self._calls = 0
        self._retries = 0

    def record_call(self, now: float) -> None:
        """Count one call (a first attempt) at time ``now``."""
        self._bucket(now)[1] += 1
        self._calls += 1

    def try_retry(self, now: float) -> bool:
        """Count one retry at ``now`` and return True if the budget allows it, else False."""
        bucket = self._bucket(now)
        allowed = self._ratio * self._calls + self._minimum * self._window
        if self._retries + 1 > allowed:
            return False
        bucket[2] += 1
        self._retries += 1
        return True

    def counts(self, now: float) -> tuple[int, int]:
        """``(calls, retries)`` inside the window ending at ``now``."""
        self._expire(math.floor(now))
        return self._calls, self._retries

    def _bucket(self, now: float) -> list[int]:
        second = math.floor(now)
        self._expire(second)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def _expire(self, second: int) -> None:
        oldest = second - self._window
        while self._buckets and self._buckets[0][0] <= oldest:
            _, calls, retries = self._buckets.popleft()
            self._calls -= calls
            self._retries -= retries
