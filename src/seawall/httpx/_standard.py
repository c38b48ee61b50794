"""The standard pipeline's settings: defaults, consistency checks, per-request overrides.

:class:`ResilientTransport` with no arguments guards each origin with, outermost first::

    bulkhead (1000, no queue) -> deadline (30 s) -> retry (4 attempts) -> hold-back / limiter
        -> breaker (10% of >= 100 calls in 30 s, open 5 s) -> attempt timeout (10 s)

(the figures of .NET's ``AddStandardResilienceHandler``). :class:`Settings` holds what applies
to a request; a request may change some of it through ``request.extensions["seawall"]``
(:func:`settings_for`), and every value is checked the same way as the constructor's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._core.validate import check_int, check_number

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "DEFAULT_BREAKER_WINDOW",
    "DEFAULT_TIMEOUT",
    "Settings",
    "check_consistent",
    "settings_for",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPT_TIMEOUT = 10.0
DEFAULT_BREAKER_WINDOW = 30.0
DEFAULT_HEDGE_DELAY = 2.0
_OVERRIDES = frozenset({"retry", "timeout", "attempt_timeout", "hedging"})


@dataclass(frozen=True, slots=True)
class Settings:
    """What one request runs with (seconds; None switches a part off)."""

    timeout: float | None
    attempt_timeout: float | None
    hedge_delay: float | None
    max_hedged: int
    retry: bool | None
    """True / False forces retries on or off; None follows the method (idempotent only)."""
    first_limit: float | None = field(init=False)
    """A first attempt's time limit: the attempt timeout cut to the whole ``timeout``."""

    def __post_init__(self) -> None:
        limit, whole = self.attempt_timeout, self.timeout
        if whole is not None and (limit is None or whole < limit):
            limit = whole
        object.__setattr__(self, "first_limit", limit)


def hedging_settings(hedging: object) -> tuple[float | None, int]:
    """``(delay, extra attempts)`` from ``hedging=``: None/False, True, seconds or a tuple."""
    if hedging is None or hedging is False:
        return None, 0
    if hedging is True:
        return DEFAULT_HEDGE_DELAY, 1
    if isinstance(hedging, tuple) and len(hedging) == 2:
        delay, extra = hedging
        return check_number("hedging delay", delay, inclusive=True), check_int(
            "hedging extra attempts", extra
        )
    if isinstance(hedging, int | float):
        return check_number("hedging", hedging, inclusive=True), 1
    raise TypeError(
        "hedging must be None, a bool, a delay in seconds or (delay, extra attempts), "
        f"got {hedging!r}"
    )


def optional_seconds(name: str, value: object) -> float | None:
    """``value`` as positive seconds, or None."""
    return None if value is None else check_number(name, value)


def check_consistent(
    timeout: float | None, attempt_timeout: float | None, window: float | None
) -> None:
    """Refuse settings that contradict each other, naming both values."""
    if timeout is not None and attempt_timeout is not None and attempt_timeout > timeout:
        raise ValueError(
            f"attempt_timeout ({attempt_timeout:g} s) must not exceed timeout ({timeout:g} s)"
        )
    if window is not None and attempt_timeout is not None and window < 2 * attempt_timeout:
        raise ValueError(
            f"the breaker's window ({window:g} s) must be at least twice attempt_timeout "
            f"({attempt_timeout:g} s): a window shorter than two attempts never sees a ratio"
        )


def settings_for(base: Settings, extensions: Mapping[str, Any]) -> Settings:
    """``base`` changed by ``extensions["seawall"]`` (the same checks as the constructor)."""
    override = extensions.get("seawall")
    if not override:
        return base
    if not isinstance(override, Mapping):
        raise TypeError(f'extensions["seawall"] must be a dict, got {override!r}')
    unknown = set(override) - _OVERRIDES
    if unknown:
        raise ValueError(
            f'unknown key(s) in extensions["seawall"]: {sorted(unknown)!r}; '
            f"expected some of {sorted(_OVERRIDES)!r}"
        )
    changes: dict[str, Any] = {}
    if "retry" in override:
        changes["retry"] = bool(override["retry"])
    if "timeout" in override:
        changes["timeout"] = optional_seconds("timeout", override["timeout"])
    if "attempt_timeout" in override:
        changes["attempt_timeout"] = optional_seconds(
            "attempt_timeout", override["attempt_timeout"]
        )
    if "hedging" in override:
        delay, extra = hedging_settings(override["hedging"])
        if delay is not None and base.hedge_delay is not None and override["hedging"] is True:
            delay, extra = base.hedge_delay, base.max_hedged
        changes["hedge_delay"], changes["max_hedged"] = delay, extra
    settings = replace(base, **changes)
    check_consistent(settings.timeout, settings.attempt_timeout, None)
    return settings


def finite_min(*values: float | None) -> float | None:
    """The smallest value that is not None (None if all are)."""
    best = math.inf
    for value in values:
        if value is not None and value < best:
            best = value
    return None if best == math.inf else best
