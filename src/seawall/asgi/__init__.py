"""seawall for ASGI apps (Starlette, FastAPI, any ASGI server): ``pip install 'seawall[asgi]'``.

* :class:`ResilienceMiddleware`: per-client rate limits (IETF ``RateLimit`` fields), load
  shedding, a circuit breaker over the app's own failures, and a per-request timeout.
* :func:`seawall_lifespan`: heartbeat and watchdogs at startup; readiness, drain and
  ``GracefulShutdown`` callbacks at shutdown.
* :func:`limit` and :class:`RateLimit`: per-endpoint limits, by decorator or FastAPI
  dependency.

See ``docs/asgi.md``.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401  (only to fail early with a useful message)
except ImportError as exc:  # pragma: no cover - exercised by hand without the extra
    raise ImportError(
        "seawall.asgi needs starlette; install the extra: pip install 'seawall[asgi]'"
    ) from exc

from ._client import ClientKey
from ._dependency import RateLimit, RateLimited, limit, rate_limit_exceeded_handler
from ._lifespan import SeawallLifespan, seawall_lifespan
from ._limits import Limit, parse_limits
from ._middleware import ResilienceMiddleware
from ._responses import Rejection

__all__ = [
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
]
