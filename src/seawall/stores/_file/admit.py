"""The file store's admission of one request: every gate's record under its lock, one pass.

The locks of the limit tables and of the breaker record are taken in one fixed order (by
file name), so two admissions, or an admission and a single operation, can never deadlock;
the whole set is bounded by the store's ``timeout``. Each record is then read once, the
shared :func:`~seawall.stores._admit.decide` runs, and each record is written back once.
Bulkhead slots are flocks taken without blocking, as :meth:`FileStore.try_hold` takes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..._clock import Clock
from ..._core.breaker import CircuitState, Ticket, Transition
from .. import _admit, _rules
from .._base import Admission, Gates, Hold, Reservation
from .breaker import BreakerFile
from .lock import LockFile
from .slots import BulkheadSlots, FileHold
from .table import Found, LimiterTable

__all__ = ["Records", "decide_locked", "locks_of"]


@dataclass(slots=True)
class Records:
    """The open files of one admission's gates (none of them locked yet)."""

    tables: list[LimiterTable]
    slots: BulkheadSlots | None
    breaker: BreakerFile | None


def locks_of(records: Records) -> list[LockFile]:
    """Every lock the admission takes, in the one order all admissions use."""
    locks = [t.lock for t in records.tables]
    if records.breaker is not None:
        locks.append(records.breaker.lock)
    unique = {id(lock): lock for lock in locks}
    return sorted(unique.values(), key=lambda lock: lock.name)


def decide_locked(
    clock: Clock, gates: Gates, key: str | None, costs: Sequence[int], records: Records
) -> Admission:
    """Run the admission with every lock held; write back what it changed."""
    now = clock.time()
    found: list[Found] = []
    for spec, table in zip(gates.limits, records.tables, strict=True):
        slot = table.load(spec, key if spec.keyed else None, now)
        if isinstance(slot, float):  # no room for a new key: refused, nothing spent
            return _table_full(slot, len(gates.limits))
        found.append(slot)
    breaker_file = records.breaker

    def admit_breaker() -> tuple[Ticket | float, Transition | None]:
        assert breaker_file is not None
        assert gates.breaker is not None
        state, stored_now = breaker_file.load(now)
        if state.state is CircuitState.CLOSED and now >= stored_now:
            # A closed admission changes nothing but the last wall time seen, which only
            # moves the stamps of an open or half-open breaker when the clock goes back (a
            # trip writes it anew): so nothing is written, and the record stays as it was.
            answer = _rules.breaker_admit(state, gates.breaker.config, now)
            breaker_file.unchanged()
            return answer
        last_now = _rules.rebase_breaker(state, stored_now, now)
        answer = _rules.breaker_admit(state, gates.breaker.config, now)
        breaker_file.save(state, last_now, gates.breaker.config.reset_timeout, gates.breaker.name)
        return answer

    slots = records.slots
    count = 0 if gates.bulkhead is None else gates.bulkhead.max_concurrent
    answer = _admit.decide(
        [f.bucket for f in found],
        now,
        costs,
        None if slots is None else lambda: slots.try_hold(count) or slots.try_hold(count),
        _give_back,
        None if breaker_file is None else admit_breaker,
    )
    for spec, table, f in zip(gates.limits, records.tables, found, strict=True):
        if answer.admitted or f.stored:
            table.save(f.offset, key if spec.keyed else None, f.bucket)
    return answer


def _table_full(wait: float, limits: int) -> Admission:
    refused = Reservation(wait, math.nan, 0, wait)
    return _admit.refused_by_table([refused] * limits)


def _give_back(hold: Hold) -> None:
    assert isinstance(hold, FileHold)
    hold.release()
