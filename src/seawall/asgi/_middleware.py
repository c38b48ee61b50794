"""ResilienceMiddleware: limits, load shedding, a breaker and a timeout in front of an ASGI app.

Pure ASGI: ``__init__(app, ...)`` and ``async __call__(scope, receive, send)``. Only ``http``
scopes are handled; ``websocket`` scopes pass through untouched, and so do ``lifespan`` scopes
unless a lifespan hook is given (then the middleware drives it on the lifespan events). The
response is observed by wrapping ``send`` (status, whether it started) and never buffered.

Gates, in the order seawall's pipeline uses (limiter -> bulkhead -> breaker, so a refusal by a
later gate never holds an earlier one's slot):

1. probes (readiness, liveness, drain endpoint) and the shutdown check;
2. exemptions: an exempt request skips every gate below;
3. rate limits: the route's own limit (``@limit``, ``route_limits``) or else the default
   ``rate_limit``, per client key -> 429;
4. the bulkhead (``max_concurrent``) -> 503; with ``max_concurrent="auto"`` an adaptive
   bulkhead sheds by priority instead, before every other gate (see :mod:`._shedding`);
5. the circuit breaker over the app's own failures (5xx or an exception) -> 503; a client
   that leaves early is neutral (see :mod:`._observed`);
6. the app, under ``request_timeout`` -> 504 if it has not started its response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from math import ceil
from typing import Any

import anyio

from .._breaker.breaker import CircuitBreaker, CircuitPermit
from .._bulkhead.bulkhead import Bulkhead
from .._clock import SYSTEM_CLOCK, Clock
from .._core.breaker import FAILURE, NEUTRAL, SUCCESS
from .._core.validate import check_callable, check_int, check_optional_number
from .._errors import BulkheadFullError, CircuitOpenError
from .._gates import OFF
from .._gates import register as register_gate
from .._log import logger
from ..stores._base import Store
from ._admission import shared_gates
from ._client import ClientKey, KeyFunction, Network, RequestKey, parse_networks
from ._dependency import CLIENT_KEY, RateLimited, rejection_for
from ._lifespan import SeawallLifespan
from ._limits import LimitGroup, LimitSpec, PolicyState, parse_limits
from ._observed import Observed
from ._probes import Probes
from ._report_only import ReportOnly, report_only_gates
from ._responses import (
    HEADER_STYLES,
    Header,
    RejectHook,
    Rejection,
    ietf_fields,
    rate_limited,
    ratelimit_fields,
    send_rejection,
    timed_out,
    unavailable,
)
from ._route_limits import RouteLimits
from ._shared import StoreOptions
from ._shedding import AdaptiveBulkhead, PrioritySpec, Shedding, adaptive_bulkhead
from ._types import ASGIApp, Message, Receive, Scope, Send
from ._websocket import websocket_gate

__all__ = ["ResilienceMiddleware"]

# An outcome the middleware observed, told through the permit's public methods: at once for a
# breaker in memory, without blocking the loop for one kept in a store.
_REPORT: dict[int, Callable[[CircuitPermit], None]] = {
    SUCCESS: CircuitPermit.success,
    FAILURE: CircuitPermit.failure,
    NEUTRAL: CircuitPermit.neutral,
}
_AREPORT: dict[int, Callable[[CircuitPermit], Awaitable[None]]] = {
    SUCCESS: CircuitPermit.asuccess,
    FAILURE: CircuitPermit.afailure,
    NEUTRAL: CircuitPermit.aneutral,
}


Exempt = Iterable[str] | Callable[[Scope], bool]


class ResilienceMiddleware:
    """Protect an ASGI app from its callers; see the module docs and ``docs/asgi.md``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_limit: LimitSpec | None = None,
        cost: int | Callable[[Scope], int] = 1,
        route_limits: Mapping[str, LimitSpec | None] | None = None,
        key: KeyFunction | None = None,
        trusted_proxies: Iterable[str | Network] = (),
        proxy_header: str = "x-forwarded-for",
        exempt: Exempt | None = None,
        max_concurrent: int | str | Bulkhead | AdaptiveBulkhead | None = None,
        priority: PrioritySpec | None = None,
        max_queue: int | None = None,
        max_wait: float = 0.0,
        breaker: bool | CircuitBreaker | Mapping[str, Any] | None = None,
        request_timeout: float | None = None,
        headers: str | None = "ietf",
        on_reject: RejectHook | None = None,
        max_keys: int = 10_000,
        lifespan: SeawallLifespan | None = None,
        readiness_path: str | None = None,
        liveness_path: str | None = None,
        drain_path: str | None = None,
        drain_allow: Iterable[str | Network] = ("127.0.0.1/32", "::1/128"),
        store: Store | str | None = None,
        degraded: str | None = None,
        store_prefix: str = "asgi",
        report_only: bool | str | Iterable[str] = False,
        websocket_limit: LimitSpec | None = None,
        websocket_message_rate: LimitSpec | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self._clock = SYSTEM_CLOCK if clock is None else clock
        check_int("max_keys", max_keys)
        shared = StoreOptions(store, degraded, store_prefix)
        self.default_limits = (
            None
            if rate_limit is None
            else LimitGroup(
                "default",
                parse_limits("rate_limit", rate_limit),
                max_keys=max_keys,
                clock=clock,
                cost=cost,
                **shared.for_policy("default"),
            )
        )
        self.route_limits = RouteLimits(
            route_limits or {}, max_keys=max_keys, clock=clock, shared=shared
        )
        self._key = RequestKey(key, ClientKey(trusted_proxies, header=proxy_header))
        self._sync_key = self._key.sync
        self._exempt = _exempt_predicate(exempt)
        adaptive = adaptive_bulkhead(max_concurrent, "asgi", clock)  # issue 16: shedding
        if adaptive is None and priority is not None:
            raise ValueError("priority needs max_concurrent='auto' or an AdaptiveBulkhead")
        self.bulkhead = _bulkhead(
            None if adaptive is not None else max_concurrent,  # type: ignore[arg-type]
            max_queue,
            max_wait,
            clock,
            shared,
        )
        self._max_wait = max_wait
        self._shared_bulkhead = self.bulkhead is not None and self.bulkhead.store is not None
        self.breaker = _breaker(breaker, clock, shared)
        self._shared_breaker = self.breaker is not None and self.breaker.store is not None
        # An in-memory breaker that times no call is told through its ticket protocol on
        # the common path (what admit() and its permit do, minus the permit object): the
        # exact class only, as a subclass (a store-backed one) may change that protocol.
        self._tickets = type(self.breaker) is CircuitBreaker and not self.breaker._timed
        # Every gate kept in the store decided in one round trip per request (asgi/_admission).
        self._gates = shared_gates(
            shared.store,
            shared.degraded,
            shared.prefix,
            self.bulkhead,
            self.breaker,
            built_here=not isinstance(max_concurrent, Bulkhead | str)
            and not isinstance(breaker, CircuitBreaker),
            max_wait=max_wait,
            clock=self._clock,
            max_keys=max_keys,
        )
        self._timeout = check_optional_number("request_timeout", request_timeout)
        if headers is not None and headers not in HEADER_STYLES:
            raise ValueError(f"headers must be one of {HEADER_STYLES} or None, got {headers!r}")
        self._style = headers
        self._ietf_or_none = headers in ("ietf", None)
        self._on_reject = None if on_reject is None else check_callable("on_reject", on_reject)
        self.lifespan = lifespan
        self._probes = Probes(
            lifespan,
            readiness_path=readiness_path,
            liveness_path=liveness_path,
            drain_path=drain_path,
            drain_allow=parse_networks("drain_allow", drain_allow),
        )
        # Report-only mode replaces the gate sequence of this instance only (see
        # _report_only), so an enforcing middleware's request path never tests for it.
        gates = report_only_gates(report_only)
        self._report_only = None if not gates else ReportOnly(self, gates)
        if self._report_only is not None:
            self._guarded = self._report_only.guarded  # type: ignore[method-assign]
        register_gate(self)
        self.websocket = websocket_gate(
            self,
            websocket_limit,
            websocket_message_rate,
            max_keys=max_keys,
            clock=clock,
            shared=shared.for_policy("websocket"),
        )
        # Adaptive shedding wraps whatever gate sequence this instance runs (issue 16).
        self.shedding = None
        if adaptive is not None:
            self.shedding = Shedding(adaptive, priority, self._exempt, self._guarded, self._reject)
            self._guarded = self.shedding  # type: ignore[method-assign]

    @property
    def report_only_counts(self) -> dict[str, int]:
        """Requests a report-only gate let through, by the reason it would have refused them."""
        return {} if self._report_only is None else self._report_only.counts()

    def reset(self) -> None:
        """Forget every client's spent quota, close the breaker, zero report-only counts.

        For tests (``seawall.testing.reset_gates()`` calls it on every middleware).
        """
        websocket = None if self.websocket is None else self.websocket.group
        for group in (self.default_limits, *self.route_limits.groups(), websocket):
            for bucket in () if group is None else group.buckets:
                bucket.reset()
        if self.breaker is not None:
            self.breaker.reset()
        if self._report_only is not None:
            self._report_only.reset()
        if self._gates is not None:
            self._gates.reset()

    # -- dispatch ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.lifespan is not None:
                await self._lifespan_events(scope, receive, send)
            elif scope["type"] == "websocket" and self.websocket is not None:
                await self.websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self._probes.paths and scope["path"] in self._probes.paths:
            await self._probes.answer(scope, receive, send)
            return
        lifespan = self.lifespan
        if lifespan is None:
            await self._guarded(scope, receive, send)
            return
        if lifespan.stopping:
            rejection = unavailable("shutting_down", 1, "The service is shutting down.")
            await self._reject(scope, receive, send, rejection)
            return
        lifespan.request_started()
        try:
            await self._guarded(scope, receive, send)
        finally:
            lifespan.request_finished()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One coroutine for every gate (rather than one per gate): each await layer costs
        # about as much as a gate's decision.
        if OFF or (self._exempt is not None and self._exempt(scope)):  # OFF: testing switch
            await self.app(scope, receive, send)
            return
        extra: Sequence[Header] = ()
        group = self.route_limits.lookup(scope, self.app, self.default_limits)
        # The key is left in the scope even when no middleware limit applies, so a
        # Depends(RateLimit(...)) inside the app limits by the same (proxy-aware) client.
        sync_key = self._sync_key
        key = scope[CLIENT_KEY] = (
            sync_key(scope) if sync_key is not None else await self._key.akey(scope)
        )
        gates = self._gates
        if gates is not None and (group is not None or gates.every_request):
            cost = 1 if group is None else (group.cost or group.weight(scope))
            running = gates.running_refusal(self, group, key, cost)
            if running is None:
                await gates.run(self, scope, receive, send, group, key, cost)
            else:
                await self._reject(scope, receive, send, running)
            return
        rejection: Rejection | None = None
        if group is not None:
            take = group.take
            if take is not None and self._ietf_or_none:
                # One quota in memory, IETF fields or none: nearly every limited request.
                # A granted one reads its cached fields straight from the bucket's numbers.
                wait, remaining, reset_after = take(key, group.cost or group.weight(scope))
                if wait == 0.0:
                    if self._style is not None:
                        extra = ietf_fields(
                            group.policy_field, group.names[0], remaining, ceil(reset_after)
                        )
                else:
                    refused: list[Header] = []
                    state = group.state(wait, remaining, reset_after)
                    rejection = self._verdict(group, False, (state,), refused)
                    extra = refused
            else:
                if group.shared:
                    granted, states = await group.ahit(key, group.cost or group.weight(scope))
                else:
                    granted, states = group.hit(key, group.cost or group.weight(scope))
                fields: list[Header] = []
                rejection = self._verdict(group, granted, states, fields)
                extra = fields
        bulkhead = self.bulkhead
        if rejection is None and bulkhead is not None:
            if self._max_wait == 0 and not self._shared_bulkhead:
                # Taken or refused at once in memory: no coroutine to await for it.
                if not bulkhead.try_acquire():
                    rejection = unavailable("overloaded", 1.0, "The service is overloaded.")
            else:
                rejection = await self._take_slot(bulkhead)
        if rejection is not None:
            await self._reject(scope, receive, send, rejection)
            return
        try:
            permit = ticket = None
            breaker: Any = self.breaker  # its ticket protocol is private to seawall
            if breaker is not None:
                try:
                    if self._shared_breaker:
                        permit = await breaker.aadmit()
                    elif self._tickets:
                        ticket = breaker._acquire()
                    else:
                        permit = breaker.admit()
                except CircuitOpenError as exc:
                    rejection = unavailable(
                        "circuit_open", exc.retry_after, "The service is temporarily unavailable."
                    )
            if rejection is not None:
                await self._reject(scope, receive, send, rejection)
            elif self._timeout is None and not self._shared_breaker:
                # _call_app without a timeout, inlined: every coroutine layer costs about as
                # much as a gate's decision.
                observed = Observed(send, extra, receive)
                watched = permit is not None or ticket is not None
                try:
                    await self.app(
                        scope, observed.receive if watched else receive, observed.__call__
                    )
                except BaseException as exc:
                    if ticket is not None:
                        permit = CircuitPermit(breaker, ticket, 0.0)
                    await self._app_raised(exc, scope, receive, send, observed, permit)
                    return
                if ticket is not None:
                    outcome = self._verdict_of(False, observed)
                    if outcome == SUCCESS:
                        breaker._succeeded(ticket, 0.0)
                    else:
                        breaker._settle(ticket, outcome)
                elif permit is not None:
                    _REPORT[self._verdict_of(False, observed)](permit)
            else:
                if ticket is not None:
                    permit = CircuitPermit(breaker, ticket, 0.0)
                await self._call_app(scope, receive, send, extra, permit)
        finally:
            if bulkhead is not None:
                if self._shared_bulkhead:
                    # Shielded: on a cancelled request (trio cancels into finally blocks) the
                    # store must still hear that the slot is free.
                    with anyio.CancelScope(shield=True):
                        await bulkhead.arelease()
                else:
                    bulkhead.release()

    def _verdict(
        self,
        group: LimitGroup,
        granted: bool,
        states: tuple[PolicyState, ...],
        extra: list[Header],
    ) -> Rejection | None:
        if self._style is not None:
            wall = self._clock.time() if self._style != "ietf" else 0.0
            extra += ratelimit_fields(self._style, group.policy_field, states, wall)
        if granted:
            return None
        refused = [s for s in states if s.retry_after > 0]
        return rate_limited(extra, max(s.retry_after for s in refused), [s.name for s in refused])

    async def _take_slot(self, bulkhead: Bulkhead) -> Rejection | None:
        if self._max_wait == 0 and not self._shared_bulkhead:
            if bulkhead.try_acquire():
                return None
            retry_after = 1.0
        else:
            try:
                await bulkhead.acquire_async()
                return None
            except BulkheadFullError as exc:
                retry_after = exc.retry_after
        return unavailable("overloaded", retry_after, "The service is overloaded.")

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, extra: Sequence[Header], permit: Any
    ) -> None:
        observed = Observed(send, extra, receive)
        if permit is not None:
            receive = observed.receive  # only the breaker needs to know who left early
        observing = observed.__call__  # a bound method: cheaper to call than the instance
        try:
            if self._timeout is None:
                await self.app(scope, receive, observing)
                expired = False
            else:
                expired = await self._run_with_timeout(scope, receive, observing)
        except BaseException as exc:
            await self._app_raised(exc, scope, receive, send, observed, permit)
            return
        if permit is not None:
            outcome = self._verdict_of(expired, observed)
            if self._shared_breaker:
                await _AREPORT[outcome](permit)
            else:
                _REPORT[outcome](permit)  # no coroutine to await on every request in memory
        if expired:
            await self._expired(scope, receive, send, observed)

    async def _app_raised(
        self,
        exc: BaseException,
        scope: Scope,
        receive: Receive,
        send: Send,
        observed: Observed,
        permit: Any,
    ) -> None:
        """Answer a dependency's refusal with a 429 if the response has not started; tell
        the breaker the outcome and raise ``exc`` again otherwise."""
        if isinstance(exc, RateLimited):
            if permit is not None:
                await self._report(permit, NEUTRAL)
            if observed.status:
                raise exc
            await self._reject(
                scope, receive, send, rejection_for(exc, self._style, self._clock.time())
            )
            return
        if permit is not None:
            await self._settle(permit, exc, observed)
        raise exc

    @staticmethod
    def _verdict_of(expired: bool, observed: Observed) -> int:
        # A timeout is the app's slowness even if the client has left meanwhile; a response
        # cut short by the client says nothing about the app, whatever its status.
        if expired:
            return FAILURE
        if observed.gone:
            return NEUTRAL
        return FAILURE if observed.status >= 500 else SUCCESS

    async def _settle(self, permit: CircuitPermit, exc: BaseException, observed: Observed) -> None:
        outcome = observed.outcome(exc)
        if not self._shared_breaker:
            if outcome is None:
                permit.settle(exc)
            else:
                _REPORT[outcome](permit)
            return
        # Shielded: the exception may be a cancellation, and the outcome must still be told.
        with anyio.CancelScope(shield=True):
            if outcome is None:
                await permit.asettle(exc)
            else:
                await _AREPORT[outcome](permit)

    async def _report(self, permit: CircuitPermit, outcome: int) -> None:
        # A breaker kept in a store reports without blocking the loop; one in memory at once.
        if self._shared_breaker:
            await _AREPORT[outcome](permit)
        else:
            _REPORT[outcome](permit)

    async def _run_with_timeout(self, scope: Scope, receive: Receive, send: Send) -> bool:
        assert self._timeout is not None
        if self._clock is SYSTEM_CLOCK:
            # The real clock is the event loop's: a cancel scope with a deadline costs nothing
            # extra, where a timer task would cost a task per request.
            with anyio.CancelScope(deadline=anyio.current_time() + self._timeout) as app_scope:
                await self.app(scope, receive, send)
            return app_scope.cancel_called
        return await self._run_with_timer(scope, receive, send, self._timeout)

    async def _run_with_timer(
        self, scope: Scope, receive: Receive, send: Send, timeout: float
    ) -> bool:
        # Any other clock (a FakeClock in tests) drives the timeout through its own asleep,
        # so tests control it exactly as they control every other policy.
        app_scope = anyio.CancelScope()
        clock = self._clock
        error: Exception | None = None

        async def expire() -> None:
            await clock.asleep(timeout)
            app_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(expire)
            try:
                with app_scope:
                    await self.app(scope, receive, send)
            except Exception as exc:  # re-raised below, unwrapped by the task group
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return app_scope.cancel_called

    async def _expired(
        self, scope: Scope, receive: Receive, send: Send, observed: Observed
    ) -> None:
        if not observed.status:
            await self._reject(scope, receive, send, timed_out())
            return
        # Too late for a 504: the status line is gone. Returning without the final body
        # message makes the server close the connection, so the client sees a truncated
        # response rather than a complete-looking one.
        logger.warning("seawall: request_timeout after the response started; response aborted")

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, rejection: Rejection
    ) -> None:
        await send_rejection(scope, receive, send, rejection, self._on_reject)

    # -- lifespan ----------------------------------------------------------------------------

    async def _lifespan_events(self, scope: Scope, receive: Receive, send: Send) -> None:
        hook = self.lifespan
        assert hook is not None

        async def receive_driving() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await hook.startup()
                except BaseException as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    raise
            elif message["type"] == "lifespan.shutdown":
                await hook.drain()
            return message

        async def send_driving(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await hook.finish()
            await send(message)

        await self.app(scope, receive_driving, send_driving)


def _exempt_predicate(exempt: Exempt | None) -> Callable[[Scope], bool] | None:
    if exempt is None:
        return None
    if callable(exempt):
        return exempt
    if isinstance(exempt, str):
        exempt = [exempt]
    paths = frozenset(exempt)
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ValueError(f"exempt must be paths starting with '/' or a predicate, got {exempt!r}")
    return lambda scope: scope["path"] in paths


def _bulkhead(
    max_concurrent: int | Bulkhead | None,
    max_queue: int | None,
    max_wait: float,
    clock: Clock | None,
    shared: StoreOptions,
) -> Bulkhead | None:
    if isinstance(max_concurrent, Bulkhead):
        return max_concurrent
    if max_concurrent is None:
        if max_queue is not None or max_wait:
            raise ValueError("max_queue and max_wait need max_concurrent")
        return None
    if shared.store is not None and max_queue is not None:
        raise ValueError("max_queue has no meaning for a bulkhead kept in a store")
    return Bulkhead(
        max_concurrent,
        max_wait=max_wait,
        max_queue=max_queue,
        name=shared.name("bulkhead") if shared.store is not None else "asgi",
        clock=clock,
        **shared.options(),
    )


def _breaker(
    breaker: bool | CircuitBreaker | Mapping[str, Any] | None,
    clock: Clock | None,
    shared: StoreOptions,
) -> CircuitBreaker | None:
    if breaker is None or breaker is False:
        return None
    name = shared.name("breaker") if shared.store is not None else "asgi"
    if breaker is True:
        return CircuitBreaker(name=name, clock=clock, **shared.options())
    if isinstance(breaker, CircuitBreaker):
        return breaker
    if isinstance(breaker, Mapping):
        return CircuitBreaker(**{"name": name, "clock": clock, **shared.options(), **breaker})
    raise TypeError(f"breaker must be a bool, a CircuitBreaker or options, got {breaker!r}")
