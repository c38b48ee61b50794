"""The decisions a store makes, as plain functions over the pure cores' state objects.

Every store runs exactly these rules: the memory and file stores call them on a
:class:`~seawall._core.limiter.Bucket` or :class:`~seawall._core.breaker.BreakerState` loaded
from their record, and the Redis store's Lua scripts mirror them line by line (a hypothesis
test feeds both the same event sequences and compares every answer).

Shared state lives on wall time, which can jump. Two rules keep a jump harmless:

* **Backwards:** when ``now`` is earlier than the latest reading the record has seen, every
  stamp in the record moves back by the difference (:func:`rebase_bucket`,
  :func:`rebase_breaker`). No time passes during the jump, so no tokens are granted and no
  open period ends early; and since the stamps move with the clock, nothing waits for the old
  time to come back (a breaker never wedges).
* **Forwards:** indistinguishable from time passing; a bucket fills at most to ``burst``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._core.breaker import (
    BreakerConfig,
    BreakerState,
    Ticket,
    Transition,
    admit,
    force,
    peek_state,
    record,
)
from .._core.limiter import EPSILON, Bucket
from ._base import BreakerView, Reservation

__all__ = [
    "CANCELLED",
    "breaker_admit",
    "breaker_admit_held",
    "breaker_force",
    "breaker_record",
    "breaker_view",
    "bucket_block",
    "bucket_cancel",
    "bucket_peek",
    "bucket_refund",
    "bucket_reserve",
    "bucket_reserve_held",
    "bucket_ttl",
    "bucket_withdraw",
    "lease_acquire",
    "limits_commit",
    "limits_plan",
    "rebase_breaker",
    "rebase_bucket",
]


# -- rate limiter ----------------------------------------------------------------------------


def rebase_bucket(b: Bucket, now: float) -> None:
    """Move the bucket's stamps back with a clock that went back; record ``now`` as seen."""
    if now < b.last_now:
        shift = b.last_now - now
        b.full_at -= shift
        b.blocked_until -= shift
    b.last_now = now


def bucket_reserve(b: Bucket, now: float, tokens: int, max_wait: float) -> Reservation:
    """Take ``tokens`` if they are there within ``max_wait``; committed iff wait <= max_wait."""
    rebase_bucket(b, now)
    wait = b.reserve(now, tokens, max_wait)
    remaining, reset_after = b.describe(now)
    return Reservation(wait, b.full_at, remaining, reset_after)


CANCELLED = -1.0
"""A receipt's value once its holder's answer was lost: a reservation arriving later is refused."""


def bucket_refund(b: Bucket, now: float, tokens: float) -> None:
    """Give back ``tokens`` taken by a reservation whose answer was lost, wherever it stands.

    Unlike :func:`bucket_cancel`, later reservations do not stop it: they were promised slots
    counting these tokens as spent, and they keep them, so nobody gets more than the rate
    allows; the bucket is never fuller than full, nor below a block's floor.
    """
    if b.full_at > now:
        block_floor = b.blocked_until + (b.burst - 1.0) * b.interval
        b.full_at = max(b.full_at - tokens * b.interval, now, block_floor)


def bucket_reserve_held(
    b: Bucket,
    receipts: dict[str, float],
    now: float,
    tokens: int,
    max_wait: float,
    holder: str,
    lost: tuple[str, ...] = (),
) -> Reservation:
    """:func:`bucket_reserve` for a caller whose answer may be lost (the Redis store).

    ``receipts`` maps each holder id to the tokens its committed reservation took (kept by
    the store for a lease period). In one step: each holder of ``lost`` gets its tokens
    back (:func:`bucket_refund`) and its receipt becomes :data:`CANCELLED`, so that if its
    reservation reaches the store only later it is refused (wait ``inf``); then ``holder``
    reserves, and a committed reservation leaves its receipt (or, if ``holder`` was cancelled
    already, is undone and answered with wait ``inf``).
    """
    rebase_bucket(b, now)
    for gone in lost:
        taken = receipts.get(gone)
        if taken is not None and taken > 0:
            bucket_refund(b, now, taken)
        receipts[gone] = CANCELLED
    before = b.full_at
    answer = bucket_reserve(b, now, tokens, max_wait)
    if answer.wait <= max_wait:
        # Checked only when committing (a refusal takes nothing): one SET NX in the script.
        # A receipt already there means cancelled, or the same call run twice: never twice.
        if holder in receipts:
            b.full_at = before
            remaining, reset_after = b.describe(now)
            return Reservation(math.inf, b.full_at, remaining, reset_after)
        receipts[holder] = float(tokens)
    return answer


def limits_plan(
    buckets: Sequence[Bucket], now: float, costs: Sequence[int]
) -> tuple[bool, list[float], list[Reservation]]:
    """One request's limits, all or nothing, deciding without committing.

    Returns whether every bucket has its ``costs`` tokens now, the ``full_at`` each would
    have once charged (for :func:`limits_commit`), and each bucket's answer as it stands
    (``wait`` > 0 on the buckets that refuse; nothing spent).
    """
    granted = True
    planned: list[float] = []
    answers: list[Reservation] = []
    for b, cost in zip(buckets, costs, strict=True):
        rebase_bucket(b, now)
        new_full_at = (b.full_at if b.full_at > now else now) + cost * b.interval
        wait = new_full_at - now - b.span
        if wait <= EPSILON:
            wait = 0.0
        else:
            granted = False
        planned.append(new_full_at)
        remaining, reset_after = b.describe(now)
        answers.append(Reservation(wait, b.full_at, remaining, reset_after))
    return granted, planned, answers


def limits_commit(
    buckets: Sequence[Bucket], now: float, planned: Sequence[float]
) -> list[Reservation]:
    """Charge every bucket as :func:`limits_plan` planned; each one's answer after it."""
    answers = []
    for b, full_at in zip(buckets, planned, strict=True):
        b.full_at = full_at
        remaining, reset_after = b.describe(now)
        answers.append(Reservation(0.0, full_at, remaining, reset_after))
    return answers


def bucket_withdraw(b: Bucket, now: float, deposit: float) -> Reservation:
    """A shared retry budget's one step: put ``deposit`` tokens in, then take one if it is there.

    The deposit goes in first (:func:`bucket_refund`: never past full, so what a quiet
    stretch saved is capped at ``burst``); the token is taken only when it is there now
    (``max_wait`` 0), so a refused retry takes nothing.
    """
    rebase_bucket(b, now)
    if deposit > 0:
        bucket_refund(b, now, deposit)
    return bucket_reserve(b, now, 1, 0.0)


def bucket_cancel(b: Bucket, ticket: float, tokens: int) -> bool:
    """Give back a reservation whose ticket is still the bucket's latest."""
    return b.cancel(ticket, tokens)


def bucket_block(b: Bucket, now: float, seconds: float, max_block: float) -> bool:
    """Refuse everything for ``min(seconds, max_block)`` from ``now``; blocks only extend."""
    rebase_bucket(b, now)
    return b.block(now, now + min(seconds, max_block))


def bucket_peek(b: Bucket, now: float) -> tuple[float, float]:
    """``(tokens, seconds until full)`` at ``now``."""
    rebase_bucket(b, now)
    return b.tokens(now), b.reset_after(now)


def bucket_ttl(b: Bucket, now: float) -> float:
    """Seconds until the record is indistinguishable from an absent one (full, unblocked)."""
    return max(0.0, b.full_at - now, b.blocked_until - now)


# -- circuit breaker -------------------------------------------------------------------------


def rebase_breaker(s: BreakerState, last_now: float, now: float) -> float:
    """Move the breaker's stamps back with a clock that went back; return the new last_now."""
    if now < last_now:
        shift = last_now - now
        s.opened_at -= shift
        for probe_id in s.probes:
            s.probes[probe_id] -= shift
    return now


def breaker_admit(
    s: BreakerState, cfg: BreakerConfig, now: float
) -> tuple[Ticket | float, Transition | None]:
    """:func:`seawall._core.breaker.admit`, for a shared record."""
    return admit(s, cfg, now)


def breaker_admit_held(
    s: BreakerState,
    cfg: BreakerConfig,
    now: float,
    receipts: dict[str, Ticket | float],
    holder: str,
    lost: tuple[str, ...] = (),
) -> tuple[Ticket | float, Transition | None]:
    """:func:`breaker_admit` for a caller whose answer may be lost (the Redis store).

    ``receipts`` maps each holder id to the half-open probe it was admitted as (kept by the
    store for a lease period). In one step: each holder of ``lost`` gives its probe back,
    if it is still one of this generation (as if it never ran: no outcome is counted), and
    its receipt becomes :data:`CANCELLED`; then ``holder`` is admitted or not, and a probe
    leaves its receipt, unless ``holder`` was cancelled already (an admission arriving after
    its cancellation): then the probe is undone, not counted, and the answer is wait ``inf``.
    """
    for gone in lost:
        probe = receipts.get(gone)
        if isinstance(probe, tuple) and probe[0] == s.generation:
            s.probes.pop(probe[1], None)
        receipts[gone] = CANCELLED
    answer, transition = admit(s, cfg, now)
    if isinstance(answer, tuple) and answer[1] != 0:
        # Checked only for a probe (closed admissions take nothing): one SET NX in the script.
        # A receipt already there means cancelled, or the same call run twice: never twice.
        if holder in receipts:
            del s.probes[answer[1]]
            s.next_probe -= 1
            return math.inf, transition
        receipts[holder] = answer
    return answer, transition


def breaker_record(
    s: BreakerState, cfg: BreakerConfig, now: float, ticket: Ticket, outcome: int, duration: float
) -> Transition | None:
    """:func:`seawall._core.breaker.record`, for a shared record."""
    return record(s, cfg, now, ticket, outcome, duration)


def breaker_force(s: BreakerState, action: str, now: float) -> Transition | None:
    """:func:`seawall._core.breaker.force`, for a shared record."""
    return force(s, action, now)


def breaker_view(s: BreakerState, cfg: BreakerConfig, now: float) -> BreakerView:
    """The state a call arriving at ``now`` would find, with the shared counters."""
    return BreakerView(
        state=peek_state(s, cfg, now).name.lower(),
        failure_count=s.failure_count,
        opened_at=s.opened_at,
        probes=len(s.probes),
        successful_calls=s.successful_calls,
        failed_calls=s.failed_calls,
        rejected_calls=s.rejected_calls,
        state_changes=s.state_changes,
    )


# -- bulkhead leases (Redis) -----------------------------------------------------------------


def lease_acquire(
    holders: dict[str, float],
    now: float,
    holder: str,
    max_concurrent: int,
    lease: float,
    renew: tuple[str, ...] = (),
    cancel: tuple[str, ...] = (),
    cancelled: dict[str, float] | None = None,
) -> float:
    """Take a slot for ``holder`` until ``now + lease``: 0.0 when taken, else the wait.

    In one step, in this order: the holders in ``cancel`` (acquisitions whose answer was
    lost) lose their slot and are remembered in ``cancelled`` until ``now + lease``, so a lost
    acquisition that reaches the store only later is refused; leases that ended before
    ``now`` are dropped (a holder that died loses its slot when its lease runs out); the
    holders of ``renew`` (alive, still running) hold until ``now + lease``, their lease taken
    again if the store lost it (a restart without data), even past ``max_concurrent``: they
    run, so they count; then ``holder`` (``""`` for none: a renewal alone) takes a slot if one
    is free and it was not cancelled.
    """
    tombs: dict[str, float] = {} if cancelled is None else cancelled
    for gone in cancel:
        holders.pop(gone, None)
        tombs[gone] = now + lease
    for other, until in list(holders.items()):
        if until <= now:
            del holders[other]
    for other, until in list(tombs.items()):
        if until <= now:
            del tombs[other]
    for kept in renew:
        if kept not in tombs:
            # Still running, so still counted: a lease lost with the store's data comes back.
            holders[kept] = now + lease
    if holder == "":
        return 0.0
    if holder in tombs:
        return lease  # told no already: never granted, whatever is free
    if holder in holders or len(holders) < max_concurrent:
        holders[holder] = now + lease
        return 0.0
    return max(min(holders.values()) - now, 2 * EPSILON)
