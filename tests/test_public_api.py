"""The public surface: pinned names, a light import, and the typing marker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import seawall

PUBLIC = [
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

# The reference guide's 22 names: code written against it runs after changing the import.
GUIDE = [
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStats",
    "CleanupCallback",
    "GracefulShutdown",
    "Heartbeat",
    "HeartbeatError",
    "HeartbeatState",
    "RateLimitError",
    "RateLimitExceededError",
    "RateLimiter",
    "RateLimiterStats",
    "ShutdownError",
    "Watchdog",
    "WatchdogError",
    "WatchdogStats",
    "WatchdogTimeoutError",
    "circuit_breaker",
    "rate_limiter",
    "watchdog_context",
]


# seawall.testing: helpers for users' own tests (retry_testing_mode: no Retry waits in a block;
# disable_gates / reset_gates: the ASGI gates off, and their counted state forgotten).
TESTING = ["FakeClock", "disable_gates", "reset_gates", "retry_testing_mode", "settle_monitor"]


def test_all_is_pinned_and_sorted() -> None:
    """seawall.__all__ changes only on purpose: it equals this sorted list, in this order."""
    assert seawall.__all__ == PUBLIC


def test_testing_all_is_pinned() -> None:
    """seawall.testing.__all__ changes only on purpose: it equals this sorted list."""
    import seawall.testing

    assert seawall.testing.__all__ == TESTING


def test_every_public_name_resolves() -> None:
    """Each name in __all__ is an attribute of the package."""
    missing = [name for name in seawall.__all__ if not hasattr(seawall, name)]
    assert missing == []


def test_every_reference_guide_name_is_public() -> None:
    """All 22 names of the reference guide's __all__ are exported."""
    assert sorted(set(GUIDE) - set(seawall.__all__)) == []


def test_guide_error_bases_are_runtime_errors() -> None:
    """The guide's error bases also derive from RuntimeError, as guide-era code may expect."""
    for name in (
        "CircuitBreakerError",
        "RateLimitError",
        "WatchdogError",
        "HeartbeatError",
        "ShutdownError",
    ):
        assert issubclass(getattr(seawall, name), RuntimeError), name


def test_import_seawall_needs_only_anyio() -> None:
    """`import seawall` in a fresh interpreter imports no integration library."""
    code = (
        "import sys, json, seawall; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    heavy = {
        "httpx",
        "starlette",
        "fastapi",
        "uvicorn",
        "coredis",
        "redis",
        "yaml",
        "prometheus_client",
        "opentelemetry",
        "trio",
        "aiofiles",
    }
    assert sorted(loaded & heavy) == []


def test_package_ships_py_typed() -> None:
    """The py.typed marker is in the package, so type checkers use our annotations."""
    assert (Path(seawall.__file__).parent / "py.typed").is_file()
