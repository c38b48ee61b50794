"""One request's admission through its gates, for the stores that decide in Python.

The memory and file stores run :func:`decide` with the records of every gate loaded and
locked; the Redis store's ``admit`` script mirrors it (``stores/_redis/lua/admit.lua``). The
order is the pipeline's, limiter -> bulkhead -> breaker, and a later gate's refusal gives
back what an earlier one granted in the same step: the limits are charged only once the
breaker has admitted, and a slot taken for a request the breaker refuses is freed at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._core.breaker import Ticket, Transition
from .._core.limiter import Bucket
from . import _rules
from ._base import Admission, Gates, Hold, Reservation

__all__ = ["BULKHEAD_RETRY_AFTER", "check_costs", "decide", "refused_by_table"]

BULKHEAD_RETRY_AFTER = 0.05
"""Retry-After of a bulkhead refusal, in every store: a slot may free at any instant, so
this is the shared bulkhead's polling pause, not the end of anyone's lease."""


def check_costs(gates: Gates, costs: Sequence[int] | None) -> tuple[int, ...]:
    """One positive whole cost per limit (1 each when None); ValueError naming the bad one."""
    if costs is None:
        return (1,) * len(gates.limits)
    found = tuple(costs)
    if len(found) != len(gates.limits):
        raise ValueError(
            f"costs must have one entry per limit ({len(gates.limits)}), got {found!r}"
        )
    for cost in found:
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ValueError(f"costs must be whole numbers >= 1, got {found!r}")
    return found


def decide(
    buckets: Sequence[Bucket],
    now: float,
    costs: Sequence[int],
    take_slot: Callable[[], Hold | None] | None,
    give_back: Callable[[Hold], None],
    admit_breaker: Callable[[], tuple[Ticket | float, Transition | None]] | None,
) -> Admission:
    """Decide every gate in order; see the module docstring.

    ``take_slot`` takes a bulkhead slot now or returns None; ``give_back`` frees one it took;
    ``admit_breaker`` is the breaker's admission (a ticket, or the seconds to wait).
    """
    granted, planned, answers = _rules.limits_plan(buckets, now, costs)
    if not granted:
        return Admission("limit", max(a.wait for a in answers), tuple(answers))
    hold = None
    if take_slot is not None:
        hold = take_slot()
        if hold is None:
            return Admission("bulkhead", BULKHEAD_RETRY_AFTER, tuple(answers))
    ticket: Ticket | None = None
    transition: Transition | None = None
    if admit_breaker is not None:
        answer, transition = admit_breaker()
        if not isinstance(answer, tuple):
            if hold is not None:
                give_back(hold)
            return Admission("breaker", answer, tuple(answers), None, None, transition)
        ticket = answer
    charged = _rules.limits_commit(buckets, now, planned)
    return Admission(None, 0.0, tuple(charged), hold, ticket, transition)


def refused_by_table(answers: Sequence[Reservation]) -> Admission:
    """A refusal by a limit whose table has no room for a new key (the file store)."""
    return Admission("limit", max(a.wait for a in answers), tuple(answers))
