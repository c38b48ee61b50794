"""The file store's decisions: load a record, run the shared rule, write back what changed.

Each function runs with the policy's lock held (the caller takes it) and reads the wall time
itself, under the lock, so decisions are ordered the way the lock orders them.

Every operation on an existing record writes it back, even a refusal or a view: the record's
``last_now`` must be the latest wall time any process read for it, or a later backwards jump
would be rebased by too little and tokens or open time would be handed out twice (one
exception, in ``admit``: a closed breaker's admission, which has no stamp to rebase). A key with
no record yet is written only when a reservation or block commits (a full bucket equals an
absent one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..._clock import Clock
from ..._core.breaker import BreakerConfig, BreakerState, Ticket, Transition
from .. import _rules
from .._base import BreakerSpec, BreakerView, LimiterSpec, Reservation, Settlement
from .breaker import BreakerFile
from .table import LimiterTable

__all__ = [
    "admit_rule",
    "block",
    "cancel",
    "peek",
    "record_all",
    "record_rule",
    "reserve",
    "run_breaker",
    "view",
    "withdraw",
]

T = TypeVar("T")


def reserve(
    clock: Clock, t: LimiterTable, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
) -> Reservation:
    now = clock.time()
    found = t.load(spec, key, now)
    if isinstance(found, float):  # no slot for a new key: refused, never committed
        wait = found if found > max_wait else math.nextafter(max_wait, math.inf)
        return Reservation(wait, math.nan, 0, found)
    result = _rules.bucket_reserve(found.bucket, now, tokens, max_wait)
    if result.wait <= max_wait or found.stored:
        t.save(found.offset, key, found.bucket)
    return result


def cancel(
    clock: Clock, t: LimiterTable, spec: LimiterSpec, key: str | None, ticket: float, tokens: int
) -> bool:
    found = t.load(spec, key, clock.time())
    if isinstance(found, float) or not _rules.bucket_cancel(found.bucket, ticket, tokens):
        return False
    t.save(found.offset, key, found.bucket)
    return True


def block(
    clock: Clock, t: LimiterTable, spec: LimiterSpec, key: str | None, seconds: float
) -> bool:
    now = clock.time()
    found = t.load(spec, key, now)
    if isinstance(found, float):
        return False  # a key without a slot is refused anyway
    blocked = _rules.bucket_block(found.bucket, now, seconds, spec.max_block)
    if blocked or found.stored:
        t.save(found.offset, key, found.bucket)
    return blocked


def withdraw(
    clock: Clock, t: LimiterTable, spec: LimiterSpec, key: str | None, deposit: float
) -> Reservation:
    now = clock.time()
    found = t.load(spec, key, now)
    if isinstance(found, float):  # no slot for a new key: refused, nothing taken
        return Reservation(found, math.nan, 0, found)
    result = _rules.bucket_withdraw(found.bucket, now, deposit)
    if result.wait == 0.0 or found.stored:
        t.save(found.offset, key, found.bucket)
    return result


def peek(clock: Clock, t: LimiterTable, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
    now = clock.time()
    found = t.load(spec, key, now)
    if isinstance(found, float):
        return 0.0, found
    result = _rules.bucket_peek(found.bucket, now)
    if found.stored:
        t.save(found.offset, key, found.bucket)
    return result


def run_breaker(
    clock: Clock,
    f: BreakerFile,
    spec: BreakerSpec,
    rule: Callable[[BreakerState, float], T],
) -> T:
    now = clock.time()
    state, stored_now = f.load(now)
    last_now = _rules.rebase_breaker(state, stored_now, now)
    result = rule(state, now)
    f.save(state, last_now, spec.config.reset_timeout, spec.name)
    return result


def view(clock: Clock, f: BreakerFile, spec: BreakerSpec) -> BreakerView:
    now = clock.time()
    state, stored_now = f.load(now)
    _rules.rebase_breaker(state, stored_now, now)
    f.save(state, now, spec.config.reset_timeout, spec.name)
    return _rules.breaker_view(state, spec.config, now)


_Admission = tuple[Ticket | float, Transition | None]


def admit_rule(cfg: BreakerConfig) -> Callable[[BreakerState, float], _Admission]:
    def rule(s: BreakerState, now: float) -> _Admission:
        return _rules.breaker_admit(s, cfg, now)

    return rule


def record_rule(
    cfg: BreakerConfig, ticket: Ticket, outcome: int, duration: float
) -> Callable[[BreakerState, float], Transition | None]:
    def rule(s: BreakerState, now: float) -> Transition | None:
        return _rules.breaker_record(s, cfg, now, ticket, outcome, duration)

    return rule


def record_all(
    clock: Clock, f: BreakerFile, spec: BreakerSpec, items: Sequence[Settlement]
) -> list[Transition | None]:
    """Record every item's outcome in turn (one read, one write); each one's transition."""
    now = clock.time()
    state, stored_now = f.load(now)
    last_now = _rules.rebase_breaker(state, stored_now, now)
    cfg = spec.config
    found: list[Transition | None] = []
    for item in items:
        ticket = item.ticket
        if ticket is None:
            found.append(None)
        else:
            found.append(
                _rules.breaker_record(state, cfg, now, ticket, item.outcome, item.duration)
            )
    f.save(state, last_now, cfg.reset_timeout, spec.name)
    return found
