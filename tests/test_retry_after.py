"""Retry-After parsing: ASCII delay-seconds, HTTP-dates, and everything hostile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall._retry_after import HUGE, parse_retry_after, retry_after_delay

# 2015-10-21 07:28:00 UTC as Unix seconds.
OCT_2015 = 1_445_412_480.0
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7\t", 7.0),
        (b"30", 30.0),
        ("007", 7.0),
        ("120, 120", 120.0),
    ],
)
def test_delay_seconds_are_read_exactly(value: str | bytes, expected: float) -> None:
    """ASCII digit strings read as that many seconds."""
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "1.5",
        "NaN",
        "inf",
        "",
        "   ",
        "soon",
        "١٢٣",
        "²",
        "\uff11\uff12",
        "0x10",
        "1e3",
        "+5",
        None,
    ],
)
def test_unreadable_values_are_ignored(value: str | None) -> None:
    """Negatives, fractions, NaN, garbage and non-ASCII digits give None."""
    assert parse_retry_after(value, now=NOW) is None


def test_huge_delay_is_finite_and_capped() -> None:
    """9999999999 is read, and the capped form never exceeds the cap."""
    assert parse_retry_after("9999999999", now=NOW) == 9_999_999_999.0
    assert retry_after_delay("9999999999", now=NOW, maximum=120.0) == 120.0


def test_absurdly_long_digit_run_reads_as_huge() -> None:
    """A 4000-digit value does not reach int() and reads as HUGE."""
    assert parse_retry_after("9" * 60, now=NOW) == HUGE
    assert parse_retry_after("9" * 4000, now=NOW) is None


def test_http_date_in_the_past_is_zero() -> None:
    """A date before now means retry at once."""
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0


def test_http_date_in_the_future_is_the_difference() -> None:
    """A future HTTP-date gives the seconds from now until then."""
    value = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(value, now=OCT_2015 - 90) == 90.0


def test_zoneless_minus_0000_date_is_utc() -> None:
    """A '-0000' zone (naive from the stdlib parser) is read as UTC."""
    value = "Wed, 21 Oct 2015 07:28:00 -0000"
    assert parse_retry_after(value, now=OCT_2015 - 5) == 5.0


def test_far_future_date_is_finite() -> None:
    """Year 9999 parses to a finite number that the cap then bounds."""
    seconds = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW)
    assert seconds is not None
    assert 0 < seconds <= HUGE
    assert retry_after_delay("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW, maximum=60) == 60


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_never_raises_and_never_negative(value: str | bytes) -> None:
    """Any text or bytes gives None or a finite number >= 0."""
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or 0.0 <= seconds <= HUGE
