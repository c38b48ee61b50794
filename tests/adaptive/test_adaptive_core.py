"""The adaptive-limit rules: each update rule's exact next limit for given samples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall import AIMDLimit, Gradient2Limit, VegasLimit
from seawall._core.adaptive import log10_step
from seawall._core.adaptive_window import SampleWindow, ceilings

# -- Gradient2 ---------------------------------------------------------------------------------


def _warm(rule: Gradient2Limit, rtt: float) -> None:
    """Ten app-limited samples of ``rtt``: the long average is exactly ``rtt``, limit untouched."""
    for _ in range(Gradient2Limit.WARMUP):
        rule.update(rtt, 0, False)


def test_gradient2_warmup_is_a_plain_mean() -> None:
    """The first samples' long average is their plain mean: 0.25 then 0.75 give 0.5."""
    rule = Gradient2Limit()
    rule.update(0.25, 0, False)
    rule.update(0.75, 0, False)
    assert rule.long_rtt == 0.5


def test_gradient2_after_warmup_is_an_exponential_average() -> None:
    """After 10 samples the long average moves by 2 / (long_window + 1) of the gap."""
    rule = Gradient2Limit(long_window=3)
    _warm(rule, 1.0)
    rule.update(3.0, 0, False)
    assert rule.long_rtt == 1.0 * 0.5 + 3.0 * 0.5


def test_gradient2_app_limited_sample_keeps_the_limit() -> None:
    """Fewer than half the limit in flight (9 of 20): the limit stays 20.0."""
    rule = Gradient2Limit()
    assert rule.update(0.1, 9, False) == 20.0


def test_gradient2_steady_latency_grows_by_smoothed_queue_size() -> None:
    """rtt equal to the baseline, half the limit in flight: 20 * 0.6 + (20 + 4) * 0.4 = 21.6."""
    rule = Gradient2Limit()
    assert rule.update(0.5, 10, False) == pytest.approx(21.6, abs=1e-12)


def test_gradient2_latency_within_tolerance_still_grows() -> None:
    """rtt 1.2x the baseline: gradient 1.0, so 21.6 again (tolerance 1.2)."""
    rule = Gradient2Limit()
    _warm(rule, 1.0)
    factor = 2.0 / 601
    long_rtt = 1.0 * (1 - factor) + 1.2 * factor
    gradient = min(1.0, 1.2 * long_rtt / 1.2)
    assert gradient == 1.0
    assert rule.update(1.2, 20, False) == pytest.approx(21.6, abs=1e-12)


def test_gradient2_latency_rise_shrinks_by_the_gradient() -> None:
    """rtt 2x the baseline: gradient 1.2 * long / 2.0 (~0.6), candidate limit * g + 4."""
    rule = Gradient2Limit()
    _warm(rule, 1.0)
    factor = 2.0 / 601
    long_rtt = 1.0 * (1 - factor) + 2.0 * factor
    gradient = 1.2 * long_rtt / 2.0
    expected = 20 * 0.6 + (20 * gradient + 4) * 0.4
    assert rule.update(2.0, 20, False) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(18.416, abs=1e-3)


def test_gradient2_gradient_is_floored_at_one_half() -> None:
    """rtt 4x the baseline (gradient ~0.3) is cut at 0.5: 20 * 0.6 + (10 + 4) * 0.4 = 17.6."""
    rule = Gradient2Limit()
    _warm(rule, 1.0)
    assert rule.update(4.0, 20, False) == pytest.approx(17.6, abs=1e-12)


def test_gradient2_drop_takes_the_floor_gradient_and_is_not_averaged() -> None:
    """A drop gives 17.6 from 20 whatever its rtt, and leaves the long average at 1.0."""
    rule = Gradient2Limit()
    _warm(rule, 1.0)
    assert rule.update(0.001, 20, True) == pytest.approx(17.6, abs=1e-12)
    assert rule.long_rtt == 1.0


def test_gradient2_baseline_decays_when_load_goes_away() -> None:
    """A long average over twice the latest rtt is cut by 5% on top of the average step."""
    rule = Gradient2Limit()
    _warm(rule, 1.0)
    factor = 2.0 / 601
    rule.update(0.4, 0, False)
    assert rule.long_rtt == pytest.approx((1.0 * (1 - factor) + 0.4 * factor) * 0.95, abs=1e-15)


def test_gradient2_limit_is_held_within_its_bounds() -> None:
    """Growth stops at max_limit (200.0) and a drop stops at min_limit (5.0)."""
    top = Gradient2Limit(initial_limit=200, max_limit=200)
    assert top.update(0.5, 200, False) == 200.0
    bottom = Gradient2Limit(initial_limit=5, min_limit=5, queue_size=0)
    assert bottom.update(0.5, 5, True) == 5.0


# -- Vegas -------------------------------------------------------------------------------------


def test_vegas_log10_step() -> None:
    """The step is 1 below 100, 2 from 100, 3 from 1000."""
    assert [log10_step(n) for n in (1, 9, 10, 99, 100, 999, 1000)] == [1, 1, 1, 1, 2, 2, 3]


def test_vegas_first_and_lower_samples_set_the_no_load_latency() -> None:
    """The first sample and any faster one become rtt_noload; the limit stays 20.0."""
    rule = VegasLimit()
    assert rule.update(0.2, 20, False) == 20.0
    assert rule.update(0.1, 20, False) == 20.0
    assert rule.rtt_noload == 0.1


@pytest.mark.parametrize(
    ("rtt", "expected"),
    [
        (0.1, 26.0),  # queue ceil(20 * 0) = 0 <= 1: + 6
        (0.105, 26.0),  # queue ceil(20 * 0.0476) = 1 <= 1: + 6
        (0.11, 21.0),  # queue ceil(20 * 0.0909) = 2 < 3: + 1
        (0.125, 20.0),  # queue ceil(20 * 0.2) = 4, within [3, 6]: unchanged
        (0.2, 19.0),  # queue ceil(20 * 0.5) = 10 > 6: - 1
    ],
)
def test_vegas_queue_estimate_moves_the_limit(rtt: float, expected: float) -> None:
    """With rtt_noload 0.1 and the limit 20, the queue estimate picks +6, +1, 0 or -1."""
    rule = VegasLimit()
    rule.update(0.1, 20, False)
    assert rule.update(rtt, 10, False) == expected


def test_vegas_does_not_grow_when_app_limited() -> None:
    """9 in flight of 20 (under half): no queue, but the limit stays 20.0."""
    rule = VegasLimit()
    rule.update(0.1, 20, False)
    assert rule.update(0.1, 9, False) == 20.0


def test_vegas_drop_shrinks_by_one_step() -> None:
    """A drop takes the step off (20 -> 19; 150 -> 148) and never becomes rtt_noload."""
    rule = VegasLimit()
    rule.update(0.1, 20, False)
    assert rule.update(0.01, 20, True) == 19.0
    assert rule.rtt_noload == 0.1
    big = VegasLimit(initial_limit=150)
    big.update(0.1, 150, False)
    assert big.update(0.2, 150, True) == 148.0


def test_vegas_reprobes_the_no_load_latency() -> None:
    """Every probe_multiplier x limit samples, the sample becomes rtt_noload, limit unchanged."""
    rule = VegasLimit(initial_limit=2, probe_multiplier=1)
    rule.update(0.1, 2, False)
    assert rule.update(0.5, 2, False) == 2.0
    assert rule.rtt_noload == 0.5


def test_vegas_limit_is_held_within_its_bounds() -> None:
    """+6 from 198 stops at 200.0; a drop from 1 stays at 1.0."""
    top = VegasLimit(initial_limit=198)
    top.update(0.1, 198, False)
    assert top.update(0.1, 198, False) == 200.0
    bottom = VegasLimit(initial_limit=1)
    bottom.update(0.1, 1, False)
    assert bottom.update(0.1, 1, True) == 1.0


# -- AIMD --------------------------------------------------------------------------------------


def test_aimd_adds_one_when_half_is_in_flight() -> None:
    """10 of 20 in flight: 21.0; then 10 of 21 (under half): 21.0."""
    rule = AIMDLimit()
    assert rule.update(0.1, 10, False) == 21.0
    assert rule.update(0.1, 10, False) == 21.0


def test_aimd_drop_multiplies_by_the_backoff_ratio() -> None:
    """A drop: int(20 * 0.9) = 18.0."""
    assert AIMDLimit().update(0.1, 20, True) == 18.0


def test_aimd_sample_slower_than_timeout_is_a_drop() -> None:
    """rtt 5.001 > timeout 5.0 counts as a drop (18.0); exactly 5.0 does not (21.0)."""
    assert AIMDLimit().update(5.001, 20, False) == 18.0
    assert AIMDLimit().update(5.0, 20, False) == 21.0


def test_aimd_limit_is_held_within_its_bounds() -> None:
    """A drop from 1 stays 1.0 (int(0.9) = 0 is raised to min); growth stops at 200.0."""
    assert AIMDLimit(initial_limit=1).update(0.1, 1, True) == 1.0
    assert AIMDLimit(initial_limit=200).update(0.1, 200, False) == 200.0


# -- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Gradient2Limit(initial_limit=300), "initial_limit must be between"),
        (lambda: Gradient2Limit(min_limit=0), "min_limit must be >= 1, got 0"),
        (lambda: Gradient2Limit(min_limit=50, max_limit=10), "min_limit must be <= max_limit"),
        (lambda: Gradient2Limit(smoothing=0), r"smoothing must be in \(0, 1\], got 0"),
        (lambda: Gradient2Limit(tolerance=0.9), r"tolerance must be in \[1, inf\], got 0.9"),
        (lambda: Gradient2Limit(queue_size=-1), "queue_size must be an int >= 0, got -1"),
        (lambda: VegasLimit(probe_multiplier=0), "probe_multiplier must be an int >= 1, got 0"),
        (lambda: AIMDLimit(backoff_ratio=1.0), r"backoff_ratio must be in \[0.5, 1\), got 1.0"),
        (lambda: AIMDLimit(backoff_ratio=0.4), r"backoff_ratio must be in \[0.5, 1\], got 0.4"),
        (lambda: AIMDLimit(timeout=0), r"timeout must be in \(0, inf\], got 0"),
        (lambda: SampleWindow(window=-1), r"window must be in \[0, inf\), got -1"),
        (lambda: SampleWindow(window_samples=0), "window_samples must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_name_the_parameter_and_value(make: object, message: str) -> None:
    """Each bad value raises ValueError naming the parameter and the value."""
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_limit_bounds_must_be_ints() -> None:
    """A float initial_limit is a TypeError naming it."""
    with pytest.raises(TypeError, match=r"initial_limit must be an int, got 2.5 \(float\)"):
        Gradient2Limit(initial_limit=2.5)  # type: ignore[arg-type]


# -- the sample window -------------------------------------------------------------------------


def test_window_closes_after_its_time_with_enough_samples() -> None:
    """Three calls over 1.0 s give one sample: mean rtt 0.5, peak in flight 5, no drop."""
    window = SampleWindow(window=1.0, window_samples=2)
    assert window.add(0.25, 3, False, now=0.0) is None
    assert window.add(0.5, 5, False, now=0.5) is None
    assert window.add(0.75, 4, False, now=1.0) == (0.5, 5, False)


def test_window_waits_for_enough_samples() -> None:
    """Past its time with 2 of 3 samples it stays open; the third closes it."""
    window = SampleWindow(window=1.0, window_samples=3)
    assert window.add(0.5, 1, False, now=0.0) is None
    assert window.add(0.5, 1, False, now=2.0) is None
    assert window.add(0.5, 1, False, now=2.1) == (0.5, 1, False)


def test_window_leaves_drops_out_of_the_mean_but_reports_them() -> None:
    """A drop's rtt (9.0) is not averaged; the window reports the drop."""
    window = SampleWindow(window=0.0, window_samples=3)
    window.add(0.25, 1, False, now=0.0)
    window.add(9.0, 2, True, now=0.0)
    assert window.add(0.75, 1, False, now=0.0) == (0.5, 2, True)


def test_window_of_drops_only_reports_their_mean() -> None:
    """Two drops (2.0 and 4.0) and nothing else: rtt 3.0, dropped."""
    window = SampleWindow(window=0.0, window_samples=2)
    window.add(2.0, 1, True, now=0.0)
    assert window.add(4.0, 1, True, now=0.0) == (3.0, 1, True)


def test_next_window_opens_when_the_last_one_closes() -> None:
    """A window closed at 1.0 s starts the next: its first close is at 2.0 s, not before."""
    window = SampleWindow(window=1.0, window_samples=1)
    window.add(0.5, 1, False, now=0.0)
    assert window.add(0.5, 1, False, now=1.0) is not None
    assert window.add(0.5, 1, False, now=1.999) is None
    assert window.add(0.5, 1, False, now=2.0) == (0.5, 1, False)


# -- priorities --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(20, (15, 20, 25)), (3, (2, 3, 4)), (1, (1, 1, 2))],
)
def test_ceilings_by_priority(limit: int, expected: tuple[int, int, int]) -> None:
    """Sheddable floor(0.75 L) (>= 1), default L, critical ceil(1.25 L) (>= L + 1)."""
    assert ceilings(limit, 0.75, 1.25) == expected


def test_critical_ceiling_is_at_least_one_above_the_limit() -> None:
    """critical_share 1.0 still lets one critical call past the limit: (15, 20, 21)."""
    assert ceilings(20, 0.75, 1.0) == (15, 20, 21)


# -- properties --------------------------------------------------------------------------------

_SAMPLES = st.lists(
    st.tuples(
        st.floats(min_value=1e-4, max_value=60.0, allow_nan=False),
        st.integers(min_value=0, max_value=500),
        st.booleans(),
    ),
    max_size=200,
)
_RULES = st.sampled_from(["gradient2", "vegas", "aimd"])


@given(rule=_RULES, low=st.integers(1, 50), span=st.integers(0, 150), samples=_SAMPLES)
def test_every_rule_stays_within_its_bounds(
    rule: str, low: int, span: int, samples: list[tuple[float, int, bool]]
) -> None:
    """Whatever the samples, each rule's limit stays within [min_limit, max_limit]."""
    cls = {"gradient2": Gradient2Limit, "vegas": VegasLimit, "aimd": AIMDLimit}[rule]
    limiter = cls(initial_limit=low, min_limit=low, max_limit=low + span)
    for rtt, in_flight, dropped in samples:
        limit = limiter.update(rtt, in_flight, dropped)
        assert low <= limit <= low + span


@given(limit=st.integers(1, 10_000), shed=st.floats(0.01, 1.0), crit=st.floats(1.0, 10.0))
def test_ceilings_are_ordered(limit: int, shed: float, crit: float) -> None:
    """Sheddable <= default < critical, and sheddable >= 1, for any limit and shares."""
    sheddable, default, critical = ceilings(limit, shed, crit)
    assert 1 <= sheddable <= default == limit < critical
