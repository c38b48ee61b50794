"""``seawall demo --adaptive``: the service sheds by priority under an adaptive limit.

The upstream here never misbehaves on purpose: it has :data:`UPSTREAM_WORKERS` workers taking
:data:`QUOTE_TIME` a quote, and a request that finds them all busy waits its turn, so its
latency grows with load, as a real service's does. The protected service answers three routes
that each fetch one quote: ``/checkout`` (critical), ``/quote`` (default) and ``/report``
(sheddable, batch work), behind :class:`~seawall.asgi.ResilienceMiddleware` with an
:class:`~seawall.AdaptiveBulkhead` as ``max_concurrent`` and those routes as ``priority``.

What the run shows of the bulkhead (its limit, the requests in flight, sheds by priority) comes
from seawall's public events only (:class:`~seawall.events.AdaptiveBulkheadChanged` and
:class:`~seawall.events.Rejected`), read by :class:`AdaptiveWatch`: the demo proves what any
listener, log or metrics exporter would see. It runs in one process: an adaptive limit is
learned by each process from its own requests, so it cannot be shared by worker processes.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import anyio
import anyio.abc
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..._breaker.breaker import CircuitBreaker
from ..._bulkhead.adaptive import AdaptiveBulkhead
from ..._clock import SYSTEM_CLOCK
from ..._core.adaptive import Gradient2Limit
from ..._shutdown.shutdown import GracefulShutdown
from ...asgi import Rejection, ResilienceMiddleware, seawall_lifespan
from ...asgi._types import ASGIApp, Scope
from ...events import AdaptiveBulkheadChanged, Event, Rejected
from ._backends import ServedHere
from ._display import AdaptiveStatus
from ._schedule import REQUEST_TIMEOUT
from ._servers import Running

__all__ = [
    "BULKHEAD_NAME",
    "CRITICAL_SHARE",
    "INITIAL_LIMIT",
    "PRIORITY",
    "QUOTE_TIME",
    "ROUTES",
    "SHEDDABLE_SHARE",
    "UPSTREAM_WORKERS",
    "WINDOW",
    "AdaptiveBackend",
    "AdaptiveService",
    "AdaptiveWatch",
    "CapacityUpstream",
]

UPSTREAM_WORKERS = 4
QUOTE_TIME = 0.05
INITIAL_LIMIT = 20
#: Gradient2 moves the limit once a window. The default window (1 s, 10 samples) needs 10 s
#: of traffic to learn its baseline: a short demo uses windows of 0.2 s (5 samples at least).
WINDOW = 0.2
WINDOW_SAMPLES = 5
#: AdaptiveBulkhead's defaults, given explicitly: the run must not depend on SEAWALL_ADAPTIVE__*.
SHEDDABLE_SHARE = 0.75
CRITICAL_SHARE = 1.25
BULKHEAD_NAME = "demo-adaptive"
#: The middleware's ``priority`` option: a path prefix -> its priority (others: default).
PRIORITY = {"/checkout": "critical", "/report": "sheddable"}
#: Each route of the service and its priority.
ROUTES = {"/checkout": "critical", "/quote": "default", "/report": "sheddable"}


class CapacityUpstream:
    """A quote service with a fixed number of workers: beyond them, requests queue."""

    def __init__(self, *, seed: int) -> None:
        self._random = random.Random(seed)
        self._workers: anyio.Semaphore | None = None
        self.answered: Counter[int] = Counter()
        self.app = Starlette(routes=[Route("/quote", self._quote)])

    async def _quote(self, request: Request) -> Response:
        if self._workers is None:  # made in the server's own event loop
            self._workers = anyio.Semaphore(UPSTREAM_WORKERS)
        async with self._workers:
            await SYSTEM_CLOCK.asleep(QUOTE_TIME)
        self.answered[200] += 1
        price = round(100 + self._random.uniform(-5, 5), 2)
        return JSONResponse({"symbol": "SEA", "price": price})


class AdaptiveService:
    """The protected app: three routes of three priorities behind an adaptive bulkhead."""

    def __init__(self, upstream_url: str) -> None:
        self.served: Counter[str] = Counter()
        self.shutdown_ran: list[str] = []
        self.client = httpx.AsyncClient(
            base_url=upstream_url,
            timeout=5.0,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.bulkhead = AdaptiveBulkhead(
            Gradient2Limit(initial_limit=INITIAL_LIMIT),
            window=WINDOW,
            window_samples=WINDOW_SAMPLES,
            sheddable_share=SHEDDABLE_SHARE,
            critical_share=CRITICAL_SHARE,
            name=BULKHEAD_NAME,
        )
        self.app = self._build()

    def _build(self) -> ASGIApp:
        shutdown = GracefulShutdown(timeout=5.0)
        shutdown.register("close-upstream-client", self._close_client, priority=10)
        shutdown.register("report", lambda: self.shutdown_ran.append("report"), priority=20)
        inner = Starlette(routes=[Route(path, self._fetch) for path in ROUTES])
        return ResilienceMiddleware(
            inner,
            max_concurrent=self.bulkhead,  # max_concurrent="auto", with the short window
            priority=PRIORITY,
            request_timeout=REQUEST_TIMEOUT,
            on_reject=self._rejected,
            lifespan=seawall_lifespan(shutdown=shutdown, drain_timeout=2.0),
        )

    async def _close_client(self) -> None:
        await self.client.aclose()
        self.shutdown_ran.append("close-upstream-client")

    async def _fetch(self, request: Request) -> Response:
        response = await self.client.get("/quote")
        response.raise_for_status()
        self.served["fresh"] += 1
        return JSONResponse({"quote": response.json(), "degraded": False})

    def _rejected(self, scope: Scope, rejection: Rejection) -> ASGIApp:
        self.served[rejection.reason] += 1
        return Response(
            rejection.body(), status_code=rejection.status, media_type="application/problem+json"
        )


class AdaptiveWatch:
    """A listener for one adaptive bulkhead's events: its limit, in-flight count and sheds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.limit: int | None = None
        self.first: int | None = None
        self.lowest: int | None = None
        self.highest: int | None = None
        self.in_flight = 0
        self.shed: Counter[str] = Counter()
        # Events come from the service's thread (on trio), status reads from the run's.
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, AdaptiveBulkheadChanged) and event.name == self.name:
            limit = event.limit
            with self._lock:
                if self.first is None:
                    self.first = limit
                self.limit, self.in_flight = limit, event.in_flight
                self.lowest = limit if self.lowest is None else min(limit, self.lowest)
                self.highest = limit if self.highest is None else max(limit, self.highest)
        elif (
            isinstance(event, Rejected)
            and event.policy == "bulkhead"
            and event.name == self.name
            and event.reason.startswith("shed_")
        ):
            with self._lock:
                self.shed[event.reason.removeprefix("shed_")] += 1

    def status(self) -> AdaptiveStatus:
        """The figures now."""
        with self._lock:
            return AdaptiveStatus(
                self.limit, self.in_flight, dict(self.shed), self.lowest, self.highest, self.first
            )


class AdaptiveBackend(ServedHere):
    """The ``--adaptive`` service in this process (a :class:`~._backends.Backend`)."""

    def __init__(self, upstream_url: str) -> None:
        self.service = AdaptiveService(upstream_url)
        self._server = Running(self.service.app, "service")
        self.urls = [self._server.url]
        self.breakers: dict[str, CircuitBreaker] = {}
        self.served = self.service.served
        self.shutdown_ran = self.service.shutdown_ran
        self.watch = AdaptiveWatch(BULKHEAD_NAME)

    def _on_event(self, event: Event) -> None:
        self.watch(event)

    def retries(self) -> int:
        return 0

    def degraded_decisions(self) -> int:
        return 0
