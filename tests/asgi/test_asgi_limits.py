"""Limit strings and the all-or-nothing charge of several quotas."""

from __future__ import annotations

import pytest

from seawall.asgi import Limit, parse_limits
from seawall.asgi._limits import LimitGroup
from seawall.testing import FakeClock


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/minute", (Limit(100, 60),)),
        ("10/second;1000/hour", (Limit(10, 1), Limit(1000, 3600))),
        ("5 per 2 minutes", (Limit(5, 120),)),
        ("3/d, 7/s", (Limit(3, 86400), Limit(7, 1))),
        ("20/5min", (Limit(20, 300),)),
        ("1 PER HOUR", (Limit(1, 3600),)),
    ],
)
def test_limit_strings_parse_to_amount_and_window(text: str, expected: tuple[Limit, ...]) -> None:
    """Every accepted spelling reads as the exact amount per window in seconds."""
    assert parse_limits("rate_limit", text) == expected


def test_lists_and_limit_objects_are_accepted() -> None:
    """A list mixes strings and Limit objects, flattened in order."""
    assert parse_limits("x", ["1/second;2/minute", Limit(3, 10)]) == (
        Limit(1, 1),
        Limit(2, 60),
        Limit(3, 10),
    )


@pytest.mark.parametrize("text", ["", "abc", "10/fortnight", "0/minute", "5/0 seconds", "-1/s"])
def test_bad_limit_strings_name_the_parameter(text: str) -> None:
    """A string that is not a limit raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match="rate_limit"):
        parse_limits("rate_limit", text)


def test_non_strings_raise_type_error() -> None:
    """A number is not a limit: TypeError naming the parameter."""
    with pytest.raises(TypeError, match="rate_limit"):
        parse_limits("rate_limit", 100)  # type: ignore[arg-type]


def test_a_refused_request_spends_nothing_in_any_quota(clock: FakeClock) -> None:
    """With 2/second and 3/minute, the per-second refusal leaves the minute quota untouched."""
    group = LimitGroup("default", parse_limits("x", "2/second;3/minute"), max_keys=10, clock=clock)
    assert [group.hit("a")[0] for _ in range(3)] == [True, True, False]
    minute = group.buckets[1]
    assert minute.tokens("a") == pytest.approx(1.0)
    clock.advance(1.0)
    assert [group.hit("a")[0] for _ in range(2)] == [True, False]
    granted, states = group.hit("a")
    assert not granted
    assert [(s.name, s.remaining) for s in states] == [("default-1", 1), ("default-2", 0)]
    assert states[1].retry_after == pytest.approx(20.0 - 1.0)


def test_single_quota_state_carries_header_numbers(clock: FakeClock) -> None:
    """One quota: remaining, reset_after and retry_after come from the limiter's decision."""
    group = LimitGroup("default", (Limit(5, 60),), max_keys=10, clock=clock)
    for _ in range(5):
        granted, (state,) = group.hit("k")
    assert granted
    assert (state.remaining, state.reset_after) == (0, pytest.approx(60.0))
    granted, (state,) = group.hit("k")
    assert not granted
    assert state.retry_after == pytest.approx(12.0)
    assert group.policy_field == b'"default";q=5;w=60'
