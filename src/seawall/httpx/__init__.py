"""seawall for httpx: :class:`ResilientTransport`, the standard resilience pipeline per origin.

Needs the ``httpx`` extra: ``pip install 'seawall[httpx]'``.
"""

from __future__ import annotations

try:
    import httpx as _httpx  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "seawall.httpx needs httpx; install it with: pip install 'seawall[httpx]'"
    ) from exc

from ._errors import (
    BulkheadFullTransportError,
    CircuitOpenTransportError,
    RateLimitExceededTransportError,
    TimeoutTransportError,
)
from ._transport import IDEMPOTENT_METHODS, RETRY_STATUSES, HostPolicies, ResilientTransport

__all__ = [
    "BulkheadFullTransportError",
    "CircuitOpenTransportError",
    "HostPolicies",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "RateLimitExceededTransportError",
    "ResilientTransport",
    "TimeoutTransportError",
]
