"""The stores' rules for one request's admission and for a shared retry budget, without a store.

``limits_plan`` / ``limits_commit`` (all of a request's limits, all or nothing), the gate order
of ``_admit.decide`` and ``bucket_withdraw`` (a shared RetryBudget's one step) run inside every
store; the Redis store's Lua scripts mirror them and the differential tests compare the two with
a ``redis-server``. These tests pin the Python rules alone, exactly, so the mutation run
(``tox -e mutation``, no Redis) checks them too. ``half()`` is a bucket of interval 0.5 s and
burst 2 (span 1 s), ``thirds()`` one of interval 1 s and burst 3 (span 3 s): tokens and
seconds differ, and so do the two buckets.
"""

from __future__ import annotations

import math

import pytest

from seawall._core.breaker import CircuitState, Ticket, Transition
from seawall._core.limiter import Bucket
from seawall.stores import _admit, _rules
from seawall.stores._base import Admission, Gates, Hold, LimiterSpec, Reservation


def half() -> Bucket:
    return Bucket(interval=0.5, burst=2.0)


def thirds(full_at: float) -> Bucket:
    b = Bucket(interval=1.0, burst=3.0)
    b.full_at = full_at
    return b


# -- limits_plan ------------------------------------------------------------------------------


def test_a_plan_that_fits_every_limit_is_granted_and_spends_nothing() -> None:
    """At t=3 a full bucket (cost 1) and one with 2 of 3 tokens (cost 2) fit; none is charged."""
    b1, b2 = half(), thirds(4.0)
    granted, planned, answers = _rules.limits_plan([b1, b2], 3.0, [1, 2])
    assert (granted, planned) == (True, [3.5, 6.0])
    assert answers == [Reservation(0.0, -math.inf, 2, 0.0), Reservation(0.0, 4.0, 2, 1.0)]
    assert (b1.full_at, b2.full_at, b1.last_now, b2.last_now) == (-math.inf, 4.0, 3.0, 3.0)


def test_one_refusing_limit_refuses_the_plan_and_says_its_wait() -> None:
    """With 1 token left, cost 2 waits 0.5 s: refused, though the second limit fits."""
    b1, b2 = half(), thirds(4.0)
    b1.full_at = 3.5
    granted, planned, answers = _rules.limits_plan([b1, b2], 3.0, [2, 2])
    assert (granted, planned) == (False, [4.5, 6.0])
    assert answers == [Reservation(0.5, 3.5, 1, 0.5), Reservation(0.0, 4.0, 2, 1.0)]
    assert (b1.full_at, b2.full_at) == (3.5, 4.0)


def test_a_refusing_last_limit_refuses_the_plan() -> None:
    """The refusal of the last limit is not undone by the grants before it."""
    granted, planned, answers = _rules.limits_plan([half(), thirds(4.0)], 3.0, [1, 3])
    assert (granted, planned) == (False, [3.5, 7.0])
    assert [a.wait for a in answers] == [0.0, 1.0]


def test_a_wait_within_the_rounding_tolerance_is_granted_as_zero() -> None:
    """A wait of 5e-10 s (under EPSILON) is answered 0.0 and granted."""
    b = half()
    b.full_at = 0.5 + 5e-10
    granted, _, answers = _rules.limits_plan([b], 0.0, [1])
    assert (granted, answers[0].wait) == (True, 0.0)


def test_a_plan_rebases_a_clock_that_went_back() -> None:
    """With the clock 4 s back, full_at 11 becomes 7, so cost 1 plans 7.5 and waits 0.5 s."""
    b = half()
    b.last_now, b.full_at = 10.0, 11.0
    granted, planned, answers = _rules.limits_plan([b], 6.0, [1])
    assert (granted, planned, answers) == (False, [7.5], [Reservation(0.5, 7.0, 0, 1.0)])
    assert (b.full_at, b.last_now) == (7.0, 6.0)


def test_a_plan_needs_one_cost_per_limit() -> None:
    """Two buckets and one cost is a ValueError, not a plan for the first bucket alone."""
    with pytest.raises(ValueError, match="zip"):
        _rules.limits_plan([half(), half()], 0.0, [1])


# -- limits_commit ----------------------------------------------------------------------------


def test_a_commit_charges_every_limit_as_planned() -> None:
    """Committing the granted plan moves each full_at to its plan and answers what is left."""
    b1, b2 = half(), thirds(4.0)
    _, planned, _ = _rules.limits_plan([b1, b2], 3.0, [1, 2])
    answers = _rules.limits_commit([b1, b2], 3.0, planned)
    assert answers == [Reservation(0.0, 3.5, 1, 0.5), Reservation(0.0, 6.0, 0, 3.0)]
    assert (b1.full_at, b2.full_at) == (3.5, 6.0)


def test_a_commit_needs_one_plan_per_limit() -> None:
    """Two buckets and one planned instant is a ValueError, not a charge of the first alone."""
    with pytest.raises(ValueError, match="zip"):
        _rules.limits_commit([half(), half()], 0.0, [0.5])


# -- bucket_withdraw --------------------------------------------------------------------------


def test_a_withdrawal_from_a_full_budget_takes_one_token() -> None:
    """A full budget grants at once and keeps one of its two tokens."""
    b = half()
    assert _rules.bucket_withdraw(b, 1.0, 0.0) == Reservation(0.0, 1.5, 1, 0.5)


def test_a_refused_withdrawal_takes_nothing() -> None:
    """An empty budget refuses with the 0.5 s to the next token, and full_at stays put."""
    b = half()
    b.full_at = 2.0
    assert _rules.bucket_withdraw(b, 1.0, 0.0) == Reservation(0.5, 2.0, 0, 1.0)
    assert b.full_at == 2.0


def test_a_deposit_goes_in_before_the_withdrawal() -> None:
    """An empty budget given one token's deposit grants the retry and is empty again."""
    b = half()
    b.full_at = 2.0
    assert _rules.bucket_withdraw(b, 1.0, 1.0) == Reservation(0.0, 2.0, 0, 1.0)


def test_a_fractional_deposit_is_kept_when_the_retry_is_refused() -> None:
    """Half a token's deposit into an empty budget is not enough; full_at moves back 0.25 s."""
    b = half()
    b.full_at = 2.0
    assert _rules.bucket_withdraw(b, 1.0, 0.5) == Reservation(0.25, 1.75, 0, 0.75)
    assert b.full_at == 1.75


def test_a_deposit_never_fills_the_budget_past_full() -> None:
    """Five tokens' deposit into a full budget still leaves one token after the withdrawal."""
    b = half()
    assert _rules.bucket_withdraw(b, 1.0, 5.0) == Reservation(0.0, 1.5, 1, 0.5)


def test_a_withdrawal_rebases_a_clock_that_went_back() -> None:
    """With the clock 4 s back, full_at 11 becomes 7: one token's deposit then grants."""
    b = half()
    b.last_now, b.full_at = 10.0, 11.0
    assert _rules.bucket_withdraw(b, 6.0, 1.0) == Reservation(0.0, 7.0, 0, 1.0)
    assert b.last_now == 6.0


# -- _admit.decide: the gate order ------------------------------------------------------------


class _Slot(Hold):
    """A bulkhead slot that only records that it was given back."""

    slot = 0

    def release(self) -> None:
        raise AssertionError("decide gives a slot back through give_back")

    async def arelease(self) -> None:
        raise AssertionError("decide gives a slot back through give_back")


class _Gates:
    """The bulkhead and breaker callbacks of one decision, with what was asked of them."""

    def __init__(self, slot: bool = True, breaker: Ticket | float = (0, 0)) -> None:
        self.hold = _Slot() if slot else None
        self.breaker = breaker
        self.transition: Transition | None = None
        self.asked: list[str] = []
        self.given_back: list[Hold] = []

    def take_slot(self) -> Hold | None:
        self.asked.append("bulkhead")
        return self.hold

    def give_back(self, hold: Hold) -> None:
        self.given_back.append(hold)

    def admit_breaker(self) -> tuple[Ticket | float, Transition | None]:
        self.asked.append("breaker")
        return self.breaker, self.transition


def test_a_request_every_gate_admits_is_charged_and_holds_its_slot_and_ticket() -> None:
    """Limits charged once the breaker admitted; the slot and the ticket come back."""
    b1, b2 = half(), thirds(4.0)
    g = _Gates(breaker=(3, 0))
    answer = _admit.decide([b1, b2], 3.0, [1, 2], g.take_slot, g.give_back, g.admit_breaker)
    charged = (Reservation(0.0, 3.5, 1, 0.5), Reservation(0.0, 6.0, 0, 3.0))
    assert answer == Admission(None, 0.0, charged, g.hold, (3, 0), None)
    assert (g.asked, g.given_back, b1.full_at, b2.full_at) == (
        ["bulkhead", "breaker"],
        [],
        3.5,
        6.0,
    )


def test_an_admitted_probe_carries_the_breakers_state_change() -> None:
    """The breaker turning half-open to admit the request's probe is in the admission."""
    g = _Gates(breaker=(4, 1))
    g.transition = Transition(
        CircuitState.OPEN, CircuitState.HALF_OPEN, "reset_timeout_elapsed", 3.0
    )
    answer = _admit.decide([half()], 3.0, [1], g.take_slot, g.give_back, g.admit_breaker)
    assert (answer.refused_by, answer.ticket, answer.transition) == (None, (4, 1), g.transition)


def test_a_limit_refusal_asks_no_other_gate_and_answers_the_longest_wait() -> None:
    """Waits of 0.5 s and 1 s: refused by "limit" for 1 s, no slot taken, nothing charged."""
    b1, b2 = half(), thirds(4.0)
    b1.full_at = 3.5
    g = _Gates()
    answer = _admit.decide([b1, b2], 3.0, [2, 3], g.take_slot, g.give_back, g.admit_breaker)
    limits = (Reservation(0.5, 3.5, 1, 0.5), Reservation(1.0, 4.0, 2, 1.0))
    assert answer == Admission("limit", 1.0, limits)
    assert (g.asked, b1.full_at, b2.full_at) == ([], 3.5, 4.0)


def test_a_full_bulkhead_refuses_before_the_breaker_and_charges_nothing() -> None:
    """No slot: refused by "bulkhead" with its polling pause; the breaker is not asked."""
    b = half()
    g = _Gates(slot=False)
    answer = _admit.decide([b], 3.0, [1], g.take_slot, g.give_back, g.admit_breaker)
    assert answer == Admission("bulkhead", 0.05, (Reservation(0.0, -math.inf, 2, 0.0),))
    assert (g.asked, b.full_at) == (["bulkhead"], -math.inf)


def test_a_breaker_refusal_gives_the_slot_back_and_charges_nothing() -> None:
    """The breaker's 4 s wait is the answer; the slot taken for it is given back at once."""
    b = half()
    g = _Gates(breaker=4.0)
    g.transition = Transition(CircuitState.HALF_OPEN, CircuitState.OPEN, "probe failed", 3.0)
    answer = _admit.decide([b], 3.0, [1], g.take_slot, g.give_back, g.admit_breaker)
    limits = (Reservation(0.0, -math.inf, 2, 0.0),)
    assert answer == Admission("breaker", 4.0, limits, None, None, g.transition)
    assert (g.given_back, b.full_at) == ([g.hold], -math.inf)


def test_a_breaker_refusal_without_a_bulkhead_gives_nothing_back() -> None:
    """With no bulkhead gate there is no slot to give back."""
    g = _Gates(breaker=4.0)
    answer = _admit.decide([half()], 3.0, [1], None, g.give_back, g.admit_breaker)
    assert (answer.refused_by, g.given_back) == ("breaker", [])


def test_limits_alone_admit_without_a_slot_or_ticket() -> None:
    """With only limits, an admitted request holds nothing and carries no ticket."""
    b = half()
    answer = _admit.decide([b], 3.0, [2], None, _Gates().give_back, None)
    assert answer == Admission(None, 0.0, (Reservation(0.0, 4.0, 0, 1.0),))
    assert b.full_at == 4.0


def test_a_table_refusal_answers_the_longest_wait() -> None:
    """refused_by_table refuses by "limit" for the longest of the waits."""
    waits = (Reservation(0.5, 1.0, 0, 1.0), Reservation(2.0, 3.0, 0, 3.0))
    assert _admit.refused_by_table(waits) == Admission("limit", 2.0, waits)


# -- _admit.check_costs -----------------------------------------------------------------------


def gates(limits: int) -> Gates:
    return Gates(limits=tuple(LimiterSpec(f"l{i}", 1.0, 1.0) for i in range(limits)))


def test_no_costs_means_one_token_per_limit() -> None:
    """costs=None charges each of three limits one token."""
    assert _admit.check_costs(gates(3), None) == (1, 1, 1)


def test_costs_are_kept_as_given() -> None:
    """Whole costs of 1 and more pass through unchanged, as a tuple."""
    assert _admit.check_costs(gates(2), [1, 5]) == (1, 5)


@pytest.mark.parametrize(
    ("costs", "message"),
    [
        ([1], r"^costs must have one entry per limit \(2\), got \(1,\)$"),
        ([1, 2, 3], r"^costs must have one entry per limit \(2\), got \(1, 2, 3\)$"),
        ([1, 0], r"^costs must be whole numbers >= 1, got \(1, 0\)$"),
        ([True, 1], r"^costs must be whole numbers >= 1, got \(True, 1\)$"),
        ([1, 1.0], r"^costs must be whole numbers >= 1, got \(1, 1\.0\)$"),
    ],
)
def test_bad_costs_are_refused_with_their_values(costs: list[object], message: str) -> None:
    """A wrong number of costs, a cost below 1, a bool or a float is a ValueError naming them."""
    with pytest.raises(ValueError, match=message):
        _admit.check_costs(gates(2), costs)  # type: ignore[arg-type]
