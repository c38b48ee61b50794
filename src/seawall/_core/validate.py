"""Argument checks shared by every constructor.

Each check names the parameter and repeats the bad value. Nothing is clamped: a value the
policy cannot honour is an error, not a silent adjustment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "check_callable",
    "check_int",
    "check_number",
    "check_optional_number",
    "check_time_window",
]


def _as_real(name: str, value: object) -> float:
    # bool is an int subclass; True as a timeout is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return result


def check_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is finite and above ``minimum``.

    ``inclusive=True`` admits ``minimum`` itself (e.g. ``max_wait=0``).
    """
    result = _as_real(name, value)
    if math.isinf(result) and not (allow_inf and result > 0):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if result < minimum or (result == minimum and not inclusive):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be {bound} {minimum:g}, got {value!r}")
    return result


def check_optional_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
) -> float | None:
    """Like :func:`check_number`, but ``None`` passes through (meaning "no limit")."""
    if value is None:
        return None
    return check_number(name, value, minimum=minimum, inclusive=inclusive)


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool, not a float) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_callable(name: str, value: Any) -> Callable[..., Any]:
    """Return ``value`` if it is callable, else raise TypeError naming ``name``."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")
    return value  # type: ignore[no-any-return]


MIN_BUCKET_WIDTH = 0.001
"""Narrowest bucket of a time window, in seconds: bucket indexes stay exact integers in a
double for any wall time (a Redis store counts on that)."""


def check_time_window(duration: object, buckets: object) -> tuple[float, int]:
    """``(window_duration, window_buckets)`` once each bucket is known to span at least 1 ms."""
    seconds = check_number("window_duration", duration)
    count = check_int("window_buckets", buckets)
    if seconds / count < MIN_BUCKET_WIDTH:
        raise ValueError(
            f"window_duration / window_buckets must be >= {MIN_BUCKET_WIDTH:g} s, got "
            f"window_duration={duration!r}, window_buckets={buckets!r}"
        )
    return seconds, count
