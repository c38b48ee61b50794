"""What every state store offers the policies: one decision per call, sync and async.

A store keeps the state of named policies where several processes (the file store) or several
machines (the Redis store) can share it. Policies never read or write a record themselves: they
ask the store for one *decision* (reserve tokens, admit a call, record an outcome, hold a slot),
and the store runs the pure core's rule on the shared record under its own atomicity (an
exclusive lock for files, one Lua script for Redis), with its own notion of "now" (wall time
for files, the Redis server's ``TIME`` for Redis).

Every operation either returns a decision or raises :class:`StoreUnavailableError` within the
store's ``timeout``; the policy then decides in its configured degraded mode. A store never
writes without its lock, and a record it cannot read is reset with a warning, not raised.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._core.breaker import BreakerConfig, Ticket, Transition
from .._errors import StoreError

__all__ = [
    "Admission",
    "BreakerSpec",
    "BreakerView",
    "BulkheadSpec",
    "Gates",
    "Hold",
    "LimiterSpec",
    "PolicyStatus",
    "Request",
    "Reservation",
    "Settlement",
    "Store",
    "StoreUnavailableError",
    "group_gates",
]


class StoreUnavailableError(StoreError):
    """The store did not answer in time or failed; the caller decides in degraded mode."""


@dataclass(frozen=True, slots=True)
class LimiterSpec:
    """A token bucket kept in a store: ``burst`` tokens, one every ``interval`` seconds."""

    name: str
    interval: float
    burst: float
    keyed: bool = False
    max_block: float = 3600.0
    """Longest Retry-After block :meth:`Store.block` may set, in seconds."""
    group: str = ""
    """Redis: the hash tag of the key (the name's when empty); see :class:`Gates`."""


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    """A circuit breaker kept in a store."""

    name: str
    config: BreakerConfig
    group: str = ""
    """Redis: the hash tag of the key (the name's when empty); see :class:`Gates`."""


@dataclass(frozen=True, slots=True)
class BulkheadSpec:
    """A bulkhead of ``max_concurrent`` slots kept in a store.

    ``lease`` bounds how long a slot outlives a holder the store cannot see die, or an
    acquisition whose answer was lost (Redis): a holder renews its lease while it holds it. The
    file store does not need it, since the kernel frees a dead holder's lock at once.
    """

    name: str
    max_concurrent: int
    lease: float = 5.0
    group: str = ""
    """Redis: the hash tag of the key (the name's when empty); see :class:`Gates`."""


class Reservation(NamedTuple):
    """The answer to :meth:`Store.reserve`.

    ``wait`` is 0.0 when the tokens are there now, else the seconds until they will be; the
    reservation was committed exactly when ``wait <= max_wait``. ``ticket`` identifies a
    committed reservation for :meth:`Store.cancel`.
    """

    wait: float
    ticket: float
    remaining: int
    """Whole tokens left after the decision (for ``RateLimit`` headers)."""
    reset_after: float
    """Seconds until the bucket is full again."""


class Hold(abc.ABC):
    """One bulkhead slot held through a store; release it exactly once."""

    slot: int

    @abc.abstractmethod
    def release(self) -> None:
        """Give the slot back (idempotent)."""

    @abc.abstractmethod
    async def arelease(self) -> None:
        """Give the slot back from a task (idempotent)."""


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A breaker's shared state as a store reports it (for ``seawall status``)."""

    state: str
    failure_count: int
    opened_at: float
    probes: int
    successful_calls: int
    failed_calls: int
    rejected_calls: int
    state_changes: int


@dataclass(frozen=True, slots=True)
class PolicyStatus:
    """One policy (and key) found in a store, for ``seawall status``.

    ``state`` has the same keys in every store: for a limiter ``tokens``, ``full_in`` (seconds
    until full) and ``blocked_for`` (seconds of Retry-After block left, 0.0 if none); for a
    breaker ``state``, ``failure_count``, ``probes`` and the call counters; for a bulkhead
    ``held`` and ``slots``.
    """

    kind: str  # "breaker", "limiter" or "bulkhead"
    name: str
    key: str | None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Gates:
    """What one request must pass, in this order: every limit, the bulkhead, the breaker.

    :meth:`Store.admit_request` decides them in one store operation. On Redis every key of
    an admission must live in one Cluster hash slot, so each spec's ``group`` must be the
    same non-empty text (:func:`group_gates` builds them so).
    """

    limits: tuple[LimiterSpec, ...] = ()
    bulkhead: BulkheadSpec | None = None
    breaker: BreakerSpec | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to :meth:`Store.admit_request`.

    ``refused_by`` is None when every gate admitted the request, else the first gate that
    refused (``"limit"``, ``"bulkhead"`` or ``"breaker"``), and ``retry_after`` says when to
    come back; a refusal holds nothing (the tokens, slot and probe of the gates before it are
    given back in the same step). ``limits`` has one :class:`Reservation` per limit (the
    ``RateLimit`` header numbers; ``wait > 0`` on the limits that refused). An admitted
    request holds ``hold`` (release it once) and ``ticket`` (record the breaker outcome once).
    """

    refused_by: str | None
    retry_after: float
    limits: tuple[Reservation, ...]
    hold: Hold | None = None
    ticket: Ticket | None = None
    transition: Transition | None = None

    @property
    def admitted(self) -> bool:
        """Whether every gate admitted the request."""
        return self.refused_by is None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one admitted request reports once it is done (see :meth:`Store.settle_requests`).

    ``hold`` is its slot (given back), ``ticket`` its breaker ticket (``outcome`` recorded,
    after ``duration`` seconds); either may be None.
    """

    hold: Hold | None
    ticket: Ticket | None
    outcome: int
    duration: float = 0.0


Request = tuple[Gates, str | None, Sequence[int] | None]
"""One request to admit: its gates, its client key and its costs (see ``admit_requests``)."""


def group_gates(
    group: str,
    limits: Sequence[LimiterSpec] = (),
    bulkhead: BulkheadSpec | None = None,
    breaker: BreakerSpec | None = None,
) -> Gates:
    """:class:`Gates` whose specs all carry ``group`` (one Redis hash slot for all of them)."""
    if not isinstance(group, str) or not group:
        raise ValueError(f"group must be a non-empty str, got {group!r}")
    names = [spec.name for spec in limits]
    for name in names:
        if names.count(name) > 1:  # one bucket charged twice, one receipt written twice
            raise ValueError(f"limits must have distinct names, got {name!r} twice")
    return Gates(
        tuple(_grouped(spec, group) for spec in limits),
        None if bulkhead is None else _grouped(bulkhead, group),
        None if breaker is None else _grouped(breaker, group),
    )


def _grouped(spec: Any, group: str) -> Any:
    return dataclasses.replace(spec, group=group)


class Store(abc.ABC):
    """A place to keep policy state shared between processes; see the module docstring.

    Constructors do no I/O: a store connects, creates its directory or loads its scripts on
    first use. ``url`` says where the state lives; ``timeout`` bounds every operation.
    """

    url: str
    timeout: float
    supports_breaker_windows: bool = True
    """False for a store that keeps only consecutive-failure breakers (none of seawall's own:
    memory, file and Redis keep both windows): a breaker with a failure-rate or slow-call
    window refuses such a store when it is built."""

    # -- rate limiter (GCRA, see _limiter_core.Bucket) --------------------------------------

    @abc.abstractmethod
    def reserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        """Take ``tokens`` from the bucket of ``key`` if they are there within ``max_wait``."""

    @abc.abstractmethod
    async def areserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        """:meth:`reserve` for tasks."""

    @abc.abstractmethod
    def cancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        """Give back a committed reservation if nobody reserved after it."""

    @abc.abstractmethod
    async def acancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        """:meth:`cancel` for tasks."""

    @abc.abstractmethod
    def block(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        """Refuse everything for ``seconds`` from the store's now (capped at max_block)."""

    @abc.abstractmethod
    async def ablock(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        """:meth:`block` for tasks."""

    @abc.abstractmethod
    def peek(self, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        """``(tokens, seconds until full)`` for ``key``, changing nothing."""

    def withdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        """Put ``deposit`` tokens in the bucket (never past full), then take one if it is there.

        A shared retry budget's one operation (see ``stores._rules.bucket_withdraw``): calls
        deposit, a retry withdraws; the taken token is granted exactly when ``wait`` is 0.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot keep a shared retry budget")

    async def awithdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        """:meth:`withdraw` for tasks."""
        raise NotImplementedError(f"{type(self).__name__} cannot keep a shared retry budget")

    # -- circuit breaker (see _breaker_core) ------------------------------------------------

    @abc.abstractmethod
    def admit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        """Ask to run a call: a ticket if admitted, else the seconds until it may be."""

    @abc.abstractmethod
    async def aadmit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        """:meth:`admit` for tasks."""

    @abc.abstractmethod
    def record(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        """Report how an admitted call ended."""

    @abc.abstractmethod
    async def arecord(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        """:meth:`record` for tasks."""

    @abc.abstractmethod
    def force(self, spec: BreakerSpec, action: str) -> Transition | None:
        """Manual control: ``"open"``, ``"closed"`` or ``"reset"`` (see _breaker_core.force)."""

    @abc.abstractmethod
    def view(self, spec: BreakerSpec) -> BreakerView:
        """The breaker's shared state as a call arriving now would find it; changes nothing."""

    # -- bulkhead ---------------------------------------------------------------------------

    @abc.abstractmethod
    def try_hold(self, spec: BulkheadSpec) -> Hold | None:
        """Take a free slot now, or return None when all are held."""

    @abc.abstractmethod
    async def atry_hold(self, spec: BulkheadSpec) -> Hold | None:
        """:meth:`try_hold` for tasks."""

    @abc.abstractmethod
    def holders(self, spec: BulkheadSpec) -> int:
        """How many slots are held now."""

    # -- one request's admission ---------------------------------------------------------------

    def colocate(self, group: str, names: Iterable[str]) -> None:
        """Keep the state of the policies ``names`` together, under ``group``.

        On Redis their keys then share one hash tag (one Cluster hash slot), so one script
        can reach them all (:meth:`admit_request`), whether a spec carries the group or not;
        other stores keep every policy reachable anyway. Call it before the first operation
        on those names; it does no I/O.
        """
        del group, names  # memory and files: nothing to keep together

    @abc.abstractmethod
    def admit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        """Admit one request through every gate of ``gates`` in one store operation.

        Limits are keyed by ``key`` and charged ``costs`` tokens each (1 by default), all or
        none; then the bulkhead; then the breaker. See :class:`Admission`.
        """

    @abc.abstractmethod
    async def aadmit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        """:meth:`admit_request` for tasks."""

    def admit_requests(self, requests: Sequence[Request]) -> list[Admission]:
        """Admit each of ``requests`` (gates, key, costs), in order, as :meth:`admit_request`.

        Here one operation per request (the first failure propagates); the Redis store
        decides the whole list in one script call, exactly as it would one after another.
        """
        return [self.admit_request(gates, key, costs) for gates, key, costs in requests]

    async def aadmit_requests(self, requests: Sequence[Request]) -> list[Admission]:
        """:meth:`admit_requests` for tasks."""
        return [await self.aadmit_request(gates, key, costs) for gates, key, costs in requests]

    def settle_requests(self, gates: Gates, items: Sequence[Settlement]) -> list[Transition | None]:
        """Give back every item's slot and record its breaker outcome; each one's transition.

        Here one operation per item; the Redis store sends a whole batch in one script call.
        """
        found: list[Transition | None] = []
        for item in items:
            if item.hold is not None:
                item.hold.release()
            transition = None
            if item.ticket is not None and gates.breaker is not None:
                transition = self.record(gates.breaker, item.ticket, item.outcome, item.duration)
            found.append(transition)
        return found

    async def asettle_requests(
        self, gates: Gates, items: Sequence[Settlement]
    ) -> list[Transition | None]:
        """:meth:`settle_requests` for tasks."""
        found: list[Transition | None] = []
        for item in items:
            if item.hold is not None:
                await item.hold.arelease()
            transition = None
            if item.ticket is not None and gates.breaker is not None:
                breaker = gates.breaker
                transition = await self.arecord(breaker, item.ticket, item.outcome, item.duration)
            found.append(transition)
        return found

    # -- administration ---------------------------------------------------------------------

    @abc.abstractmethod
    def status(self) -> list[PolicyStatus]:
        """Every policy (and key) this store holds state for, sorted by (kind, name, key)."""

    @abc.abstractmethod
    def reset(self, name: str) -> int:
        """Forget every record of the policy ``name``; return how many were removed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and file descriptors (held slots stay held)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """:meth:`close` for tasks."""
