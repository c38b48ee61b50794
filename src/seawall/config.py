"""Settings for seawall's policies, from built-in defaults, a file and the environment.

Precedence, lowest first: built-in defaults < the configuration file < ``SEAWALL_*``
environment variables < constructor arguments. A file is read only when named: a path given
to :func:`load_settings` or :func:`configure`, or the one ``SEAWALL_CONFIG`` names; never one
from the working directory or the home directory. Every bad value raises
:class:`~seawall.ConfigError` naming the file (or the variable), the dotted key and the value;
nothing is clamped::

    from seawall import CircuitBreaker
    from seawall.config import load_settings

    settings = load_settings("kstlib.conf.yml")  # env: SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES=3
    breaker = CircuitBreaker(**settings.circuit_breaker_kwargs(), name="payments")
    strict = CircuitBreaker(**settings.circuit_breaker_kwargs(max_failures=1))  # argument wins

Policies take the options they leave out from :func:`current`. Unless :func:`configure`
installed settings first, the first call of :func:`current` (the first policy built that
consults it, never ``import seawall``) loads them once from ``SEAWALL_CONFIG`` and the
``SEAWALL_*`` variables, so setting the variables is enough. See ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, TypedDict, Unpack

from ._config.load import CONFIG_VAR, env_name, load
from ._config.schema import closest, shown
from ._config.settings import (
    SECTIONS,
    AdaptiveSettings,
    BulkheadSettings,
    CircuitBreakerSettings,
    HeartbeatSettings,
    RateLimiterSettings,
    RetrySettings,
    ShutdownSettings,
    StoreSettings,
    WatchdogSettings,
    rules,
)
from ._errors import ConfigError

if TYPE_CHECKING:
    from ._core.adaptive import LimitAlgorithm

__all__ = [
    "CONFIG_VAR",
    "AdaptiveBulkheadKwargs",
    "AdaptiveSettings",
    "BulkheadKwargs",
    "BulkheadSettings",
    "CircuitBreakerKwargs",
    "CircuitBreakerSettings",
    "ConfigError",
    "GracefulShutdownKwargs",
    "HeartbeatKwargs",
    "HeartbeatSettings",
    "KeyedRateLimiterKwargs",
    "RateLimiterKwargs",
    "RateLimiterSettings",
    "RetryKwargs",
    "RetrySettings",
    "Settings",
    "ShutdownSettings",
    "StoreSettings",
    "WatchdogKwargs",
    "WatchdogSettings",
    "configure",
    "current",
    "env_name",
    "load_settings",
]

# The helpers return every key; total=False only so that the same types can type the
# overrides (``settings.bulkhead_kwargs(max_wait=1.0)``).


class CircuitBreakerKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.CircuitBreaker`."""

    max_failures: int
    reset_timeout: float
    half_open_max_calls: int
    success_threshold: int


class RateLimiterKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.RateLimiter`."""

    rate: float
    per: float
    burst: float | None


class KeyedRateLimiterKwargs(RateLimiterKwargs, total=False):
    """Keyword arguments for :class:`~seawall.KeyedRateLimiter`."""

    max_keys: int


class BulkheadKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.Bulkhead`."""

    max_concurrent: int
    max_wait: float
    max_queue: int | None


class AdaptiveBulkheadKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.AdaptiveBulkhead`."""

    limit: str | LimitAlgorithm
    window: float
    window_samples: int
    sheddable_share: float
    critical_share: float


class RetryKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.Retry`."""

    attempts: int
    initial: float
    maximum: float
    multiplier: float
    jitter: bool
    deadline: float | None


class GracefulShutdownKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.GracefulShutdown`."""

    timeout: float
    default_callback_timeout: float | None


class HeartbeatKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.Heartbeat` (after its ``state_file``)."""

    interval: float


class WatchdogKwargs(TypedDict, total=False):
    """Keyword arguments for :class:`~seawall.Watchdog`."""

    timeout: float


def _no_origins() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every section's settings; ``Settings()`` holds the built-in defaults."""

    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    rate_limiter: RateLimiterSettings = field(default_factory=RateLimiterSettings)
    bulkhead: BulkheadSettings = field(default_factory=BulkheadSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    shutdown: ShutdownSettings = field(default_factory=ShutdownSettings)
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    adaptive: AdaptiveSettings = field(default_factory=AdaptiveSettings)
    origins: Mapping[str, str] = field(default_factory=_no_origins, compare=False, repr=False)
    """Where each key not left at its default came from: a file path or an env variable."""
    file: str | None = field(default=None, compare=False)
    """The configuration file these settings were read from; None when no file was read."""

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {shown(value)}")
        object.__setattr__(self, "origins", MappingProxyType(dict(self.origins)))

    def origin(self, key: str) -> str:
        """Where dotted ``key`` (``"circuit_breaker.max_failures"``) got its value."""
        known = [f"{s}.{k}" for s, cls in SECTIONS.items() for k in rules(cls)]
        if key not in known:
            near = closest(key, known)
            hint = f"; did you mean {near!r}?" if near else ""
            raise ConfigError(f"unknown key {key!r}{hint}")
        return self.origins.get(key, "default")

    @property
    def variables(self) -> tuple[str, ...]:
        """The ``SEAWALL_<SECTION>__<KEY>`` variables that set a key, sorted."""
        prefix = "environment variable "
        return tuple(
            sorted(o.removeprefix(prefix) for o in self.origins.values() if o.startswith(prefix))
        )

    # -- constructor keyword arguments ---------------------------------------------------

    def circuit_breaker_kwargs(
        self, **overrides: Unpack[CircuitBreakerKwargs]
    ) -> CircuitBreakerKwargs:
        """``CircuitBreaker(**settings.circuit_breaker_kwargs(), name=...)``."""
        s = self.circuit_breaker
        kwargs = CircuitBreakerKwargs(
            max_failures=s.max_failures,
            reset_timeout=s.reset_timeout,
            half_open_max_calls=s.half_open_max_calls,
            success_threshold=s.success_threshold,
        )
        kwargs.update(overrides)
        return kwargs

    def rate_limiter_kwargs(self, **overrides: Unpack[RateLimiterKwargs]) -> RateLimiterKwargs:
        """``RateLimiter(**settings.rate_limiter_kwargs())``: ``default_rate`` as ``rate``..."""
        s = self.rate_limiter
        kwargs = RateLimiterKwargs(rate=s.default_rate, per=s.default_per, burst=s.default_burst)
        kwargs.update(overrides)
        return kwargs

    def keyed_rate_limiter_kwargs(
        self, **overrides: Unpack[KeyedRateLimiterKwargs]
    ) -> KeyedRateLimiterKwargs:
        """``KeyedRateLimiter(**settings.keyed_rate_limiter_kwargs())``."""
        s = self.rate_limiter
        kwargs = KeyedRateLimiterKwargs(
            rate=s.default_rate, per=s.default_per, burst=s.default_burst, max_keys=s.max_keys
        )
        kwargs.update(overrides)
        return kwargs

    def bulkhead_kwargs(self, **overrides: Unpack[BulkheadKwargs]) -> BulkheadKwargs:
        """``Bulkhead(**settings.bulkhead_kwargs())``; ConfigError if max_concurrent is 'auto'."""
        s = self.bulkhead
        if s.max_concurrent == "auto" and "max_concurrent" not in overrides:
            # A Bulkhead has a fixed size: "auto" is for the middleware or an AdaptiveBulkhead.
            raise ConfigError(
                f"bulkhead.max_concurrent is 'auto' ({self.origin('bulkhead.max_concurrent')}): "
                "a Bulkhead needs an int; pass settings.bulkhead.max_concurrent to "
                "ResilienceMiddleware, or build an AdaptiveBulkhead() (section adaptive)"
            )
        size = (
            s.max_concurrent if isinstance(s.max_concurrent, int) else overrides["max_concurrent"]
        )
        kwargs = BulkheadKwargs(max_concurrent=size, max_wait=s.max_wait, max_queue=s.max_queue)
        kwargs.update(overrides)
        return kwargs

    def adaptive_bulkhead_kwargs(
        self, **overrides: Unpack[AdaptiveBulkheadKwargs]
    ) -> AdaptiveBulkheadKwargs:
        """``AdaptiveBulkhead(**settings.adaptive_bulkhead_kwargs())``: a fresh rule each call."""
        s = self.adaptive
        kwargs = AdaptiveBulkheadKwargs(
            limit=s.rule(),
            window=s.window,
            window_samples=s.window_samples,
            sheddable_share=s.sheddable_share,
            critical_share=s.critical_share,
        )
        kwargs.update(overrides)
        return kwargs

    def retry_kwargs(self, **overrides: Unpack[RetryKwargs]) -> RetryKwargs:
        """``Retry(**settings.retry_kwargs())``."""
        s = self.retry
        kwargs = RetryKwargs(
            attempts=s.attempts,
            initial=s.initial,
            maximum=s.maximum,
            multiplier=s.multiplier,
            jitter=s.jitter,
            deadline=s.deadline,
        )
        kwargs.update(overrides)
        return kwargs

    def shutdown_kwargs(
        self, **overrides: Unpack[GracefulShutdownKwargs]
    ) -> GracefulShutdownKwargs:
        """``GracefulShutdown(**settings.shutdown_kwargs())``: ``default_timeout`` per callback."""
        s = self.shutdown
        kwargs = GracefulShutdownKwargs(
            timeout=s.timeout, default_callback_timeout=s.default_timeout
        )
        kwargs.update(overrides)
        return kwargs

    def heartbeat_kwargs(self, **overrides: Unpack[HeartbeatKwargs]) -> HeartbeatKwargs:
        """``Heartbeat(path, **settings.heartbeat_kwargs())``."""
        kwargs = HeartbeatKwargs(interval=self.heartbeat.interval)
        kwargs.update(overrides)
        return kwargs

    def watchdog_kwargs(self, **overrides: Unpack[WatchdogKwargs]) -> WatchdogKwargs:
        """``Watchdog(**settings.watchdog_kwargs(), on_timeout=...)``."""
        kwargs = WatchdogKwargs(timeout=self.watchdog.timeout)
        kwargs.update(overrides)
        return kwargs


def load_settings(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] = os.environ
) -> Settings:
    """Settings from built-in defaults, then the file, then ``SEAWALL_*`` variables in ``env``.

    The file is ``path`` if given, else the one ``env["SEAWALL_CONFIG"]`` names, else none.
    Pass ``env={}`` to ignore the environment.
    """
    sections, origins, file = load(path, env)
    return Settings(**sections, origins=origins, file=file)


_lock = threading.Lock()
# None until settings are installed: by configure(), or by the first current() call.
_installed: Settings | None = None


def configure(
    source: Settings | str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
) -> Settings:
    """Install settings process-wide and return them.

    ``source`` is a :class:`Settings`, or a file path given to :func:`load_settings` (with
    ``env``); ``None`` loads from ``SEAWALL_CONFIG`` and the environment only. They replace
    whatever was installed or loaded before: ``configure(Settings())`` goes back to the
    built-in defaults, whatever the environment says. A failed call installs nothing.
    """
    global _installed
    settings = source if isinstance(source, Settings) else load_settings(source, env=env)
    with _lock:
        _installed = settings
    return settings


def current() -> Settings:
    """The process-wide settings, which every policy consults for the options left out.

    These are the settings :func:`configure` installed. Before any ``configure()`` call, the
    first call loads them with :func:`load_settings` from ``SEAWALL_CONFIG`` and the
    ``SEAWALL_*`` variables of ``os.environ`` and keeps them: later changes to the file or
    the environment are not seen. A load that fails raises :class:`~seawall.ConfigError` and
    keeps nothing, so the next call tries again.
    """
    settings = _installed
    return _load_once() if settings is None else settings


def _load_once() -> Settings:
    # Under the lock, so that threads building their first policies at once read the file
    # once and all get the same object.
    global _installed
    with _lock:
        if _installed is None:
            _installed = load_settings(env=os.environ)
        return _installed
