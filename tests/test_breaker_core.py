"""The breaker's pure core: exact transitions for exact event sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall._core.breaker import (
    FAILURE,
    NEUTRAL,
    SUCCESS,
    BreakerConfig,
    BreakerState,
    CircuitState,
    Ticket,
    admit,
    force,
    peek_state,
    record,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def config(**overrides: object) -> BreakerConfig:
    settings_ = {
        "max_failures": 3,
        "reset_timeout": 10.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
        "stale_attempt_timeout": 10.0,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "window_size": 10,
        "minimum_calls": 10,
    }
    settings_.update(overrides)
    return BreakerConfig(**settings_)  # type: ignore[arg-type]


def ticket(s: BreakerState, cfg: BreakerConfig, now: float) -> Ticket:
    decision, _ = admit(s, cfg, now)
    assert isinstance(decision, tuple), f"expected admission, got retry_after={decision}"
    return decision


def trip(s: BreakerState, cfg: BreakerConfig, now: float) -> None:
    for _ in range(cfg.max_failures):
        record(s, cfg, now, ticket(s, cfg, now), FAILURE)
    assert s.state is OPEN


def test_consecutive_failures_trip_exactly_at_max_failures() -> None:
    """Two failures leave the breaker closed; the third opens it."""
    s, cfg = BreakerState(), config()
    assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE) is None
    assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE) is None
    transition = record(s, cfg, 1.5, ticket(s, cfg, 1.5), FAILURE)
    assert transition is not None
    assert (transition.old, transition.new, transition.reason, transition.at) == (
        CLOSED,
        OPEN,
        "tripped",
        1.5,
    )


def test_a_success_resets_the_consecutive_count() -> None:
    """Failures separated by a success never reach the threshold."""
    s, cfg = BreakerState(), config()
    for outcome in [FAILURE, FAILURE, SUCCESS, FAILURE, FAILURE, SUCCESS, FAILURE, FAILURE]:
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), outcome)
    assert (s.state, s.failure_count) == (CLOSED, 2)


def test_neutral_outcomes_touch_nothing_but_the_neutral_counter() -> None:
    """Neutral outcomes neither count as failures nor reset the count."""
    s, cfg = BreakerState(), config()
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), NEUTRAL)
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    assert (s.failure_count, s.neutral_calls, s.failed_calls) == (2, 1, 2)


def test_open_rejects_with_the_exact_remaining_time() -> None:
    """While open, admission returns the seconds left of the reset timeout."""
    s, cfg = BreakerState(), config()
    trip(s, cfg, 100.0)
    assert admit(s, cfg, 100.0) == (10.0, None)
    assert admit(s, cfg, 107.5) == (2.5, None)
    assert s.rejected_calls == 2


def test_late_failures_of_earlier_calls_do_not_extend_the_open_period() -> None:
    """Failures from calls admitted while closed are ignored once the breaker has opened."""
    s, cfg = BreakerState(), config()
    in_flight = [ticket(s, cfg, 0.0) for _ in range(5)]
    for t in in_flight[:3]:
        record(s, cfg, 0.0, t, FAILURE)
    assert (s.state, s.opened_at) == (OPEN, 0.0)
    for t in in_flight[3:]:
        assert record(s, cfg, 9.0, t, FAILURE) is None
    assert s.opened_at == 0.0
    decision, transition = admit(s, cfg, 10.0)
    assert isinstance(decision, tuple)
    assert transition is not None
    assert transition.new is HALF_OPEN


def test_half_open_admits_exactly_half_open_max_calls_probes() -> None:
    """With three probe slots, the fourth concurrent caller is rejected."""
    s, cfg = BreakerState(), config(half_open_max_calls=3, stale_attempt_timeout=5.0)
    trip(s, cfg, 0.0)
    decisions = [admit(s, cfg, 10.0)[0] for _ in range(4)]
    assert [isinstance(d, tuple) for d in decisions] == [True, True, True, False]
    assert decisions[3] == 5.0


def test_probe_success_closes_and_probe_failure_reopens() -> None:
    """One probe success closes (threshold 1); a probe failure reopens from that instant."""
    s, cfg = BreakerState(), config()
    trip(s, cfg, 0.0)
    probe = ticket(s, cfg, 10.0)
    transition = record(s, cfg, 11.0, probe, FAILURE)
    assert transition is not None
    assert (transition.old, transition.new, s.opened_at) == (HALF_OPEN, OPEN, 11.0)
    probe = ticket(s, cfg, 21.0)
    transition = record(s, cfg, 21.5, probe, SUCCESS)
    assert transition is not None
    assert (transition.new, s.failure_count) == (CLOSED, 0)


def test_success_threshold_needs_that_many_probe_successes() -> None:
    """With success_threshold=2, the first success keeps it half-open and the second closes."""
    s, cfg = BreakerState(), config(half_open_max_calls=2, success_threshold=2)
    trip(s, cfg, 0.0)
    first, second = ticket(s, cfg, 10.0), ticket(s, cfg, 10.0)
    assert record(s, cfg, 10.0, first, SUCCESS) is None
    assert s.state is HALF_OPEN
    transition = record(s, cfg, 10.0, second, SUCCESS)
    assert transition is not None
    assert transition.new is CLOSED


def test_a_neutral_probe_frees_its_slot() -> None:
    """A cancelled probe gives its slot back at once."""
    s, cfg = BreakerState(), config()
    trip(s, cfg, 0.0)
    probe = ticket(s, cfg, 10.0)
    assert isinstance(admit(s, cfg, 10.0)[0], float)
    record(s, cfg, 10.0, probe, NEUTRAL)
    assert isinstance(admit(s, cfg, 10.0)[0], tuple)


def test_a_lost_probe_loses_its_slot_after_the_lease() -> None:
    """A probe that never reports frees its slot after stale_attempt_timeout, and only its own."""
    s, cfg = BreakerState(), config(half_open_max_calls=2, stale_attempt_timeout=4.0)
    trip(s, cfg, 0.0)
    lost = ticket(s, cfg, 10.0)
    ticket(s, cfg, 12.0)
    assert admit(s, cfg, 13.9)[0] == pytest.approx(0.1)
    fresh = ticket(s, cfg, 14.0)
    assert fresh[1] == 3
    assert isinstance(admit(s, cfg, 14.0)[0], float)
    assert record(s, cfg, 14.0, lost, FAILURE) is None
    assert s.state is HALF_OPEN


def test_late_closed_era_failure_cannot_reopen_a_half_open_breaker() -> None:
    """A call admitted while closed that fails during half-open is ignored."""
    s, cfg = BreakerState(), config()
    straggler = ticket(s, cfg, 0.0)
    trip(s, cfg, 0.0)
    ticket(s, cfg, 10.0)
    assert record(s, cfg, 10.5, straggler, FAILURE) is None
    assert s.state is HALF_OPEN


def test_backwards_time_restarts_the_open_period_instead_of_wedging() -> None:
    """A wall clock stepping back an hour leaves the breaker open for one reset timeout."""
    s, cfg = BreakerState(), config()
    trip(s, cfg, 5000.0)
    assert admit(s, cfg, 1400.0) == (10.0, None)
    assert isinstance(admit(s, cfg, 1410.0)[0], tuple)


def test_failure_rate_trips_after_minimum_calls() -> None:
    """At a 50% threshold over 4 calls, alternating outcomes trip on the fourth call."""
    s, cfg = (
        BreakerState(),
        config(max_failures=100, failure_rate_threshold=0.5, window_size=4, minimum_calls=4),
    )
    outcomes = [FAILURE, SUCCESS, FAILURE]
    for outcome in outcomes:
        assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), outcome) is None
    transition = record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS)
    assert transition is not None
    assert transition.new is OPEN


def test_the_window_slides() -> None:
    """Old outcomes fall out of the window, so a recovered rate stays closed."""
    s, cfg = (
        BreakerState(),
        config(max_failures=100, failure_rate_threshold=0.75, window_size=4, minimum_calls=4),
    )
    for outcome in [FAILURE, FAILURE, SUCCESS, SUCCESS, SUCCESS, FAILURE, FAILURE]:
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), outcome)
    assert (s.state, s.window_failures, len(s.window)) == (CLOSED, 2, 4)


def test_slow_calls_trip_on_their_rate() -> None:
    """Two successful but slow calls out of two trip a 100% slow-call threshold."""
    s, cfg = (
        BreakerState(),
        config(
            slow_call_duration=1.0, slow_call_rate_threshold=1.0, window_size=2, minimum_calls=2
        ),
    )
    assert record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS, duration=1.5) is None
    transition = record(s, cfg, 0.0, ticket(s, cfg, 0.0), SUCCESS, duration=2.0)
    assert transition is not None
    assert transition.new is OPEN


def test_force_open_isolates_until_reset() -> None:
    """A forced-open breaker never goes half-open by itself; reset closes it."""
    s, cfg = BreakerState(), config()
    transition = force(s, "open", 0.0)
    assert transition is not None
    assert (transition.old, transition.new) == (CLOSED, OPEN)
    assert admit(s, cfg, 1000.0) == (10.0, None)
    assert peek_state(s, cfg, 1000.0) is OPEN
    transition = force(s, "reset", 1000.0)
    assert transition is not None
    assert transition.new is CLOSED


def test_force_closed_never_trips_until_reset() -> None:
    """A forced-closed breaker counts failures but stays closed."""
    s, cfg = BreakerState(), config()
    assert force(s, "closed", 0.0) is None
    for _ in range(10):
        record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    assert (s.state, s.failure_count) == (CLOSED, 10)
    force(s, "reset", 0.0)
    trip(s, cfg, 0.0)


def test_resetting_a_closed_breaker_is_not_a_state_change() -> None:
    """reset() on a closed breaker clears the count without counting a transition."""
    s, cfg = BreakerState(), config()
    record(s, cfg, 0.0, ticket(s, cfg, 0.0), FAILURE)
    assert force(s, "reset", 0.0) is None
    assert (s.failure_count, s.state_changes) == (0, 0)


def test_peek_reports_half_open_without_moving() -> None:
    """Reading the state after the timeout says HALF_OPEN but changes nothing."""
    s, cfg = BreakerState(), config()
    trip(s, cfg, 0.0)
    assert peek_state(s, cfg, 10.0) is HALF_OPEN
    assert s.state is OPEN


def test_unknown_manual_action_is_an_error() -> None:
    """force() names the bad action."""
    with pytest.raises(ValueError, match="'sideways'"):
        force(BreakerState(), "sideways", 0.0)


# -- a reference model, written differently, that the core must agree with --------------


class Model:
    """A deliberately naive breaker: lists and explicit eras, no cached tickets."""

    def __init__(self, cfg: BreakerConfig) -> None:
        self.cfg = cfg
        self.state = "closed"
        self.era = 0
        self.fails = 0
        self.opened = 0.0
        self.probes: dict[int, float] = {}
        self.wins = 0
        self.next_id = 0

    def admit(self, now: float) -> tuple[int, int] | None:
        if self.state == "open":
            self.opened = min(self.opened, now)
            if now < self.opened + self.cfg.reset_timeout:
                return None
            self.state, self.era, self.probes, self.wins = "half", self.era + 1, {}, 0
        if self.state == "closed":
            return (self.era, -1)
        live = {k: v for k, v in self.probes.items() if now - v < self.cfg.stale_attempt_timeout}
        if len(self.probes) >= self.cfg.half_open_max_calls:
            self.probes = live
        if len(self.probes) >= self.cfg.half_open_max_calls:
            return None
        self.next_id += 1
        self.probes[self.next_id] = now
        return (self.era, self.next_id)

    def report(self, now: float, t: tuple[int, int], outcome: int) -> None:
        era, probe = t
        if era != self.era:
            return
        if probe != -1:
            if self.probes.pop(probe, None) is None:
                return
            if outcome == FAILURE:
                self.state, self.era, self.opened = "open", self.era + 1, now
            elif outcome == SUCCESS:
                self.wins += 1
                if self.wins >= self.cfg.success_threshold:
                    self.state, self.era, self.fails = "closed", self.era + 1, 0
            return
        if self.state != "closed" or outcome == NEUTRAL:
            return
        self.fails = 0 if outcome == SUCCESS else self.fails + 1
        if self.fails >= self.cfg.max_failures:
            self.state, self.era, self.opened = "open", self.era + 1, now


events = st.lists(
    st.tuples(
        st.sampled_from(["admit", "report"]),
        st.floats(min_value=0.0, max_value=6.0),
        st.sampled_from([SUCCESS, FAILURE, NEUTRAL]),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    events,
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=3),
)
def test_core_agrees_with_the_reference_model(
    steps: list[tuple[str, float, int, int]], max_failures: int, probes: int, threshold: int
) -> None:
    """For any sequence of admissions and reports, core and model admit and settle alike."""
    cfg = config(
        max_failures=max_failures,
        half_open_max_calls=probes,
        success_threshold=threshold,
        reset_timeout=5.0,
        stale_attempt_timeout=7.0,
    )
    s, model = BreakerState(), Model(cfg)
    now = 0.0
    outstanding: list[tuple[Ticket, tuple[int, int]]] = []
    names = {"closed": CLOSED, "open": OPEN, "half": HALF_OPEN}
    for kind, step, outcome, pick in steps:
        now += step
        if kind == "admit":
            decision, _ = admit(s, cfg, now)
            expected = model.admit(now)
            assert isinstance(decision, tuple) == (expected is not None)
            if isinstance(decision, tuple) and expected is not None:
                outstanding.append((decision, expected))
        elif outstanding:
            real, modelled = outstanding.pop(pick % len(outstanding))
            record(s, cfg, now, real, outcome)
            model.report(now, modelled, outcome)
        assert s.state is names[model.state]
