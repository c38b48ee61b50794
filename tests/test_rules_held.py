"""The stores' rules for answers that may be lost: refunds, held reservations, probes, leases.

The Redis store runs these rules (mirrored by its Lua scripts, compared with them by the
differential tests, which need a ``redis-server``). These tests pin the Python rules alone,
exactly, so the mutation run (``tox -e mutation``, no Redis) can check them too. Buckets use
interval 0.5 s and burst 2 (span 1 s), so that tokens and seconds differ.
"""

from __future__ import annotations

import math

from seawall._core.breaker import FAILURE, BreakerConfig, BreakerState, Ticket, admit, record
from seawall._core.limiter import Bucket
from seawall.stores import _rules
from seawall.stores._base import Reservation

CANCELLED = _rules.CANCELLED


def bucket() -> Bucket:
    return Bucket(interval=0.5, burst=2.0)


# -- bucket_refund ------------------------------------------------------------------------------


def test_a_refund_gives_tokens_back_past_later_reservations() -> None:
    """Refunding 1 token moves full_at back 0.5 s even though a reservation came after it."""
    b = bucket()
    b.reserve(0.0, 2, 0.0)
    b.reserve(0.0, 1, math.inf)
    assert b.full_at == 1.5
    _rules.bucket_refund(b, 0.0, 1)
    assert b.full_at == 1.0


def test_a_refund_never_fills_past_full() -> None:
    """Refunding more than was taken leaves the bucket exactly full at now."""
    b = bucket()
    b.reserve(2.0, 2, 0.0)
    _rules.bucket_refund(b, 2.0, 5)
    assert b.full_at == 2.0


def test_a_refund_never_goes_below_a_block_floor() -> None:
    """During a block until t=10 a refund stops at the floor 10 + (burst - 1) * 0.5 = 10.5."""
    b = bucket()
    b.block(0.0, 10.0)
    b.reserve(0.0, 1, math.inf)
    assert b.full_at == 11.0
    _rules.bucket_refund(b, 0.0, 3)
    assert b.full_at == 10.5


def test_a_refund_leaves_a_full_bucket_alone() -> None:
    """A bucket already full at now is not touched by a refund."""
    b = bucket()
    b.reserve(0.0, 1, 0.0)
    _rules.bucket_refund(b, 3.0, 1)
    assert b.full_at == 0.5


# -- bucket_reserve_held ------------------------------------------------------------------------


def test_a_committed_held_reservation_leaves_its_receipt() -> None:
    """Holder h1 takes both tokens: granted now, and its receipt records 2 tokens."""
    b = bucket()
    receipts: dict[str, float] = {}
    answer = _rules.bucket_reserve_held(b, receipts, 0.0, 2, 0.0, "h1")
    assert answer == Reservation(0.0, 1.0, 0, 1.0)
    assert receipts == {"h1": 2.0}


def test_a_refused_held_reservation_leaves_no_receipt() -> None:
    """Holder h2 refused (wait 0.5 over max_wait 0) leaves no receipt and takes nothing."""
    b = bucket()
    receipts: dict[str, float] = {}
    _rules.bucket_reserve_held(b, receipts, 0.0, 2, 0.0, "h1")
    answer = _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h2")
    assert answer == Reservation(0.5, 1.0, 0, 1.0)
    assert receipts == {"h1": 2.0}


def test_a_lost_holder_gets_its_tokens_back_and_a_cancelled_receipt() -> None:
    """h2 reporting h1 lost: h1's 2 tokens come back first, so h2 is granted with 1 left."""
    b = bucket()
    receipts: dict[str, float] = {}
    _rules.bucket_reserve_held(b, receipts, 0.0, 2, 0.0, "h1")
    answer = _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h2", lost=("h1",))
    assert answer == Reservation(0.0, 0.5, 1, 0.5)
    assert receipts == {"h1": CANCELLED, "h2": 1.0}


def test_a_lost_one_token_reservation_is_refunded() -> None:
    """A lost holder whose receipt is a single token gets that token back too."""
    b = bucket()
    receipts: dict[str, float] = {}
    _rules.bucket_reserve_held(b, receipts, 0.0, 2, 0.0, "h0")
    _rules.bucket_reserve_held(b, receipts, 0.0, 1, math.inf, "h1")
    assert b.full_at == 1.5
    _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h2", lost=("h1",))
    assert (b.full_at, receipts["h1"]) == (1.0, CANCELLED)


def test_a_lost_holder_is_refunded_once() -> None:
    """Reporting h1 lost a second time gives nothing back again."""
    b = bucket()
    receipts: dict[str, float] = {}
    _rules.bucket_reserve_held(b, receipts, 0.0, 2, 0.0, "h1")
    _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h2", lost=("h1",))
    answer = _rules.bucket_reserve_held(b, receipts, 0.0, 1, math.inf, "h3", lost=("h1",))
    assert (answer.ticket, b.full_at) == (1.0, 1.0)


def test_a_lost_holder_without_a_receipt_is_cancelled_and_refunds_nothing() -> None:
    """A holder lost before it reserved gets a cancelled receipt; the bucket is untouched."""
    b = bucket()
    receipts: dict[str, float] = {}
    _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h1")
    _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h2", lost=("gone",))
    assert (receipts, b.full_at) == ({"h1": 1.0, "gone": CANCELLED, "h2": 1.0}, 1.0)


def test_a_reservation_arriving_after_its_cancellation_is_undone() -> None:
    """A cancelled holder's late reservation is refused with wait inf and takes nothing."""
    b, receipts = bucket(), {"h1": CANCELLED}
    answer = _rules.bucket_reserve_held(b, receipts, 0.0, 1, 0.0, "h1")
    assert answer == Reservation(math.inf, -math.inf, 2, 0.0)
    assert (receipts, b.full_at) == ({"h1": CANCELLED}, -math.inf)


def test_a_held_reservation_rebases_a_clock_that_went_back() -> None:
    """With the clock 4 s back, full_at 11 becomes 7 before the reservation (ticket 7.5)."""
    b = bucket()
    receipts: dict[str, float] = {}
    b.last_now, b.full_at = 10.0, 11.0
    answer = _rules.bucket_reserve_held(b, receipts, 6.0, 1, math.inf, "h1")
    assert (answer.wait, answer.ticket) == (0.5, 7.5)


# -- lease_acquire ------------------------------------------------------------------------------


def test_a_free_slot_is_leased_until_now_plus_lease() -> None:
    """With a slot free, a holder gets it at once, until now + lease."""
    holders: dict[str, float] = {}
    assert _rules.lease_acquire(holders, 1.0, "a", 1, 5.0) == 0.0
    assert holders == {"a": 6.0}


def test_a_full_bulkhead_answers_the_wait_for_the_first_lease_to_end() -> None:
    """With every slot leased, the wait is until the earliest lease ends."""
    holders = {"a": 6.0, "b": 4.0}
    assert _rules.lease_acquire(holders, 1.0, "c", 2, 5.0) == 3.0
    assert holders == {"a": 6.0, "b": 4.0}


def test_a_lease_that_ended_frees_its_slot() -> None:
    """A lease ending exactly at now is dropped and its slot goes to the newcomer."""
    holders = {"a": 6.0}
    assert _rules.lease_acquire(holders, 6.0, "b", 1, 5.0) == 0.0
    assert holders == {"b": 11.0}


def test_a_holder_asking_again_keeps_its_slot() -> None:
    """A holder that already holds a slot of a full bulkhead gets it again, extended."""
    holders = {"a": 6.0}
    assert _rules.lease_acquire(holders, 2.0, "a", 1, 5.0) == 0.0
    assert holders == {"a": 7.0}


def test_a_cancelled_acquisition_frees_its_slot_and_is_refused_later() -> None:
    """Cancelling a frees its slot and remembers it until now + lease; a late a is refused."""
    holders = {"a": 6.0}
    tombs: dict[str, float] = {}
    assert _rules.lease_acquire(holders, 1.0, "b", 1, 5.0, cancel=("a",), cancelled=tombs) == 0.0
    assert (holders, tombs) == ({"b": 6.0}, {"a": 6.0})
    assert _rules.lease_acquire({}, 2.0, "a", 1, 5.0, cancelled=tombs) == 5.0


def test_cancelling_a_holder_that_holds_nothing_is_harmless() -> None:
    """A cancelled id with no slot (its acquisition never arrived) is only remembered."""
    holders = {"a": 6.0}
    tombs: dict[str, float] = {}
    assert _rules.lease_acquire(holders, 1.0, "", 1, 5.0, cancel=("x",), cancelled=tombs) == 0.0
    assert (holders, tombs) == ({"a": 6.0}, {"x": 6.0})


def test_a_cancellation_is_forgotten_when_its_lease_would_have_ended() -> None:
    """At now + lease the tombstone goes, and the holder id may take a slot again."""
    holders: dict[str, float] = {}
    tombs = {"a": 6.0}
    assert _rules.lease_acquire(holders, 6.0, "a", 1, 5.0, cancelled=tombs) == 0.0
    assert (holders, tombs) == ({"a": 11.0}, {})


def test_renewals_keep_their_slots_even_past_the_limit() -> None:
    """A renewed holder whose lease the store lost is counted again, even over max_concurrent."""
    holders = {"a": 6.0}
    assert _rules.lease_acquire(holders, 2.0, "", 1, 5.0, renew=("a", "b")) == 0.0
    assert holders == {"a": 7.0, "b": 7.0}


def test_a_cancelled_holder_does_not_come_back_by_renewing() -> None:
    """A renewal of a cancelled holder is ignored, and a renewal alone takes no slot."""
    holders: dict[str, float] = {}
    tombs = {"a": 6.0}
    assert _rules.lease_acquire(holders, 2.0, "", 1, 5.0, renew=("a",), cancelled=tombs) == 0.0
    assert holders == {}


# -- breaker_admit_held -------------------------------------------------------------------------


def half_open() -> tuple[BreakerState, BreakerConfig]:
    """A breaker opened by one failure at t=1, so half-open from t=6 (one probe at a time)."""
    cfg = BreakerConfig(
        max_failures=1,
        reset_timeout=5.0,
        half_open_max_calls=1,
        success_threshold=1,
        stale_attempt_timeout=10.0,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=10,
        minimum_calls=10,
    )
    s = BreakerState()
    first, _ = admit(s, cfg, 1.0)
    assert isinstance(first, tuple)
    record(s, cfg, 1.0, first, FAILURE)
    return s, cfg


def test_a_closed_admission_leaves_no_receipt() -> None:
    """A closed breaker admits without a probe, and no receipt is kept."""
    _, cfg = half_open()
    s2 = BreakerState()
    receipts: dict[str, Ticket | float] = {}
    answer, _ = _rules.breaker_admit_held(s2, cfg, 0.0, receipts, "h1")
    assert (answer, receipts) == ((0, 0), {})


def test_a_probe_leaves_its_receipt() -> None:
    """A half-open admission is a probe, and its receipt is that probe's ticket."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {}
    answer, _ = _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h1")
    assert answer == (s.generation, 1)
    assert (receipts, list(s.probes)) == ({"h1": answer}, [1])


def test_a_lost_probe_is_given_back_before_the_next_admission() -> None:
    """h2 reporting h1 lost: h1's probe is dropped, so h2 becomes the probe."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {}
    _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h1")
    answer, _ = _rules.breaker_admit_held(s, cfg, 7.0, receipts, "h2", lost=("h1",))
    assert answer == (s.generation, 2)
    assert (receipts, s.probes) == ({"h1": CANCELLED, "h2": answer}, {2: 7.0})


def test_a_lost_probe_of_another_generation_takes_no_probe_away() -> None:
    """A lost receipt from another generation leaves the current probe in place."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {}
    _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h1")
    receipts["old"] = (s.generation - 1, 1)
    answer, _ = _rules.breaker_admit_held(s, cfg, 7.0, receipts, "h2", lost=("old",))
    assert answer == 9.0  # the probe's lease (10 s from t=6) ends in 9 s
    assert (s.probes, receipts["old"]) == ({1: 6.0}, CANCELLED)


def test_a_probe_arriving_after_its_cancellation_is_undone() -> None:
    """A cancelled holder admitted later is answered inf, and its probe is taken back."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {"h1": CANCELLED}
    answer, _ = _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h1")
    assert answer == math.inf
    assert (s.probes, s.next_probe, receipts) == ({}, 1, {"h1": CANCELLED})


def test_an_undone_probe_gives_its_number_back() -> None:
    """Undoing a late probe steps next_probe back by one: probe 2 undone leaves next_probe 2."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {"h2": CANCELLED}
    _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h1")
    answer, _ = _rules.breaker_admit_held(s, cfg, 7.0, receipts, "h2", lost=("h1",))
    assert (answer, s.probes, s.next_probe) == (math.inf, {}, 2)


def test_a_lost_probe_that_already_ended_is_only_cancelled() -> None:
    """A lost receipt whose probe is no longer in flight removes nothing and raises nothing."""
    s, cfg = half_open()
    receipts: dict[str, Ticket | float] = {"h1": (s.generation, 5)}
    answer, _ = _rules.breaker_admit_held(s, cfg, 6.0, receipts, "h2", lost=("h1",))
    assert answer == (s.generation, 1)
    assert receipts == {"h1": CANCELLED, "h2": answer}
