"""The in-process store: the store contract kept in dictionaries.

Policies built without a store keep their state in their own objects and never come here; this
class exists so that the store-backed path of every policy can be exercised (and compared with
the file and Redis stores) without any I/O, and so that several policy objects of one process
can share state by name. It runs the same :mod:`~seawall.stores._rules` as the other stores,
on the clock's wall time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .._clock import SYSTEM_CLOCK, Clock
from .._core.breaker import BreakerState, Ticket, Transition
from .._core.limiter import Bucket
from .._core.validate import check_number
from . import _admit, _rules
from ._base import (
    Admission,
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    Gates,
    Hold,
    LimiterSpec,
    PolicyStatus,
    Reservation,
    Store,
)

__all__ = ["MemoryStore"]


class _MemoryHold(Hold):
    def __init__(self, store: MemoryStore, name: str, slot: int) -> None:
        self._store = store
        self._name = name
        self.slot = slot
        self._released = False

    def release(self) -> None:
        with self._store._lock:
            if not self._released:
                self._released = True
                self._store._slots[self._name].discard(self.slot)

    async def arelease(self) -> None:
        self.release()

    def drop(self) -> None:
        """:meth:`release` with the store's lock already held."""
        self._released = True
        self._store._slots[self._name].discard(self.slot)


class MemoryStore(Store):
    """State shared by the policies of one process, looked up by policy name."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.url = "memory://"
        self.timeout = 0.0
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str | None], tuple[LimiterSpec, Bucket]] = {}
        self._breakers: dict[str, tuple[BreakerSpec, BreakerState, list[float]]] = {}
        self._slots: dict[str, set[int]] = {}
        self._bulkheads: dict[str, BulkheadSpec] = {}

    def __repr__(self) -> str:
        return "MemoryStore()"

    # -- rate limiter -----------------------------------------------------------------------

    def _bucket(self, spec: LimiterSpec, key: str | None) -> Bucket:
        entry = self._buckets.get((spec.name, key))
        if entry is None:
            entry = (spec, Bucket(spec.interval, spec.burst))
            self._buckets[spec.name, key] = entry
        return entry[1]

    def reserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        now = self._clock.time()
        with self._lock:
            return _rules.bucket_reserve(self._bucket(spec, key), now, tokens, max_wait)

    async def areserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        return self.reserve(spec, key, tokens, max_wait)

    def cancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        with self._lock:
            return _rules.bucket_cancel(self._bucket(spec, key), ticket, tokens)

    async def acancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        return self.cancel(spec, key, ticket, tokens)

    def block(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        check_number("seconds", seconds, inclusive=True, allow_inf=True)
        now = self._clock.time()
        with self._lock:
            return _rules.bucket_block(self._bucket(spec, key), now, seconds, spec.max_block)

    async def ablock(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        return self.block(spec, key, seconds)

    def peek(self, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        now = self._clock.time()
        with self._lock:
            return _rules.bucket_peek(self._bucket(spec, key), now)

    def withdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        now = self._clock.time()
        with self._lock:
            return _rules.bucket_withdraw(self._bucket(spec, key), now, deposit)

    async def awithdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        return self.withdraw(spec, key, deposit)

    # -- circuit breaker --------------------------------------------------------------------

    def _breaker(self, spec: BreakerSpec, now: float) -> BreakerState:
        entry = self._breakers.get(spec.name)
        if entry is None:
            entry = (spec, BreakerState(), [now])
            self._breakers[spec.name] = entry
        _, state, last = entry
        last[0] = _rules.rebase_breaker(state, last[0], now)
        return state

    def admit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        now = self._clock.time()
        with self._lock:
            return _rules.breaker_admit(self._breaker(spec, now), spec.config, now)

    async def aadmit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        return self.admit(spec)

    def record(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        now = self._clock.time()
        with self._lock:
            state = self._breaker(spec, now)
            return _rules.breaker_record(state, spec.config, now, ticket, outcome, duration)

    async def arecord(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        return self.record(spec, ticket, outcome, duration)

    def force(self, spec: BreakerSpec, action: str) -> Transition | None:
        now = self._clock.time()
        with self._lock:
            return _rules.breaker_force(self._breaker(spec, now), action, now)

    def view(self, spec: BreakerSpec) -> BreakerView:
        now = self._clock.time()
        with self._lock:
            return _rules.breaker_view(self._breaker(spec, now), spec.config, now)

    # -- bulkhead ---------------------------------------------------------------------------

    def try_hold(self, spec: BulkheadSpec) -> Hold | None:
        with self._lock:
            return self._take_slot(spec)

    def _take_slot(self, spec: BulkheadSpec) -> _MemoryHold | None:
        self._bulkheads[spec.name] = spec
        held = self._slots.setdefault(spec.name, set())
        for slot in range(spec.max_concurrent):
            if slot not in held:
                held.add(slot)
                return _MemoryHold(self, spec.name, slot)
        return None

    async def atry_hold(self, spec: BulkheadSpec) -> Hold | None:
        return self.try_hold(spec)

    def holders(self, spec: BulkheadSpec) -> int:
        with self._lock:
            return len(self._slots.get(spec.name, ()))

    # -- one request's admission ---------------------------------------------------------------

    def admit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        charge = _admit.check_costs(gates, costs)
        now = self._clock.time()
        bulkhead, breaker = gates.bulkhead, gates.breaker
        with self._lock:
            buckets = [self._bucket(s, key if s.keyed else None) for s in gates.limits]
            return _admit.decide(
                buckets,
                now,
                charge,
                None if bulkhead is None else lambda: self._take_slot(bulkhead),
                _drop,
                None
                if breaker is None
                else lambda: _rules.breaker_admit(self._breaker(breaker, now), breaker.config, now),
            )

    async def aadmit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        return self.admit_request(gates, key, costs)

    # -- administration ---------------------------------------------------------------------

    def status(self) -> list[PolicyStatus]:
        now = self._clock.time()
        found: list[PolicyStatus] = []
        with self._lock:
            for (name, key), (_, bucket) in self._buckets.items():
                tokens, full_in = _rules.bucket_peek(bucket, now)
                blocked = max(0.0, bucket.blocked_until - now)
                found.append(
                    PolicyStatus(
                        "limiter",
                        name,
                        key,
                        {"tokens": tokens, "full_in": full_in, "blocked_for": blocked},
                    )
                )
            for name, (spec, state, _) in self._breakers.items():
                view = _rules.breaker_view(state, spec.config, now)
                found.append(PolicyStatus("breaker", name, None, _view_dict(view)))
            for name, bulkhead in self._bulkheads.items():
                held = len(self._slots.get(name, ()))
                found.append(
                    PolicyStatus(
                        "bulkhead", name, None, {"held": held, "slots": bulkhead.max_concurrent}
                    )
                )
        return sorted(found, key=lambda p: (p.kind, p.name, p.key or ""))

    def reset(self, name: str) -> int:
        with self._lock:
            keys = [k for k in self._buckets if k[0] == name]
            for k in keys:
                del self._buckets[k]
            removed = len(keys)
            if self._breakers.pop(name, None) is not None:
                removed += 1
            if self._bulkheads.pop(name, None) is not None:
                self._slots.pop(name, None)
                removed += 1
            return removed

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _drop(hold: Hold) -> None:
    assert isinstance(hold, _MemoryHold)
    hold.drop()


def _view_dict(view: BreakerView) -> dict[str, object]:
    return {
        "state": view.state,
        "failure_count": view.failure_count,
        "probes": view.probes,
        "successful_calls": view.successful_calls,
        "failed_calls": view.failed_calls,
        "rejected_calls": view.rejected_calls,
        "state_changes": view.state_changes,
    }
