"""The demo's protected service: a Starlette app behind ResilienceMiddleware.

Its one endpoint, ``GET /quote``, fetches a quote from the upstream through an httpx client
whose transport is a :class:`~seawall.httpx.ResilientTransport` (retries, a host limiter that
honours ``Retry-After``, a breaker per host). When the upstream cannot give a fresh quote (it
failed, or one of the transport's policies refused the call), the endpoint *degrades*: it
answers 200 with the last good quote, marked ``"degraded": true``.

In front of it, the middleware applies a per-client rate limit (429), a bulkhead (shed 503),
the app's own breaker (503 while open; 504s count as failures) and a request timeout (504).
Everything the service decides is tallied here, server-side, so the demo can check it against
what the clients saw.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..._breaker.breaker import CircuitBreaker, CircuitStateChange
from ..._limiter.limiter import RateLimiter
from ..._retry import Retry
from ..._shutdown.shutdown import GracefulShutdown
from ...asgi import Rejection, ResilienceMiddleware, seawall_lifespan
from ...asgi._types import ASGIApp, Scope
from ...httpx import ResilientTransport
from ...stores._base import Store
from ._schedule import REQUEST_TIMEOUT

__all__ = [
    "CLIENT_HEADER",
    "MAX_CONCURRENT",
    "PER_CLIENT_LIMIT",
    "MIDDLEWARE_PREFIX",
    "POLICY_NAMES",
    "Service",
    "breakers",
]

CLIENT_HEADER = "x-demo-client"
PER_CLIENT_LIMIT = "5/second"
MAX_CONCURRENT = 8
MAX_BLOCK = 0.25
APP_BREAKER = "demo-app"
UPSTREAM_BREAKER = "demo-upstream"
UPSTREAM_LIMITER = "demo-upstream-limiter"
MIDDLEWARE_PREFIX = "demo-asgi"
POLICY_NAMES = (APP_BREAKER, UPSTREAM_BREAKER, UPSTREAM_LIMITER)

Listener = Callable[[CircuitStateChange], object]


def breakers(
    store: Store | None, on_change: Listener | None = None
) -> tuple[CircuitBreaker, CircuitBreaker]:
    """The service's own breaker and the upstream host's, kept in ``store`` (None: locally).

    (Another process builds the same pair over the same store to watch their shared state.)
    """
    shared: dict[str, Any] = {} if store is None else {"store": store}
    own = CircuitBreaker(
        max_failures=3, reset_timeout=0.5, name=APP_BREAKER, on_state_change=on_change, **shared
    )
    host = CircuitBreaker(
        max_failures=4,
        reset_timeout=0.5,
        name=UPSTREAM_BREAKER,
        on_state_change=on_change,
        **shared,
    )
    return own, host


class _CountingBudget:
    """A retry budget that allows every retry and counts them (for the summary)."""

    def __init__(self) -> None:
        self.calls = 0
        self.retries = 0

    def record_call(self) -> None:
        self.calls += 1

    def try_retry(self) -> bool:
        self.retries += 1
        return True


def _client_key(scope: Scope) -> Hashable:
    # Every simulated client connects from 127.0.0.1, so they identify themselves by header.
    for name, value in scope["headers"]:
        if name == CLIENT_HEADER.encode():
            return bytes(value).decode("latin-1")
    return "anonymous"


class Service:
    """The protected app and its policies; ``app`` is what uvicorn serves.

    ``store`` (None for in-process state) keeps the breakers and the host limiter; the app's
    state change listener ``on_change`` sees both breakers' transitions.
    """

    def __init__(
        self, upstream_url: str, *, store: Store | None, seed: int, on_change: Listener
    ) -> None:
        self.served: Counter[str] = Counter()
        self.budget = _CountingBudget()
        self.shutdown_ran: list[str] = []
        shared: dict[str, Any] = {} if store is None else {"store": store}
        self.app_breaker, self.upstream_breaker = breakers(store, on_change)
        self.upstream_limiter = RateLimiter(200, 1.0, name=UPSTREAM_LIMITER, **shared)
        retry = Retry(
            attempts=3,
            initial=0.05,
            maximum=0.2,
            deadline=0.3,
            budget=self.budget,
            random=random.Random(seed).random,
        )
        # An upstream's Retry-After blocks its host for at most MAX_BLOCK: the demo's phases
        # are short, and a 1 s block would hide the next phase from the upstream.
        transport = ResilientTransport(
            retry=retry,
            breaker=self.upstream_breaker,
            limiter=self.upstream_limiter,
            max_retry_after=MAX_BLOCK,
        )
        self.client = httpx.AsyncClient(transport=transport, base_url=upstream_url, timeout=5.0)
        self._last_good: object = None
        self.app = self._build(store)

    def _build(self, store: Store | None) -> ASGIApp:
        shutdown = GracefulShutdown(timeout=5.0)
        shutdown.register("close-upstream-client", self._close_client, priority=10)
        shutdown.register("report", lambda: self.shutdown_ran.append("report"), priority=20)
        lifespan = seawall_lifespan(shutdown=shutdown, drain_timeout=2.0)
        inner = Starlette(routes=[Route("/quote", self._quote)])
        return ResilienceMiddleware(
            inner,
            rate_limit=PER_CLIENT_LIMIT,
            key=_client_key,
            max_concurrent=MAX_CONCURRENT,
            breaker=self.app_breaker,
            request_timeout=REQUEST_TIMEOUT,
            on_reject=self._rejected,
            lifespan=lifespan,
            # With a store, every worker shares the per-client buckets and the bulkhead's slots.
            store=store if store is not None else "memory://",
            store_prefix=MIDDLEWARE_PREFIX,
        )

    async def _close_client(self) -> None:
        await self.client.aclose()
        self.shutdown_ran.append("close-upstream-client")

    async def _quote(self, request: Request) -> Response:
        try:
            response = await self.client.get("/quote")
        except httpx.HTTPError:  # refused by a policy (these are transport errors) or failed
            return self._degraded()
        if response.status_code != 200:
            return self._degraded()
        self._last_good = response.json()
        self.served["fresh"] += 1
        return JSONResponse({"quote": self._last_good, "degraded": False})

    def _degraded(self) -> Response:
        self.served["degraded"] += 1
        return JSONResponse({"quote": self._last_good, "degraded": True})

    def _rejected(self, scope: Scope, rejection: Rejection) -> ASGIApp:
        self.served[rejection.reason] += 1
        return Response(
            rejection.body(), status_code=rejection.status, media_type="application/problem+json"
        )
