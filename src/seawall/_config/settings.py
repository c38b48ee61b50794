"""The settings tree: one frozen dataclass per section, each field with its rule.

These dataclasses are the single place where a key, its built-in default and its valid range
are written (see :mod:`seawall._config.schema`); the loader, the environment scheme, the
``seawall config`` command and the documentation table all read them from here. Building a
section checks every value, so a ``Settings`` object is valid however it was made.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._core.adaptive import AIMDLimit, Gradient2Limit, LimitAlgorithm, VegasLimit
from .._redact import redact_url
from .schema import Problem, Rule, check, choice, error, flag, integer, number, url

__all__ = [
    "SECTIONS",
    "AdaptiveSettings",
    "BulkheadSettings",
    "CircuitBreakerSettings",
    "HeartbeatSettings",
    "RateLimiterSettings",
    "RetrySettings",
    "ShutdownSettings",
    "StoreSettings",
    "WatchdogSettings",
    "conflict",
    "rules",
]

# A conflict between two keys of one section: (key, other key, complaint about key).
Conflict = tuple[str, str, str]


def rules(section: type[Any]) -> dict[str, Rule]:
    """The rule of every key of a section class, in declaration order."""
    return {f.name: f.metadata["rule"] for f in dataclasses.fields(section)}


def conflict(section: str, values: Mapping[str, Any]) -> Conflict | None:
    """The first rule that spans two keys of ``section`` and that ``values`` break."""
    if section == "retry" and values["maximum"] < values["initial"]:
        return ("maximum", "initial", f"must be >= retry.initial ({values['initial']!r})")
    if section == "circuit_breaker":
        duration = values["window_duration"]
        if duration is not None and duration / values["window_buckets"] < 0.001:
            buckets = values["window_buckets"]
            return (
                "window_duration",
                "window_buckets",
                f"must be >= 0.001 s per bucket ({buckets!r})",
            )
    if section == "adaptive":
        if values["min_limit"] > values["max_limit"]:
            return (
                "min_limit",
                "max_limit",
                f"must be <= adaptive.max_limit ({values['max_limit']!r})",
            )
        if not values["min_limit"] <= values["initial_limit"] <= values["max_limit"]:
            bounds = f"({values['min_limit']!r}..{values['max_limit']!r})"
            return (
                "initial_limit",
                "max_limit",
                f"must be between min_limit and max_limit {bounds}",
            )
    refill = values["default_per"] / values["default_rate"] if section == "rate_limiter" else 1
    if not math.isfinite(refill):
        return ("default_rate", "default_per", "must give a finite refill interval")
    return None


def _validate(section: Any) -> None:
    # Runs in __post_init__ of each section: the same rules the file loader applies, so a
    # Settings built in code cannot hold a value a policy constructor would refuse.
    source = type(section).__name__
    values: dict[str, Any] = {}
    for name, rule in rules(type(section)).items():
        value = getattr(section, name)
        try:
            values[name] = check(rule, value)
        except Problem as problem:
            raise error(source, f"{section.section}.{name}", value, problem) from None
        object.__setattr__(section, name, values[name])
    clash = conflict(section.section, values)
    if clash is not None:
        raise error(source, f"{section.section}.{clash[0]}", values[clash[0]], clash[2])


@dataclass(frozen=True, slots=True)
class CircuitBreakerSettings:
    """``circuit_breaker``: defaults for :class:`~seawall.CircuitBreaker`."""

    section: ClassVar[str] = "circuit_breaker"
    max_failures: int = integer(5, help="consecutive failures that open the circuit")
    reset_timeout: float = number(60.0, help="seconds open before a probe is let through")
    half_open_max_calls: int = integer(1, help="probe calls admitted at once while half-open")
    success_threshold: int = integer(1, help="successful probes that close the circuit")
    window_duration: float | None = number(
        None,
        optional=True,
        help="seconds of the time window of breakers with a rate threshold and no window of "
        "their own; null: the count window",
    )
    window_buckets: int = integer(10, help="buckets a time window is cut into")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class RateLimiterSettings:
    """``rate_limiter``: defaults for :class:`~seawall.RateLimiter` and the keyed one."""

    section: ClassVar[str] = "rate_limiter"
    default_rate: float = number(10.0, help="tokens added per period")
    default_per: float = number(1.0, help="the period, in seconds")
    default_burst: float | None = number(
        None, minimum=1.0, inclusive=True, optional=True, help="bucket size; null: the rate"
    )
    max_keys: int = integer(10_000, help="keys a KeyedRateLimiter holds at once")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class BulkheadSettings:
    """``bulkhead``: defaults for :class:`~seawall.Bulkhead`."""

    section: ClassVar[str] = "bulkhead"
    max_concurrent: int | str = integer(
        10, auto=True, help="calls running at once; 'auto': learned (section adaptive)"
    )
    max_wait: float = number(
        0.0, inclusive=True, allow_inf=True, help="seconds a call may wait for a slot"
    )
    max_queue: int | None = integer(
        None, minimum=0, optional=True, help="calls waiting at once; null: no limit"
    )

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class AdaptiveSettings:
    """``adaptive``: defaults for :class:`~seawall.AdaptiveBulkhead` and ``max_concurrent="auto"``.

    The defaults are the constructors' own (a test keeps them in step). ``tolerance``,
    ``queue_size`` and ``smoothing`` tune Gradient2 only.
    """

    section: ClassVar[str] = "adaptive"
    limit: str = choice("gradient2", ("gradient2", "vegas", "aimd"), help="the update rule")
    initial_limit: int = integer(20, help="the limit before any sample")
    min_limit: int = integer(1, help="the limit never goes below this")
    max_limit: int = integer(200, help="the limit never goes above this")
    window: float = number(1.0, inclusive=True, help="seconds of samples per update")
    window_samples: int = integer(10, help="samples at least per update")
    sheddable_share: float = number(
        0.75, maximum=1.0, help="sheddable calls only below this share of the limit"
    )
    critical_share: float = number(
        1.25, minimum=1.0, inclusive=True, maximum=10.0, help="critical calls up to this share"
    )
    tolerance: float = number(
        1.2, minimum=1.0, inclusive=True, help="gradient2: latency growth before shrinking"
    )
    queue_size: int = integer(4, minimum=0, help="gradient2: calls allowed above the estimate")
    smoothing: float = number(0.4, maximum=1.0, help="gradient2: share of each update applied")

    def __post_init__(self) -> None:
        _validate(self)

    def rule(self, limit: str | None = None) -> LimitAlgorithm:
        """A fresh update rule (``limit`` or this section's) with these bounds and tuning."""
        name = self.limit if limit is None else limit
        initial, low, high = self.initial_limit, self.min_limit, self.max_limit
        if name == "gradient2":
            return Gradient2Limit(
                initial_limit=initial,
                min_limit=low,
                max_limit=high,
                smoothing=self.smoothing,
                queue_size=self.queue_size,
                tolerance=self.tolerance,
            )
        if name == "vegas":
            return VegasLimit(initial_limit=initial, min_limit=low, max_limit=high)
        if name == "aimd":
            return AIMDLimit(initial_limit=initial, min_limit=low, max_limit=high)
        raise ValueError(f"limit must be one of ['aimd', 'gradient2', 'vegas'], got {name!r}")


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """``retry``: defaults for :class:`~seawall.Retry`."""

    section: ClassVar[str] = "retry"
    attempts: int = integer(3, help="calls in total, the first one included")
    initial: float = number(0.1, inclusive=True, help="seconds before the first retry")
    maximum: float = number(10.0, inclusive=True, help="longest wait between attempts")
    multiplier: float = number(2.0, minimum=1.0, inclusive=True, help="growth per retry")
    jitter: bool = flag(True, help="draw each wait uniformly below its ceiling")
    deadline: float | None = number(
        None, optional=True, help="seconds for all attempts and waits; null: none"
    )

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class ShutdownSettings:
    """``shutdown``: defaults for :class:`~seawall.GracefulShutdown`."""

    section: ClassVar[str] = "shutdown"
    timeout: float = number(30.0, help="seconds for all cleanup callbacks together")
    default_timeout: float | None = number(
        None, optional=True, help="seconds per callback registered without one; null: none"
    )

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class HeartbeatSettings:
    """``heartbeat``: defaults for :class:`~seawall.Heartbeat`."""

    section: ClassVar[str] = "heartbeat"
    interval: float = number(10.0, help="seconds between two writes of the state file")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    """``watchdog``: defaults for :class:`~seawall.Watchdog`."""

    section: ClassVar[str] = "watchdog"
    timeout: float = number(30.0, help="seconds without a ping before the watchdog fires")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``store``: where shared policy state lives, and what to do when it does not answer."""

    section: ClassVar[str] = "store"
    url: str = url("memory://", help="memory://, file:///dir, redis://host:port/db, ...")
    timeout: float = number(0.1, help="seconds one store operation may take")
    degraded: str = choice(
        "local", ("local", "allow", "deny"), help="decision while the store is down"
    )

    def __post_init__(self) -> None:
        _validate(self)

    def __repr__(self) -> str:
        # Written out so that a password in the URL never reaches a log line or a traceback.
        url = redact_url(self.url)
        return f"StoreSettings(url={url!r}, timeout={self.timeout!r}, degraded={self.degraded!r})"


SECTIONS: dict[str, type[Any]] = {
    cls.section: cls
    for cls in (
        CircuitBreakerSettings,
        RateLimiterSettings,
        BulkheadSettings,
        RetrySettings,
        ShutdownSettings,
        HeartbeatSettings,
        WatchdogSettings,
        StoreSettings,
        AdaptiveSettings,
    )
}
