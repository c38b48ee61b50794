"""Rejections that are seawall errors and ``httpx.TransportError`` at once.

::

    httpx.HTTPError
     +-- httpx.RequestError
          +-- httpx.TransportError
               +-- CircuitOpenTransportError        also seawall.CircuitOpenError
               +-- RateLimitExceededTransportError  also seawall.RateLimitExceededError
               +-- BulkheadFullTransportError       also seawall.BulkheadFullError
               +-- httpx.TimeoutException
                    +-- TimeoutTransportError       also seawall.TimeoutExceededError

So ``except httpx.HTTPError`` in existing client code still catches a request that the
transport refused to send, and ``except seawall.RejectedError`` sees ``retry_after``.
"""

from __future__ import annotations

import httpx

from .._errors import (
    BulkheadFullError,
    CircuitOpenError,
    RateLimitExceededError,
    RejectedError,
    TimeoutExceededError,
)

__all__ = [
    "BulkheadFullTransportError",
    "CircuitOpenTransportError",
    "RateLimitExceededTransportError",
    "TimeoutTransportError",
    "as_transport_error",
]


class CircuitOpenTransportError(CircuitOpenError, httpx.TransportError):
    """The host's circuit breaker is open: the request was not sent."""

    def __init__(
        self, message: str, *, retry_after: float, request: httpx.Request | None = None
    ) -> None:
        CircuitOpenError.__init__(self, message, retry_after=retry_after)
        httpx.TransportError.__init__(self, message, request=request)


class RateLimitExceededTransportError(RateLimitExceededError, httpx.TransportError):
    """No token for the host within the deadline: the request was not sent."""

    def __init__(
        self, message: str, *, retry_after: float, request: httpx.Request | None = None
    ) -> None:
        RateLimitExceededError.__init__(self, message, retry_after=retry_after)
        httpx.TransportError.__init__(self, message, request=request)


class BulkheadFullTransportError(BulkheadFullError, httpx.TransportError):
    """Too many requests in flight to the host: the request was not sent."""

    def __init__(
        self, message: str, *, retry_after: float, request: httpx.Request | None = None
    ) -> None:
        BulkheadFullError.__init__(self, message, retry_after=retry_after)
        httpx.TransportError.__init__(self, message, request=request)


class TimeoutTransportError(TimeoutExceededError, httpx.TimeoutException):
    """An attempt ran past its attempt timeout, or the request past its deadline."""

    def __init__(
        self, message: str, *, timeout: float, request: httpx.Request | None = None
    ) -> None:
        TimeoutExceededError.__init__(self, message, timeout=timeout)
        httpx.TimeoutException.__init__(self, message, request=request)


def as_transport_error(exc: RejectedError, request: httpx.Request) -> RejectedError:
    """The transport-error twin of a seawall rejection (a fresh instance)."""
    if isinstance(exc, httpx.TransportError):
        return exc
    message = str(exc)
    if isinstance(exc, CircuitOpenError):
        cls: type[RejectedError] = CircuitOpenTransportError
    elif isinstance(exc, RateLimitExceededError):
        cls = RateLimitExceededTransportError
    elif isinstance(exc, BulkheadFullError):
        cls = BulkheadFullTransportError
    else:
        return exc
    return cls(message, retry_after=exc.retry_after, request=request)  # type: ignore[call-arg]
