"""seawall: keep Python services standing when the world around them misbehaves.

Circuit breaker, rate limiter, bulkhead, retry, timeout, watchdog, heartbeat and graceful
shutdown, working on asyncio, on trio and from plain threads. ``import seawall`` needs only
anyio; integrations live in ``seawall.asgi``, ``seawall.httpx``, ``seawall.stores`` and
``seawall.config``, each behind its own extra.

``import seawall`` loads this module alone: each name below is imported from its module the
first time it is used (PEP 562), so a program pays only for what it touches, and a CLI tool,
a worker or a serverless function starts about as fast as with anyio alone.
"""

# Not typing.TYPE_CHECKING: importing typing is a cost this module avoids. Type checkers treat
# any variable of this name as true.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

# Where each public name lives, relative to this package. The type-checking imports below name
# the same objects (tests/test_architecture.py keeps the two in step with __all__).
_EXPORTS: dict[str, str] = {
    "AdaptiveBulkhead": "._bulkhead.adaptive",
    "AdaptiveBulkheadStats": "._bulkhead.adaptive",
    "AdaptivePermit": "._bulkhead.adaptive",
    "AIMDLimit": "._core.adaptive",
    "Gradient2Limit": "._core.adaptive",
    "VegasLimit": "._core.adaptive",
    "CircuitBreaker": "._breaker.breaker",
    "CircuitPermit": "._breaker.breaker",
    "CircuitStats": "._breaker.breaker",
    "circuit_breaker": "._breaker.breaker",
    "Bulkhead": "._bulkhead.bulkhead",
    "BulkheadStats": "._bulkhead.bulkhead",
    "bulkhead": "._bulkhead.bulkhead",
    "Clock": "._clock",
    "SystemClock": "._clock",
    "CircuitState": "._core.breaker",
    "BulkheadFullError": "._errors",
    "CircuitBreakerError": "._errors",
    "CircuitOpenError": "._errors",
    "ConfigError": "._errors",
    "Fallback": "._fallback",
    "HeartbeatError": "._errors",
    "RateLimitError": "._errors",
    "RateLimitExceededError": "._errors",
    "RejectedError": "._errors",
    "RetryExhaustedError": "._errors",
    "SeawallError": "._errors",
    "ShutdownError": "._errors",
    "StoreError": "._errors",
    "TimeoutExceededError": "._errors",
    "WatchdogError": "._errors",
    "WatchdogTimeoutError": "._errors",
    "CircuitStateChange": "._events",
    "add_listener": "._events",
    "Heartbeat": "._heartbeat",
    "HeartbeatState": "._heartbeat",
    "KeyedRateLimiter": "._limiter.keyed",
    "RateLimitDecision": "._limiter.limiter",
    "RateLimiter": "._limiter.limiter",
    "RateLimiterStats": "._limiter.limiter",
    "rate_limiter": "._limiter.limiter",
    "Pipeline": "._pipeline",
    "Retry": "._retry",
    "RetryBudget": "._retry",
    "retry": "._retry",
    "CleanupCallback": "._shutdown.shutdown",
    "CleanupResult": "._shutdown.shutdown",
    "GracefulShutdown": "._shutdown.shutdown",
    "LoopStallDetector": "._stall",
    "LoopStallEvent": "._stall",
    "Timeout": "._timeout",
    "Watchdog": "._watchdog",
    "WatchdogStats": "._watchdog",
    "watchdog_context": "._watchdog",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seawall' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups find it without calling this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from ._breaker.breaker import CircuitBreaker, CircuitPermit, CircuitStats, circuit_breaker
    from ._bulkhead.adaptive import AdaptiveBulkhead, AdaptiveBulkheadStats, AdaptivePermit
    from ._bulkhead.bulkhead import Bulkhead, BulkheadStats, bulkhead
    from ._clock import Clock, SystemClock
    from ._core.adaptive import AIMDLimit, Gradient2Limit, VegasLimit
    from ._core.breaker import CircuitState
    from ._errors import (
        BulkheadFullError,
        CircuitBreakerError,
        CircuitOpenError,
        ConfigError,
        HeartbeatError,
        RateLimitError,
        RateLimitExceededError,
        RejectedError,
        RetryExhaustedError,
        SeawallError,
        ShutdownError,
        StoreError,
        TimeoutExceededError,
        WatchdogError,
        WatchdogTimeoutError,
    )
    from ._events import CircuitStateChange, add_listener
    from ._fallback import Fallback
    from ._heartbeat import Heartbeat, HeartbeatState
    from ._limiter.keyed import KeyedRateLimiter
    from ._limiter.limiter import RateLimitDecision, RateLimiter, RateLimiterStats, rate_limiter
    from ._pipeline import Pipeline
    from ._retry import Retry, RetryBudget, retry
    from ._shutdown.shutdown import CleanupCallback, CleanupResult, GracefulShutdown
    from ._stall import LoopStallDetector, LoopStallEvent
    from ._timeout import Timeout
    from ._watchdog import Watchdog, WatchdogStats, watchdog_context

__all__ = [
    "AIMDLimit",
    "AdaptiveBulkhead",
    "AdaptiveBulkheadStats",
    "AdaptivePermit",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStats",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitOpenError",
    "CircuitPermit",
    "CircuitState",
    "CircuitStateChange",
    "CircuitStats",
    "CleanupCallback",
    "CleanupResult",
    "Clock",
    "ConfigError",
    "Fallback",
    "GracefulShutdown",
    "Gradient2Limit",
    "Heartbeat",
    "HeartbeatError",
    "HeartbeatState",
    "KeyedRateLimiter",
    "LoopStallDetector",
    "LoopStallEvent",
    "Pipeline",
    "RateLimitDecision",
    "RateLimitError",
    "RateLimitExceededError",
    "RateLimiter",
    "RateLimiterStats",
    "RejectedError",
    "Retry",
    "RetryBudget",
    "RetryExhaustedError",
    "SeawallError",
    "ShutdownError",
    "StoreError",
    "SystemClock",
    "Timeout",
    "TimeoutExceededError",
    "VegasLimit",
    "Watchdog",
    "WatchdogError",
    "WatchdogStats",
    "WatchdogTimeoutError",
    "add_listener",
    "bulkhead",
    "circuit_breaker",
    "rate_limiter",
    "retry",
    "watchdog_context",
]
