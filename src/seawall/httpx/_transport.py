"""ResilientTransport: seawall's policies around any httpx transport.

Theory of operation. Each request is mapped to its origin (``scheme://host:port``) and runs
through that origin's :class:`~seawall.Pipeline`::

    retry -> rate limiter -> bulkhead -> circuit breaker -> inner transport

* Policies are per origin by default: pass a factory (``breaker=lambda origin:
  CircuitBreaker(...)``) and each origin gets its own instance on first use, so one failing
  host opens only its own circuit. Pass an instance instead to share it across every origin.
* Each HTTP attempt takes a token, a slot and a breaker permit, and gives the slot back before
  any backoff wait (a request never holds a slot while it sleeps).
* A response for which ``is_failure`` is true (default: status >= 500) and any exception from
  the inner transport count as breaker failures; other responses (4xx included) as
  successes; cancellation is neutral.
* Only ``retry_methods`` (default: the idempotent ones) are retried, on ``retry_statuses``
  (default 429, 502, 503, 504) and on transport errors, and only when the request body can be
  sent again. ``request.extensions["seawall"] = {"retry": False}`` (or True) overrides this per
  request.
* A 429 or 503 with a readable ``Retry-After`` blocks the origin's limiter for that long
  (extends only, capped at ``max_retry_after``) and is the minimum wait before the retry; with
  ``pace=True`` a ``RateLimit`` field saying nothing remains blocks it until the reset.
* Rejections raise errors that are both seawall errors and ``httpx.TransportError``.
* Responses that are retried are closed before the next attempt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio.to_thread
import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_callable, check_int, check_number
from .._errors import RejectedError
from .._pipeline import BreakerLike, BulkheadLike, LimiterLike, Pipeline
from .._retry import Retry
from ._errors import as_transport_error
from ._headers import exhausted_for, retry_after_of

__all__ = ["IDEMPOTENT_METHODS", "RETRY_STATUSES", "HostPolicies", "ResilientTransport"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
"""The methods :class:`ResilientTransport` retries by default (``retry_methods=``)."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""The response statuses :class:`ResilientTransport` retries by default (``retry_statuses=``)."""
_BLOCKING_STATUSES = frozenset({429, 503})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

G = TypeVar("G")


class HostLimiter(LimiterLike, Protocol):
    """A rate limiter the transport can also block when the server asks it to wait."""

    def set_retry_after(self, seconds: float, /) -> None: ...


@dataclass(frozen=True, slots=True)
class HostPolicies:
    """The policies that guard one origin (None where not configured)."""

    origin: str
    limiter: HostLimiter | None
    bulkhead: BulkheadLike | None
    breaker: BreakerLike | None


class _Host:
    __slots__ = ("bare", "once", "policies", "retrying")

    def __init__(self, policies: HostPolicies, once: Pipeline, retrying: Pipeline) -> None:
        self.policies = policies
        self.bare = (
            policies.limiter is None and policies.bulkhead is None and (policies.breaker is None)
        )
        self.once = once
        self.retrying = retrying


class ResilientTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) that adds retry, rate limit, bulkhead and breaker.

    ``transport`` is the inner transport (any sync and/or async httpx transport); by default
    ``httpx.HTTPTransport()`` and ``httpx.AsyncHTTPTransport()``, created on first use.
    ``retry`` is a :class:`~seawall.Retry` whose attempts, backoff, deadline, budget and clock
    are used (the transport decides *what* is retried); None disables retries.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        *,
        retry: Retry | str | None = "default",
        breaker: BreakerLike | Callable[[str], BreakerLike] | None = None,
        limiter: HostLimiter | Callable[[str], HostLimiter] | None = None,
        bulkhead: BulkheadLike | Callable[[str], BulkheadLike] | None = None,
        retry_methods: frozenset[str] | set[str] = IDEMPOTENT_METHODS,
        retry_statuses: frozenset[int] | set[int] = RETRY_STATUSES,
        is_failure: Callable[[httpx.Response], bool] | None = None,
        max_retry_after: float = 60.0,
        pace: bool = False,
        max_hosts: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        if transport is not None and not isinstance(
            transport, httpx.BaseTransport | httpx.AsyncBaseTransport
        ):
            raise TypeError(f"transport must be an httpx transport, got {transport!r}")
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._given = transport
        self._sync: httpx.BaseTransport | None = None
        self._async: httpx.AsyncBaseTransport | None = None
        self._specs = (breaker, limiter, bulkhead)
        self._retry_methods = frozenset(m.upper() for m in retry_methods)
        self._retry_statuses = frozenset(retry_statuses)
        self._is_failure = (
            _server_error if is_failure is None else check_callable("is_failure", is_failure)
        )
        self._max_retry_after = check_number("max_retry_after", max_retry_after, inclusive=True)
        self._pace = bool(pace)
        self._max_hosts = check_int("max_hosts", max_hosts)
        self._retry = self._retry_rules(retry)
        self._origins: OrderedDict[str, _Host] = OrderedDict()
        self._hosts: dict[tuple[str, str, int | None], _Host] = {}
        self._lock = threading.Lock()

    # -- httpx entry points ---------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = self._host(request)
        retries = self._retries(request)
        if host.bare:
            # No gates for this origin: skip the pipeline's bookkeeping entirely.
            send = self._sync_inner().handle_request
            if not retries:
                return send(request)
            assert self._retry is not None
            return self._retry.start().drive(lambda: send(request), _discard)
        pipeline = host.retrying if retries else host.once
        try:
            return pipeline.call(self._send, host.policies, request)
        except RejectedError as exc:
            raise as_transport_error(exc, request) from None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = self._host(request)
        retries = self._retries(request)
        if host.bare:
            send = self._async_inner().handle_async_request
            if not retries:
                return await send(request)
            assert self._retry is not None
            return await self._retry.start().adrive(lambda: send(request), _discard)
        pipeline = host.retrying if retries else host.once
        try:
            return await pipeline.acall(self._asend, host.policies, request)
        except RejectedError as exc:
            raise as_transport_error(exc, request) from None

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()

    def policies(self, url: httpx.URL | str) -> HostPolicies:
        """The policies guarding the origin of ``url`` (created if not yet)."""
        return self._host(httpx.Request("GET", url)).policies

    # -- one attempt ------------------------------------------------------------------------

    def _send(self, policies: HostPolicies, request: httpx.Request) -> httpx.Response:
        response = self._sync_inner().handle_request(request)
        self._observe(policies, response)
        return response

    async def _asend(self, policies: HostPolicies, request: httpx.Request) -> httpx.Response:
        response = await self._async_inner().handle_async_request(request)
        limiter = policies.limiter
        if limiter is not None and getattr(limiter, "store", None) is not None:
            # A block kept in a store is a round trip: never on the event loop.
            block = self._block_for(response)
            if block:
                await anyio.to_thread.run_sync(limiter.set_retry_after, block)
        else:
            self._observe(policies, response)
        return response

    def _observe(self, policies: HostPolicies, response: httpx.Response) -> None:
        limiter = policies.limiter
        if limiter is None:
            return
        block = self._block_for(response)
        if block:
            limiter.set_retry_after(block)

    def _block_for(self, response: httpx.Response) -> float | None:
        block = None
        if response.status_code in _BLOCKING_STATUSES:
            block = retry_after_of(response, now=self._clock.time(), maximum=self._max_retry_after)
        if block is None and self._pace:
            block = exhausted_for(response, maximum=self._max_retry_after)
        return block

    # -- configuration ----------------------------------------------------------------------

    def _retries(self, request: httpx.Request) -> bool:
        override = request.extensions.get("seawall")
        if override and "retry" in override:
            wanted = bool(override["retry"])
        else:
            wanted = request.method in self._retry_methods
        # A streamed body cannot be sent twice.
        return wanted and self._retry is not None and isinstance(request.stream, httpx.ByteStream)

    def _retry_rules(self, retry: Retry | str | None) -> Retry | None:
        if retry == "default":
            retry = Retry(attempts=3, initial=0.1, maximum=10.0, max_retry_after=60.0)
        if retry is None:
            return None
        if not isinstance(retry, Retry):
            raise TypeError(f"retry must be a seawall.Retry or None, got {retry!r}")
        return retry.with_rules(
            retry_on=_is_network_error,
            retry_on_result=lambda r: r.status_code in self._retry_statuses,
            delay_hint=self._hint,
        )

    def _hint(self, outcome: object) -> float | None:
        if not isinstance(outcome, httpx.Response):
            return None
        return retry_after_of(outcome, now=self._clock.time(), maximum=self._max_retry_after)

    def _host(self, request: httpx.Request) -> _Host:
        url = request.url
        # (scheme, host, explicit port) is cheap to read; it is normalised to the origin
        # only on a miss, so "http://a" and "http://a:80" share one set of policies.
        key = (url.scheme, url.host, url.port)
        host = self._hosts.get(key)
        if host is not None:
            return host
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        origin = f"{url.scheme}://{url.host}:{port}"
        with self._lock:
            host = self._origins.get(origin)
            if host is None:
                host = self._origins[origin] = self._new_host(origin)
                if len(self._origins) > self._max_hosts:
                    # Forget the oldest origin (and every alias pointing at it).
                    _, dropped = self._origins.popitem(last=False)
                    for alias in [k for k, v in self._hosts.items() if v is dropped]:
                        del self._hosts[alias]
            self._hosts[key] = host
            return host

    def _new_host(self, origin: str) -> _Host:
        breaker, limiter, bulkhead = self._specs
        policies = HostPolicies(
            origin,
            _resolve(limiter, origin, "set_retry_after"),
            _resolve(bulkhead, origin, "release"),
            _resolve(breaker, origin, "admit"),
        )
        common: dict[str, Any] = {
            "limiter": policies.limiter,
            "bulkhead": policies.bulkhead,
            "breaker": policies.breaker,
            "failure_result": self._is_failure,
            "on_discard": _discard,
            "clock": self._clock if self._retry is None else self._retry.clock,
        }
        return _Host(policies, Pipeline(**common), Pipeline(retry=self._retry, **common))

    def _sync_inner(self) -> httpx.BaseTransport:
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = _side(self._given, httpx.BaseTransport, httpx.HTTPTransport)
        return self._sync

    def _async_inner(self) -> httpx.AsyncBaseTransport:
        if self._async is None:
            with self._lock:
                if self._async is None:
                    self._async = _side(
                        self._given, httpx.AsyncBaseTransport, httpx.AsyncHTTPTransport
                    )
        return self._async

    def __repr__(self) -> str:
        return f"ResilientTransport({self._given!r}, hosts={len(self._origins)})"


def _server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


def _is_network_error(exc: Exception) -> bool:
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, RejectedError)


def _discard(response: httpx.Response) -> object:
    # Close without reading: the connection goes back to the pool (or is dropped) at once.
    if isinstance(response.stream, httpx.SyncByteStream):
        response.close()
        return None
    return response.aclose()


def _resolve(spec: Any, origin: str, marker: str) -> Any:
    if spec is None or hasattr(spec, marker):
        return spec
    if not callable(spec):
        raise TypeError(f"expected a policy or a factory taking the origin, got {spec!r}")
    made = spec(origin)
    if not hasattr(made, marker):
        raise TypeError(f"factory for {origin} returned {made!r}, which is not a policy")
    return made


def _side(given: object, kind: type[G], default: Callable[[], G]) -> G:
    if given is None:
        return default()
    if not isinstance(given, kind):
        raise TypeError(f"the inner transport {given!r} is not a {kind.__name__}")
    return given
