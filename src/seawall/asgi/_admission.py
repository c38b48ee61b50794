"""One store round trip per request for the middleware's gates kept in a store.

When the middleware keeps its limits, its bulkhead and its breaker in a store, a request asks
the store once (:meth:`Store.aadmit_request`): every limit of its route, all or nothing, then
the bulkhead, then the breaker, in the pipeline's order, in one operation (one ``EVALSHA`` on
Redis). The answer carries the RateLimit numbers, the slot (a lease renewed like every other,
see ``stores/_redis/leases.py``) and the breaker ticket. After the response the slot is
released and the outcome recorded, shielded from cancellation.

The gates live under one Redis hash tag, the middleware's ``store_prefix`` (see
``Store.colocate``), so that one script can reach them all on a Cluster too: the whole
middleware's state then sits on one shard (``docs/scaling.md``). The policies' own methods
(``mw.bulkhead.stats``, ``mw.breaker.state``) read the same keys.

When the store does not answer, the middleware's ``degraded`` mode decides, once per request
rather than once per gate: ``local`` runs the same admission on an in-process
:class:`~seawall.stores.MemoryStore`, ``allow`` admits, ``deny`` answers 503.

A refusal by a limit says when the limit can next admit that client (a token bucket knows:
``retry_after``). Until then the same client's requests are refused here, without asking the
store (:class:`Refusals`): a flood of refused clients costs the store nothing. The price: a
token given back early (a cancelled reservation, a lost answer refunded) is not seen before
that time.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from .._breaker.breaker import CircuitBreaker
from .._bulkhead.bulkhead import Bulkhead
from .._clock import Clock
from .._core.breaker import Transition
from ..stores._base import (
    Admission,
    BreakerSpec,
    BulkheadSpec,
    Gates,
    LimiterSpec,
    Request,
    Settlement,
    Store,
    StoreUnavailableError,
    group_gates,
)
from ..stores._degraded import DEGRADED, Degraded, StoreGuard
from ..stores._memory import MemoryStore
from ._coalesce import Coalescer
from ._limits import LimitGroup, PolicyState
from ._responses import unavailable
from ._settle import Batcher, Told, told_permit

if TYPE_CHECKING:
    from ._responses import Header, Rejection
    from ._types import Receive, Scope, Send


class _Middleware(Protocol):
    """What the admission uses of ``ResilienceMiddleware`` (named here: no import cycle)."""

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, rejection: Rejection
    ) -> None: ...

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, extra: list[Header], permit: Any
    ) -> None: ...

    def _verdict(
        self,
        group: LimitGroup,
        granted: bool,
        states: tuple[PolicyState, ...],
        extra: list[Header],
    ) -> Rejection | None: ...


__all__ = ["COALESCED_FLIGHTS", "SharedGates", "shared_gates"]

COALESCED_FLIGHTS = 1
"""Admission calls one middleware keeps out at once (see ``_coalesce``)."""


def key_text(key: Hashable) -> str:
    """A client key as the store keeps it: strings as they are, ints and bytes typed."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | bytes | tuple):
        return f"{type(key).__name__}:{key!r}"
    raise TypeError(f"key must be a str, int, bytes or a tuple to be kept in a store, got {key!r}")


class Refusals:
    """Limit refusals answered in process until they end, for at most ``max_keys`` clients.

    Kept per (gates, client key, cost), on the clock's monotonic time, as the RateLimit
    numbers of the refusal (one :class:`PolicyState` per limit), so a refused request is
    answered from them without asking the store or building the store's answer again. When
    full, the refusal that ends first is forgotten (it is the closest to being asked again).
    """

    __slots__ = ("_clock", "_max", "_until")

    def __init__(self, clock: Clock, max_keys: int) -> None:
        self._clock = clock
        self._max = max_keys
        self._until: dict[tuple[int, str, int], tuple[float, float, tuple[PolicyState, ...]]]
        self._until = {}

    def __len__(self) -> int:
        return len(self._until)

    def clear(self) -> None:
        """Forget every refusal (the quotas were reset)."""
        self._until.clear()

    def get(self, gates: Gates, key: str, cost: int) -> tuple[PolicyState, ...] | None:
        """The refusal still running for this client, its numbers moved to now; else None."""
        found = self._until.get((id(gates), key, cost))
        if found is None:
            return None
        until, retry_after, states = found
        left = until - self._clock.monotonic()
        if left <= 0:
            del self._until[id(gates), key, cost]
            return None
        gone = retry_after - left
        return tuple(state.later(gone) for state in states)

    def remember(
        self, gates: Gates, key: str, cost: int, answer: Admission, limits: LimitGroup
    ) -> None:
        """Keep ``answer`` if it is a limit's refusal with a known end."""
        wait = answer.retry_after
        if answer.refused_by != "limit" or not 0 < wait < math.inf:
            return
        until = self._clock.monotonic() + wait
        entries = self._until
        if len(entries) >= self._max and (id(gates), key, cost) not in entries:
            del entries[min(entries, key=lambda k: entries[k][0])]
        entries[id(gates), key, cost] = (until, wait, _states(limits, answer))


class SharedGates:
    """Every gate of the middleware decided in one store operation per request."""

    __slots__ = (
        "_breaker",
        "_bulkhead",
        "_clock",
        "_gates",
        "_group",
        "_guard",
        "_local",
        "_settling",
        "batcher",
        "coalescer",
        "refusals",
        "store",
    )

    def __init__(
        self,
        store: Store,
        mode: str,
        group: str,
        bulkhead: BulkheadSpec | None,
        breaker: tuple[CircuitBreaker, BreakerSpec] | None,
        clock: Clock,
        max_keys: int,
    ) -> None:
        self.store = store
        self.refusals = Refusals(clock, max_keys)
        self._group = group
        self._bulkhead = bulkhead
        self._breaker = breaker
        self._clock = clock
        self._guard = StoreGuard(store, mode, "admission", group, clock)
        self._local = MemoryStore(clock=clock)  # degraded="local": the same rules, in process
        self._gates: dict[int, tuple[LimitGroup | None, Gates]] = {}
        self._settling = group_gates(group, (), bulkhead, breaker and breaker[1])
        self.batcher = Batcher(self._send)
        # Concurrent admissions share a round trip where the store decides a list in one
        # (Redis); elsewhere there is no round trip to share.
        self.coalescer: Coalescer[Request, Admission | Degraded] | None = None
        if type(store).aadmit_requests is not Store.aadmit_requests:
            self.coalescer = Coalescer(self._admit_many, COALESCED_FLIGHTS)
        # The policies' own methods (mw.bulkhead.stats, mw.breaker.state) then read the same
        # keys as the admission: one hash tag for every gate (see Store.colocate).
        store.colocate(group, [spec.name for spec in (bulkhead, breaker and breaker[1]) if spec])

    def reset(self) -> None:
        """Forget the refusals remembered and the degraded-mode state (for tests)."""
        self.refusals.clear()
        self._local = MemoryStore(clock=self._clock)

    @property
    def every_request(self) -> bool:
        """Whether a request with no limit still passes a gate (the bulkhead or the breaker)."""
        return self._bulkhead is not None or self._breaker is not None

    def gates(self, limits: LimitGroup | None) -> Gates:
        """The gates of a request whose route has ``limits`` (built once per group)."""
        found = self._gates.get(id(limits))
        if found is None or found[0] is not limits:
            specs = () if limits is None else _limit_specs(limits)
            self.store.colocate(self._group, [spec.name for spec in specs])
            breaker = None if self._breaker is None else self._breaker[1]
            found = (limits, group_gates(self._group, specs, self._bulkhead, breaker))
            self._gates[id(limits)] = found
        return found[1]

    async def admit(self, gates: Gates, key: str, cost: int) -> tuple[Admission, Store]:
        """Ask the store (or decide in degraded mode); also the store that answered."""
        # None is one token per limit, which the stores take without checking each cost.
        costs = None if cost == 1 else (cost,) * len(gates.limits)
        if self.coalescer is None:
            answer = await self._guard.aask(lambda: self.store.aadmit_request(gates, key, costs))
        else:
            answer = await self.coalescer.ask((gates, key, costs))
            if isinstance(answer, Degraded):
                self._guard.count()  # one degraded decision per request, as aask counts
        if not isinstance(answer, Degraded):
            return answer, self.store
        mode = self._guard.mode
        if mode == "local":
            return self._local.admit_request(gates, key, costs), self._local
        if mode == "allow":
            return Admission(None, 0.0, ()), self._local
        return Admission("bulkhead", 1.0, ()), self._local

    async def _admit_many(self, requests: list[Request]) -> list[Admission | Degraded]:
        guard = self._guard
        if guard.usable():
            try:
                answers = await self.store.aadmit_requests(requests)
            except (StoreUnavailableError, OSError) as exc:
                guard.failed(exc)  # every member's answer is lost: the store cancels them
            else:
                guard.answered()
                return list(answers)
        return [DEGRADED] * len(requests)

    async def _send(self, items: list[Settlement]) -> None:
        try:
            transitions = await self.store.asettle_requests(self._settling, items)
        except (StoreUnavailableError, OSError) as exc:
            # The leases end by themselves (and the store cancels the lost ones); a lost
            # outcome is not counted, and a probe's slot comes back after its lease.
            self._guard.failed(exc)
            return
        self._announce(*transitions)

    def _announce(self, *transitions: Transition | None) -> None:
        breaker = None if self._breaker is None else self._breaker[0]
        for transition in transitions:
            if transition is not None and breaker is not None:
                breaker.report_transition(transition)

    async def settle(self, source: Store, item: Settlement) -> None:
        """Report a finished request: batched to the store, or at once in process."""
        if source is self.store:
            await self.batcher.add(item)
        else:
            self._announce(*source.settle_requests(self._settling, [item]))  # degraded mode

    def running_refusal(
        self, mw: _Middleware, limits: LimitGroup | None, key: Hashable, cost: int
    ) -> Rejection | None:
        """A limit's refusal of this client still running, answered without the store
        (before any coroutine: a flood of refused requests costs what a refusal in memory
        does); else None."""
        if limits is None:
            return None
        refused = self.refusals.get(self.gates(limits), key_text(key), cost)
        if refused is None:
            return None
        rejection = mw._verdict(limits, False, refused, [])
        assert rejection is not None  # a refusal's states always carry a wait
        return rejection

    async def run(
        self,
        mw: _Middleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        limits: LimitGroup | None,
        key: Hashable,
        cost: int,
    ) -> None:
        """The middleware's gates for one request, then the app; see the module docstring."""
        gates, text = self.gates(limits), key_text(key)
        extra: list[Header] = []
        started = self._clock.monotonic()
        answer, source = await self.admit(gates, text, cost)
        if source is self.store and limits is not None:
            self.refusals.remember(gates, text, cost, answer, limits)
        self._announce(answer.transition)
        rejection = _rejection(mw, limits, answer, extra)
        if rejection is not None:
            await mw._reject(scope, receive, send, rejection)
            return
        hold, ticket = answer.hold, answer.ticket
        if hold is None and ticket is None:
            await mw._call_app(scope, receive, send, extra, None)
            return
        told = Told()
        breaker = None if self._breaker is None else self._breaker[0]
        permit = None if breaker is None or ticket is None else told_permit(breaker, ticket, told)
        try:
            await mw._call_app(scope, receive, send, extra, permit)
        finally:
            duration = self._clock.monotonic() - started
            await self.settle(source, Settlement(hold, ticket, told.outcome, duration))


def _limit_specs(limits: LimitGroup) -> tuple[LimiterSpec, ...]:
    # The same buckets the group's own limiters describe: `rate` tokens per `per` seconds.
    return tuple(
        LimiterSpec(str(bucket.name), bucket.per / bucket.rate, bucket.burst, keyed=True)
        for bucket in limits.buckets
    )


def _states(limits: LimitGroup, answer: Admission) -> tuple[PolicyState, ...]:
    """The RateLimit numbers of a store's answer, one per limit of the group."""
    return tuple(
        PolicyState(name, limit.amount, limit.window, r.remaining, r.reset_after, r.wait)
        for name, limit, r in zip(limits.names, limits.limits, answer.limits, strict=True)
    )


def _rejection(
    mw: _Middleware, limits: LimitGroup | None, answer: Admission, extra: list[Header]
) -> Rejection | None:
    if limits is not None and answer.limits:
        states = _states(limits, answer)
        refused = mw._verdict(limits, answer.refused_by != "limit", states, extra)
        if refused is not None:
            return refused
    if answer.refused_by == "bulkhead":
        return unavailable("overloaded", answer.retry_after, "The service is overloaded.")
    if answer.refused_by == "breaker":
        detail = "The service is temporarily unavailable."
        return unavailable("circuit_open", answer.retry_after, detail)
    return None


def shared_gates(
    store: Store | None,
    mode: str,
    group: str,
    bulkhead: Bulkhead | None,
    breaker: CircuitBreaker | None,
    *,
    built_here: bool,
    max_wait: float,
    clock: Clock,
    max_keys: int,
) -> SharedGates | None:
    """The one-round-trip admission, when every gate the middleware has lives in ``store``.

    Only for gates the middleware built itself (a bulkhead or breaker passed in keeps its own
    state, which other code may share) and a bulkhead that does not wait for a slot.
    """
    if store is None or not built_here or max_wait:
        return None
    bulkhead_spec = None
    if bulkhead is not None:
        spec = bulkhead.store_spec
        if not isinstance(spec, BulkheadSpec):
            return None
        bulkhead_spec = spec
    breaker_pair = None
    if breaker is not None:
        spec = breaker.store_spec
        if not isinstance(spec, BreakerSpec):
            return None
        breaker_pair = (breaker, spec)
    return SharedGates(store, mode, group, bulkhead_spec, breaker_pair, clock, max_keys)
