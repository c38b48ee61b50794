"""seawall's exception tree.

::

    SeawallError
     +-- RejectedError(retry_after)            your code did not run
     |    +-- CircuitOpenError(remaining_seconds)    also a CircuitBreakerError
     |    +-- RateLimitExceededError                 also a RateLimitError
     |    +-- BulkheadFullError
     +-- CircuitBreakerError                   (RuntimeError, as in the reference guide)
     +-- RateLimitError                        (RuntimeError, as in the reference guide)
     +-- TimeoutExceededError                  also the builtin TimeoutError
     +-- RetryExhaustedError(attempts)         the last attempt's error is its __cause__
     +-- WatchdogError                         (RuntimeError)
     |    +-- WatchdogTimeoutError(seconds_inactive)
     +-- HeartbeatError                        (RuntimeError)
     +-- ShutdownError                         (RuntimeError)
     +-- StoreError                            a store failed; re-raised from the original
     +-- ConfigError                           (ValueError) names the file, key and value

The guide-era bases derive from ``RuntimeError`` too, so code written against the reference
guide that catches ``RuntimeError`` keeps working. Every rejection is a fresh instance: a
rejected call never re-raises a stored exception whose traceback would grow without bound.
"""

from __future__ import annotations

__all__ = [
    "BulkheadFullError",
    "CircuitBreakerError",
    "CircuitOpenError",
    "ConfigError",
    "HeartbeatError",
    "RateLimitError",
    "RateLimitExceededError",
    "RejectedError",
    "RetryExhaustedError",
    "SeawallError",
    "ShutdownError",
    "StoreError",
    "TimeoutExceededError",
    "WatchdogError",
    "WatchdogTimeoutError",
]


class SeawallError(Exception):
    """The root of every error seawall raises."""


class RejectedError(SeawallError):
    """A policy refused the call: the protected code did not run.

    ``retry_after`` is the number of seconds after which the same call may be admitted
    (a best estimate, never negative).
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        # BaseException.__new__ has already stored ``args``; skipping super().__init__ keeps
        # the rejection path (raised on every refused call) cheap.
        self.retry_after = retry_after


class CircuitBreakerError(SeawallError, RuntimeError):
    """Base class for circuit-breaker errors (name kept from the reference guide)."""


class RateLimitError(SeawallError, RuntimeError):
    """Base class for rate-limiter errors (name kept from the reference guide)."""


class CircuitOpenError(RejectedError, CircuitBreakerError):
    """The circuit is open (or half-open with every probe slot taken).

    The guide's call shapes work too: ``CircuitOpenError("open", 15.5)`` and
    ``CircuitOpenError("open", remaining_seconds=15.5)`` set ``retry_after`` to 15.5.
    """

    def __init__(
        self,
        message: str = "Circuit breaker is open",
        remaining_seconds: float | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        # Raised on every refused call: the common form (retry_after only) stays one branch.
        if remaining_seconds is None:
            self.retry_after = 0.0 if retry_after is None else retry_after
        else:
            self.args = (message,)
            self.retry_after = _one_wait("remaining_seconds", remaining_seconds, retry_after)

    @property
    def remaining_seconds(self) -> float:
        """Seconds until the breaker will admit a probe (the guide's name for retry_after)."""
        return self.retry_after


class RateLimitExceededError(RejectedError, RateLimitError):
    """No token could be had within the allowed wait.

    As in the guide, ``retry_after`` may also be the second positional argument
    (``RateLimitExceededError("limited", 1.5)``); left out, it is 0.0.
    """

    def __init__(self, message: str = "Rate limit exceeded", retry_after: float = 0.0) -> None:
        self.args = (message,)
        self.retry_after = retry_after


class BulkheadFullError(RejectedError):
    """Every slot is taken and no queue place (or no slot within ``max_wait``) was found."""


class TimeoutExceededError(SeawallError, TimeoutError):
    """The protected call ran past its timeout and was cancelled (async) or abandoned (sync)."""

    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


class RetryExhaustedError(SeawallError):
    """Every attempt failed or the deadline ran out; ``__cause__`` is the last attempt's error."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class WatchdogError(SeawallError, RuntimeError):
    """Base class for watchdog errors."""


class WatchdogTimeoutError(WatchdogError):
    """The watched code went ``seconds_inactive`` seconds without a ping.

    As in the guide, ``seconds_inactive`` may also be the second positional argument
    (``WatchdogTimeoutError("stalled", 2.0)``); left out, it is 0.0.
    """

    def __init__(self, message: str = "Watchdog timeout", seconds_inactive: float = 0.0) -> None:
        super().__init__(message)
        self.seconds_inactive = seconds_inactive


class HeartbeatError(SeawallError, RuntimeError):
    """A heartbeat could not be written or was misconfigured."""


class ShutdownError(SeawallError, RuntimeError):
    """Graceful shutdown was misused (e.g. a duplicate callback name)."""


class StoreError(SeawallError):
    """A state store failed: unreachable, too slow, or holding data it cannot read."""


class ConfigError(SeawallError, ValueError):
    """Configuration is invalid; the message names the source, the key and the value."""


def _one_wait(name: str, value: float, retry_after: float | None) -> float:
    """``value`` given under the guide's ``name``; ValueError if ``retry_after`` disagrees."""
    if retry_after is not None and retry_after != value:
        raise ValueError(
            f"{name}={value!r} and retry_after={retry_after!r} disagree: they are the same "
            "value, give one of them"
        )
    return value
