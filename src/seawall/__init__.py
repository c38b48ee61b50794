"""seawall: keep Python services standing when the world around them misbehaves.

Circuit breaker, rate limiter, bulkhead, retry, timeout, watchdog, heartbeat and graceful
shutdown, working on asyncio, on trio and from plain threads. ``import seawall`` needs only
anyio; integrations live in ``seawall.asgi``, ``seawall.httpx``, ``seawall.stores`` and
``seawall.config``, each behind its own extra.
"""

from __future__ import annotations

import logging as _logging

# -- policies and lifecycle: one import line per module
from ._breaker.breaker import (
    CircuitBreaker,
    CircuitPermit,
    CircuitStateChange,
    CircuitStats,
    circuit_breaker,
)
from ._bulkhead.bulkhead import Bulkhead, BulkheadStats, bulkhead
from ._clock import Clock, SystemClock
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
from ._events import add_listener
from ._heartbeat import Heartbeat, HeartbeatState
from ._limiter.keyed import KeyedRateLimiter
from ._limiter.limiter import RateLimitDecision, RateLimiter, RateLimiterStats, rate_limiter
from ._pipeline import Pipeline
from ._retry import Retry, RetryBudget, retry
from ._shutdown.shutdown import CleanupCallback, CleanupResult, GracefulShutdown
from ._stall import LoopStallDetector, LoopStallEvent
from ._timeout import Timeout
from ._watchdog import Watchdog, WatchdogStats, watchdog_context

__version__ = "0.1.0.dev0"

# A library logs, the application decides where it goes: without this, Python's last-resort
# handler would print seawall's warnings to stderr in programs that configured no logging.
_logging.getLogger("seawall").addHandler(_logging.NullHandler())

__all__ = [
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
    "GracefulShutdown",
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
