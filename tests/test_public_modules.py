"""Every public module's surface is pinned, and nothing else looks public.

A public module is one whose dotted path has no part starting with an underscore. Each one's
``__all__`` equals the list below, in this order, so the public surface changes only on purpose
(``seawall.__all__`` itself is pinned in ``test_public_api.py``); any other module must be
private, so a new public-looking module fails here until it is added on purpose.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import seawall

PINNED: dict[str, list[str]] = {
    "seawall.asgi": [
        "ClientKey",
        "Limit",
        "RateLimit",
        "RateLimited",
        "Rejection",
        "ResilienceMiddleware",
        "SeawallLifespan",
        "limit",
        "parse_limits",
        "rate_limit_exceeded_handler",
        "seawall_lifespan",
    ],
    "seawall.config": [
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
    ],
    "seawall.events": [
        "AdaptiveBulkheadChanged",
        "BreakerStateChanged",
        "BulkheadChanged",
        "CallRecorded",
        "CircuitStateChange",
        "DegradedDecision",
        "Event",
        "LimiterWaited",
        "Listener",
        "LoopStalled",
        "Rejected",
        "StoreDegraded",
        "Subscription",
        "WatchdogFired",
        "add_listener",
        "emit",
        "listening",
    ],
    "seawall.httpx": [
        "BulkheadFullTransportError",
        "CircuitOpenTransportError",
        "HostPolicies",
        "IDEMPOTENT_METHODS",
        "RETRY_STATUSES",
        "RateLimitExceededTransportError",
        "ResilientTransport",
        "TimeoutTransportError",
    ],
    "seawall.metrics": [],
    "seawall.metrics.otel": [
        "OTelMetrics",
        "install",
    ],
    "seawall.metrics.prometheus": [
        "PrometheusMetrics",
        "install",
    ],
    "seawall.stores": [
        "DEGRADED_MODES",
        "BreakerSpec",
        "BreakerView",
        "BulkheadSpec",
        "FileStore",
        "Hold",
        "LimiterSpec",
        "MemoryStore",
        "PolicyStatus",
        "RedisStore",
        "Reservation",
        "Store",
        "StoreUnavailableError",
        "open_store",
    ],
    "seawall.testing": [
        "FakeClock",
        "disable_gates",
        "reset_gates",
        "retry_testing_mode",
        "settle_monitor",
    ],
}


def _all_modules() -> list[str]:
    found = ["seawall"]
    for info in pkgutil.walk_packages(seawall.__path__, "seawall."):
        found.append(info.name)
    return sorted(found)


def _looks_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


@pytest.mark.parametrize("module", sorted(PINNED))
def test_public_module_all_is_pinned(module: str) -> None:
    """The module's __all__ equals its pinned list, in that order."""
    assert importlib.import_module(module).__all__ == PINNED[module]


@pytest.mark.parametrize("module", sorted(PINNED))
def test_every_name_of_a_public_module_resolves(module: str) -> None:
    """Each name in a public module's __all__ is an attribute of that module."""
    loaded = importlib.import_module(module)
    assert [name for name in loaded.__all__ if not hasattr(loaded, name)] == []


def test_no_other_module_looks_public() -> None:
    """The public modules are exactly seawall and the pinned ones; every other is private."""
    public = [name for name in _all_modules() if _looks_public(name)]
    assert public == sorted(["seawall", *PINNED])


def test_the_walk_sees_every_family() -> None:
    """The module walk reaches nested private packages (so the check above sees them)."""
    modules = _all_modules()
    for name in (
        "seawall._core.limiter",
        "seawall._breaker.shared",
        "seawall.stores._redis.scripts",
    ):
        assert name in modules


@pytest.mark.parametrize(
    "cls", [seawall.CircuitBreaker, seawall.RateLimiter, seawall.KeyedRateLimiter, seawall.Bulkhead]
)
def test_a_policy_shows_its_real_signature(cls: type) -> None:
    """inspect.signature (so help() and IDEs) shows __init__'s parameters, not *args/**kwargs."""
    init = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert list(inspect.signature(cls).parameters.values()) == init


def test_the_rate_limiter_signature_names_every_parameter() -> None:
    """RateLimiter's signature lists the guide's parameters and seawall's, in order."""
    assert list(inspect.signature(seawall.RateLimiter).parameters) == [
        "rate",
        "per",
        "burst",
        "max_retry_after",
        "name",
        "clock",
        "store",
        "degraded",
    ]


def _public_classes() -> list[type]:
    found: dict[str, type] = {}
    for module in ["seawall", *PINNED]:
        loaded = importlib.import_module(module)
        for name in loaded.__all__:
            value = getattr(loaded, name)
            if isinstance(value, type):
                found[f"{module}.{name}"] = value
    return [found[key] for key in sorted(found)]


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__qualname__)
def test_no_public_class_hides_its_parameters(cls: type) -> None:
    """A public class takes *args/**kwargs in its signature only where its __init__ does."""
    try:
        shown = inspect.signature(cls)
    except ValueError:  # some builtins-derived classes have none to show
        return
    init = cls.__init__
    hidden = {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
    if not inspect.isfunction(init) or not (init.__module__ or "").startswith("seawall"):
        return  # object's, Enum's or a dataclass-free builtin __init__: nothing of ours hidden
    wanted = [p.kind in hidden for p in list(inspect.signature(init).parameters.values())[1:]]
    assert [p.kind in hidden for p in shown.parameters.values()] == wanted
