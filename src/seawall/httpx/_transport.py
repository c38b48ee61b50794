"""ResilientTransport: seawall's policies around any httpx transport.

Theory of operation. Each request is mapped to its origin (``scheme://host:port``) and runs
through that origin's policies. By default (``standard=True``) that is the standard pipeline
of :mod:`._engine`, outermost first::

    bulkhead -> deadline -> retry -> [hedging] -> hold-back -> limiter -> breaker
        -> attempt timeout -> inner transport

with the defaults of :mod:`._standard` (every part can be changed or switched off with None).
``standard=False`` keeps the bare transport of seawall 0.x: retries only, through
:class:`~seawall.Pipeline` (``retry -> limiter -> bulkhead -> breaker``, a bulkhead slot per
attempt), with whatever breaker, limiter and bulkhead are passed.

* Policies are per origin: pass a factory (``breaker=lambda origin: CircuitBreaker(...)``) and
  each origin gets its own instance on first use, so one failing host opens only its own
  circuit. Pass an instance instead to share it across every origin.
* A response for which ``is_failure`` is true (default: status >= 500) and any exception from
  the inner transport count as breaker failures; other responses (4xx included) as
  successes; cancellation is neutral.
* Only ``retry_methods`` (default: the idempotent ones) are retried or hedged, on
  ``retry_statuses`` and on transport errors, and only when the request body can be sent
  again. ``request.extensions["seawall"]`` changes ``retry``, ``timeout``,
  ``attempt_timeout`` and ``hedging`` per request.
* A 429 or 503 with a readable ``Retry-After`` holds the origin back (and blocks its limiter)
  for that long (extends only, capped at ``max_retry_after``) and is the minimum wait before
  the retry; with ``pace=True`` a ``RateLimit`` field saying nothing remains does the same.
* Rejections raise errors that are both seawall errors and ``httpx.TransportError``; a
  ``fallback`` may answer instead, when a gate refuses or the retries are exhausted.
* Responses that are retried, or lose a hedge, are closed.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import httpx

from .._breaker.breaker import CircuitBreaker
from .._bulkhead.bulkhead import Bulkhead
from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_callable, check_int, check_number
from .._errors import RejectedError
from .._pipeline import BreakerLike, BulkheadLike, LimiterLike
from .._retry import Retry
from ._adaptive import AdaptiveSpec, adaptive_origins
from ._answer import FallbackFunction, ResponseFallback
from ._bare import BarePath, Host
from ._engine import Engine, Origin, SlotLease, is_network_error, server_error
from ._errors import as_transport_error
from ._headers import retry_after_of
from ._hedge import ahedged, hedged
from ._standard import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_BREAKER_WINDOW,
    DEFAULT_TIMEOUT,
    Settings,
    check_consistent,
    hedging_settings,
    optional_seconds,
    settings_for,
)

__all__ = ["IDEMPOTENT_METHODS", "RETRY_STATUSES", "HostPolicies", "ResilientTransport"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
"""The methods :class:`ResilientTransport` retries by default (``retry_methods=``)."""
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""The response statuses :class:`ResilientTransport` retries by default (``retry_statuses=``)."""
_BARE_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

G = TypeVar("G")
Default = Literal["default"]


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


def standard_breaker(origin: str, clock: Clock) -> BreakerLike:
    """The default breaker: opens 5 s when >= 10% of >= 100 calls in 30 s failed."""
    return CircuitBreaker(
        name=origin,
        failure_rate_threshold=0.1,
        minimum_calls=100,
        window_duration=DEFAULT_BREAKER_WINDOW,
        max_failures=sys.maxsize,  # the ratio alone decides, as in the standard pipeline
        reset_timeout=5.0,
        clock=clock,
    )


def standard_bulkhead(origin: str, clock: Clock) -> BulkheadLike:
    """The default bulkhead: 1000 requests in flight per origin, no queue."""
    return Bulkhead(1000, name=origin, clock=clock)


class ResilientTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) with the standard resilience pipeline per origin.

    ``transport`` is the inner transport (any sync and/or async httpx transport); by default
    ``httpx.HTTPTransport()`` and ``httpx.AsyncHTTPTransport()``, created on first use.
    With no other argument each origin gets a bulkhead (1000, no queue), a 30 s deadline,
    retries (4 attempts), a breaker (10% of >= 100 calls in 30 s, open 5 s), a 10 s attempt
    timeout and a hold-back on ``Retry-After``; ``None`` (``False`` for ``hold_back``)
    switches a part off, and ``standard=False`` gives the bare retry-only transport.
    ``retry`` is a :class:`~seawall.Retry` whose attempts, backoff, deadline, budget and clock
    are used (the transport decides *what* is retried). ``hedging`` (off by default): True
    (a second attempt after 2 s), a delay in seconds, or ``(delay, extra attempts)``.
    ``fallback(request, outcome)`` may return a response to use instead of a refusal, an
    error or a last retryable response (None keeps the outcome; async in async clients).
    ``adaptive_concurrency`` (off by default): True (Gradient2), ``"vegas"``, ``"aimd"`` or a
    function origin -> :class:`~seawall.AdaptiveBulkhead` gives each origin a concurrency limit
    learned from its latency, in front of the inner transport (see ``docs/adaptive.md``).
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        *,
        standard: bool = True,
        retry: Retry | Default | None = "default",
        breaker: BreakerLike | Callable[[str], BreakerLike] | Default | None = "default",
        limiter: HostLimiter | Callable[[str], HostLimiter] | None = None,
        bulkhead: BulkheadLike | Callable[[str], BulkheadLike] | Default | None = "default",
        timeout: float | Default | None = "default",
        attempt_timeout: float | Default | None = "default",
        hedging: bool | float | tuple[float, int] | None = None,
        hold_back: bool | Default = "default",
        fallback: FallbackFunction | None = None,
        retry_methods: frozenset[str] | set[str] = IDEMPOTENT_METHODS,
        retry_statuses: frozenset[int] | set[int] | Default = "default",
        is_failure: Callable[[httpx.Response], bool] | None = None,
        max_retry_after: float = 60.0,
        pace: bool = False,
        max_hosts: int = 1000,
        adaptive_concurrency: AdaptiveSpec = False,
        clock: Clock | None = None,
    ) -> None:
        if transport is not None and not isinstance(
            transport, httpx.BaseTransport | httpx.AsyncBaseTransport
        ):
            raise TypeError(f"transport must be an httpx transport, got {transport!r}")
        self._standard = bool(standard)
        if not self._standard:
            _refuse_standard_only(timeout, attempt_timeout, hedging, hold_back)
        if clock is None:
            # No clock given: follow the Retry's, so its waits and the deadline agree.
            clock = retry.clock if isinstance(retry, Retry) else SYSTEM_CLOCK
        self._clock = clock
        self._given = transport
        self._sync: httpx.BaseTransport | None = None
        self._async: httpx.AsyncBaseTransport | None = None
        std = self._standard
        self._specs = (
            _pick(breaker, standard_breaker if std else None, self._clock),
            limiter,
            _pick(bulkhead, standard_bulkhead if std else None, self._clock),
        )
        self._retry_methods = frozenset(m.upper() for m in retry_methods)
        self._retry_statuses = frozenset(
            (RETRY_STATUSES if std else _BARE_RETRY_STATUSES)
            if retry_statuses == "default"
            else retry_statuses
        )
        self._is_failure = (
            server_error if is_failure is None else check_callable("is_failure", is_failure)
        )
        self._max_retry_after = check_number("max_retry_after", max_retry_after, inclusive=True)
        self._max_hosts = check_int("max_hosts", max_hosts)
        self._adaptive = adaptive_origins(adaptive_concurrency, self._clock, self._max_hosts)
        self._fallback = None
        if fallback is not None:
            check_callable("fallback", fallback)
            self._fallback = ResponseFallback(fallback, self._gave_up)
        self._retry = self._retry_rules(retry)
        hedge_delay, max_hedged = hedging_settings(hedging)
        self._settings = Settings(
            timeout=optional_seconds(
                "timeout", DEFAULT_TIMEOUT if timeout == "default" else timeout
            ),
            attempt_timeout=optional_seconds(
                "attempt_timeout",
                DEFAULT_ATTEMPT_TIMEOUT if attempt_timeout == "default" else attempt_timeout,
            ),
            hedge_delay=hedge_delay,
            max_hedged=max_hedged,
            retry=None,
        )
        if not std:
            self._settings = Settings(None, None, None, 0, None)
        window = DEFAULT_BREAKER_WINDOW if breaker == "default" and std else None
        window = _window_of(self._specs[0]) if window is None else window
        check_consistent(self._settings.timeout, self._settings.attempt_timeout, window)
        self._engine = Engine(
            clock=self._clock,
            retry=self._retry,
            retry_methods=self._retry_methods,
            retry_statuses=self._retry_statuses,
            is_failure=self._is_failure,
            max_retry_after=self._max_retry_after,
            pace=bool(pace),
            hold_back=std if hold_back == "default" else bool(hold_back),
            sync_inner=self._sync_inner,
            async_inner=self._async_inner,
        )
        self._bare = BarePath(self._engine, self._retry, self._retry_methods, self._is_failure)
        self._origins: OrderedDict[str, Host] = OrderedDict()
        # Aliases: url_key() -> its origin's Host.
        self._hosts: dict[tuple[str, str, int | None], Host] = {}
        self._lock = threading.Lock()

    # -- httpx entry points ---------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:  # _host's fast path, inlined
            ref = request.url._uri_reference
            host = self._hosts.get((ref.scheme, ref.host, ref.port)) or self._host(request)
        except AttributeError:
            host = self._host(request)
        try:
            if self._standard:
                settings = self._settings
                if "seawall" in request.extensions:
                    settings = settings_for(settings, request.extensions)
                if settings.hedge_delay is None or not self._engine.replayable(request, settings):
                    response = self._engine.send(host.origin, request, settings)
                else:
                    lease = SlotLease()
                    response = self._engine.send(
                        host.origin,
                        request,
                        settings,
                        functools.partial(self._hedged, lease),
                        lease,
                    )
            else:
                response = self._bare.send(host, request)
        except RejectedError as exc:
            error = as_transport_error(exc, request)
            if self._fallback is None:
                raise error from None
            return self._fallback.answer(request, error)
        except Exception as exc:
            if self._fallback is None:
                raise
            return self._fallback.answer(request, exc)
        if self._fallback is not None and self._fallback.gave_up(response):
            return self._fallback.answer(request, response)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:  # _host's fast path, inlined
            ref = request.url._uri_reference
            host = self._hosts.get((ref.scheme, ref.host, ref.port)) or self._host(request)
        except AttributeError:
            host = self._host(request)
        try:
            if self._standard:
                settings = self._settings
                if "seawall" in request.extensions:
                    settings = settings_for(settings, request.extensions)
                if settings.hedge_delay is None or not self._engine.replayable(request, settings):
                    response = await self._engine.asend(host.origin, request, settings)
                else:
                    response = await self._engine.asend(
                        host.origin, request, settings, self._ahedged
                    )
            else:
                response = await self._bare.asend(host, request)
        except RejectedError as exc:
            error = as_transport_error(exc, request)
            if self._fallback is None:
                raise error from None
            return await self._fallback.aanswer(request, error)
        except Exception as exc:
            if self._fallback is None:
                raise
            return await self._fallback.aanswer(request, exc)
        if self._fallback is not None and self._fallback.gave_up(response):
            return await self._fallback.aanswer(request, response)
        return response

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()

    def policies(self, url: httpx.URL | str) -> HostPolicies:
        """The policies guarding the origin of ``url`` (created if not yet)."""
        policies: HostPolicies = self._host(httpx.Request("GET", url)).policies
        return policies

    # -- hedging ---------------------------------------------------------------

    def _hedged(
        self,
        lease: SlotLease,
        origin: Origin,
        request: httpx.Request,
        settings: Settings,
        deadline_at: float | None,
    ) -> httpx.Response:
        return hedged(self._engine, origin, request, settings, deadline_at, lease)

    async def _ahedged(
        self, origin: Origin, request: httpx.Request, settings: Settings, deadline_at: float | None
    ) -> httpx.Response:
        return await ahedged(self._engine, origin, request, settings, deadline_at)

    # -- configuration ----------------------------------------------------------------------

    def _gave_up(self, response: httpx.Response) -> bool:
        return response.status_code in self._retry_statuses or self._is_failure(response)

    def _retry_rules(self, retry: Retry | str | None) -> Retry | None:
        if retry == "default":
            if self._standard:
                # Three retries with full jitter under a 2 s, 4 s, 8 s ceiling.
                retry = Retry(attempts=4, initial=2.0, maximum=30.0, clock=self._clock)
            else:
                retry = Retry(attempts=3, initial=0.1, maximum=10.0, max_retry_after=60.0)
        if retry is None:
            return None
        if not isinstance(retry, Retry):
            raise TypeError(f"retry must be a seawall.Retry or None, got {retry!r}")
        rules = retry.with_rules(
            retry_on=is_network_error,
            retry_on_result=lambda r: r.status_code in self._retry_statuses,
            delay_hint=self._hint,
        )
        if self._standard:
            rules.clock = self._clock  # one clock for the deadline, the hold-back and the waits
        return rules

    def _hint(self, outcome: object) -> float | None:
        if not isinstance(outcome, httpx.Response):
            return None
        return retry_after_of(outcome, now=self._clock.time(), maximum=self._max_retry_after)

    def _host(self, request: httpx.Request) -> Host:
        url = request.url
        # (scheme, host as sent, explicit port) is cheap to read (the host not decoded from
        # IDNA); it is normalised to the origin only on a miss, so "http://a" and
        # "http://a:80" share one set of policies.
        key = url_key(url)
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

    def _new_host(self, origin: str) -> Host:
        breaker, limiter, bulkhead = self._specs
        policies = HostPolicies(
            origin,
            _resolve(limiter, origin, "set_retry_after"),
            _resolve(bulkhead, origin, "release"),
            _resolve(breaker, origin, "admit"),
        )
        gates = Origin(origin, policies.limiter, policies.bulkhead, policies.breaker)
        if self._standard:
            check_consistent(None, self._settings.attempt_timeout, _window_of(policies.breaker))
            return Host(policies, gates, None, None)
        return Host(policies, gates, *self._bare.pipelines(gates))

    def _sync_inner(self) -> httpx.BaseTransport:
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    inner = _side(self._given, httpx.BaseTransport, httpx.HTTPTransport)
                    adaptive = self._adaptive  # issue 16: a slot per attempt, per origin
                    self._sync = inner if adaptive is None else adaptive.sync(inner)
        return self._sync

    def _async_inner(self) -> httpx.AsyncBaseTransport:
        if self._async is None:
            with self._lock:
                if self._async is None:
                    ainner = _side(self._given, httpx.AsyncBaseTransport, httpx.AsyncHTTPTransport)
                    adaptive = self._adaptive
                    self._async = ainner if adaptive is None else adaptive.asynchronous(ainner)
        return self._async

    def __repr__(self) -> str:
        return f"ResilientTransport({self._given!r}, hosts={len(self._origins)})"


def url_key(url: httpx.URL) -> tuple[str, str, int | None]:
    """``(scheme, host as sent (IDNA-encoded), explicit port or None)`` of ``url``.

    The entry points read the same three parts straight from httpx's parse of the URL
    (``url._uri_reference``), which costs a third of the properties on every request; where
    an httpx has no such attribute they fall back to this function.
    """
    return (url.scheme, url.raw_host.decode("ascii"), url.port)


def _pick(spec: Any, default: Callable[[str, Clock], Any] | None, clock: Clock) -> Any:
    if spec != "default":
        return spec
    return None if default is None else (lambda origin: default(origin, clock))


def _window_of(breaker: object) -> float | None:
    """The time window of a breaker instance, when it has one."""
    window = getattr(breaker, "window_duration", None)
    return window if isinstance(window, int | float) else None


def _refuse_standard_only(*values: object) -> None:
    names = ("timeout", "attempt_timeout", "hedging", "hold_back")
    given = [f"{n}={v!r}" for n, v in zip(names, values, strict=True) if v not in ("default", None)]
    if given:
        raise ValueError(
            f"{', '.join(given)} need the standard pipeline; drop standard=False to use them"
        )


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
