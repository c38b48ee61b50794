"""An adaptive concurrency limit per origin for ResilientTransport (opt-in, issue 16).

``ResilientTransport(adaptive_concurrency=True)`` puts an :class:`~seawall.AdaptiveBulkhead`
(Gradient2 by default) in front of the inner transport for each origin (``scheme://host:port``):
every attempt that goes on the wire holds a slot of its origin's bulkhead, and the limit
follows the upstream's latency. A struggling upstream slows down, the limit shrinks, and the
attempts beyond it fail at once with :class:`~seawall.httpx.BulkheadFullTransportError`
instead of piling onto it (client-side protection).

What an attempt tells the limit: a response below 500 other than 429 is a latency sample
(time to the response headers); 429, 503 and 504 responses and httpx timeouts are **drops**
(the upstream refused or ran out of time); other 5xx responses and other errors say nothing
about load and are not sampled. Cancellations are not sampled either: a hedge that lost, a
caller that gave up. That includes an async attempt cut by ``attempt_timeout`` (a cancel scope
around this layer, indistinguishable from the others here); httpx's own timeouts
(``httpx.Timeout``, raised by the inner transport) are drops.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import httpx

from .._bulkhead.adaptive import AdaptiveBulkhead, AdaptivePermit
from .._clock import Clock
from ._errors import BulkheadFullTransportError

__all__ = ["AdaptiveOrigins", "AdaptiveSpec", "adaptive_origins"]

AdaptiveSpec = bool | str | Callable[[str], AdaptiveBulkhead]

_DROPS = frozenset({429, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def adaptive_origins(spec: AdaptiveSpec, clock: Clock, max_hosts: int) -> AdaptiveOrigins | None:
    """The per-origin limits ``adaptive_concurrency`` asks for, or None (off)."""
    if spec is False or spec is None:
        return None
    if spec is True:
        spec = "gradient2"
    if isinstance(spec, str):
        rule = spec
        AdaptiveBulkhead(rule)  # validates the rule's name now, not on the first request

        def make(origin: str) -> AdaptiveBulkhead:
            return AdaptiveBulkhead(rule, name=origin, clock=clock)

        return AdaptiveOrigins(make, max_hosts)
    if callable(spec):
        return AdaptiveOrigins(spec, max_hosts)
    raise TypeError(
        "adaptive_concurrency must be a bool, 'gradient2', 'vegas', 'aimd' or a function "
        f"origin -> AdaptiveBulkhead, got {spec!r}"
    )


def origin_of(url: httpx.URL) -> str:
    """``scheme://host:port`` with the scheme's default port filled in."""
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    return f"{url.scheme}://{url.host}:{port}"


class AdaptiveOrigins:
    """One adaptive bulkhead per origin (the least recently used beyond ``max_hosts`` go)."""

    __slots__ = ("_bulkheads", "_lock", "_make", "_max_hosts")

    def __init__(self, make: Callable[[str], AdaptiveBulkhead], max_hosts: int) -> None:
        self._make = make
        self._max_hosts = max_hosts
        self._bulkheads: OrderedDict[str, AdaptiveBulkhead] = OrderedDict()
        self._lock = threading.Lock()

    def bulkhead(self, origin: str) -> AdaptiveBulkhead:
        """The bulkhead of ``origin``, made on first use."""
        with self._lock:
            found = self._bulkheads.get(origin)
            if found is not None:
                self._bulkheads.move_to_end(origin)
                return found
        made = self._make(origin)
        if not isinstance(made, AdaptiveBulkhead):
            raise TypeError(f"adaptive_concurrency({origin!r}) must return an AdaptiveBulkhead")
        with self._lock:
            found = self._bulkheads.setdefault(origin, made)
            # A permit keeps its own bulkhead, so dropping one with calls in flight is safe.
            while len(self._bulkheads) > self._max_hosts:
                self._bulkheads.popitem(last=False)
        return found

    def admit(self, request: httpx.Request) -> AdaptivePermit:
        """A slot for ``request``'s origin, or BulkheadFullTransportError at once."""
        origin = origin_of(request.url)
        permit = self.bulkhead(origin).try_acquire()
        if permit is None:
            bulkhead = self.bulkhead(origin)
            raise BulkheadFullTransportError(
                f"adaptive limit of {origin} reached ({bulkhead.limit} in flight)",
                retry_after=bulkhead.stats.rtt,
                request=request,
            )
        return permit

    def sync(self, inner: httpx.BaseTransport) -> httpx.BaseTransport:
        """``inner`` with a slot per request."""
        return _Limited(self, inner)

    def asynchronous(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """``inner`` with a slot per request, for async clients."""
        return _AsyncLimited(self, inner)


def _settle(permit: AdaptivePermit, response: httpx.Response) -> None:
    status = response.status_code
    if status in _DROPS:
        permit.drop()
    elif status < 500:
        permit.success()
    else:
        permit.ignore()


class _Limited(httpx.BaseTransport):
    def __init__(self, origins: AdaptiveOrigins, inner: httpx.BaseTransport) -> None:
        self._origins = origins
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        permit = self._origins.admit(request)
        try:
            response = self._inner.handle_request(request)
        except httpx.TimeoutException:
            permit.drop()
            raise
        except BaseException:
            permit.ignore()
            raise
        _settle(permit, response)
        return response

    def close(self) -> None:
        self._inner.close()


class _AsyncLimited(httpx.AsyncBaseTransport):
    def __init__(self, origins: AdaptiveOrigins, inner: httpx.AsyncBaseTransport) -> None:
        self._origins = origins
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        permit = self._origins.admit(request)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            permit.drop()
            raise
        except BaseException:
            permit.ignore()
            raise
        _settle(permit, response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
