"""The shared argument checks: every error names the parameter and repeats the bad value.

The messages are part of the contract (users match on them, and the docs quote them), so each
test pins one message exactly.
"""

from __future__ import annotations

import re

import pytest

from seawall._core.validate import (
    check_int,
    check_number,
    check_optional_number,
    check_time_window,
)


def test_a_non_number_is_a_type_error_naming_its_type() -> None:
    """A str where a number belongs: the message names the parameter, the value and its type."""
    with pytest.raises(TypeError, match=re.escape("timeout must be a number, got '5' (str)")):
        check_number("timeout", "5")


def test_a_bool_is_not_a_number() -> None:
    """True is refused as a number even though bool is an int subclass, and its type is named."""
    with pytest.raises(TypeError, match=re.escape("per must be a number, got True (bool)")):
        check_number("per", True)


def test_a_float_is_not_an_int_and_its_type_is_named() -> None:
    """A float where an int belongs: the message names the parameter, the value and its type."""
    with pytest.raises(TypeError, match=re.escape("tokens must be an int, got 2.0 (float)")):
        check_int("tokens", 2.0)


def test_a_value_at_an_exclusive_minimum_names_the_strict_bound() -> None:
    """Zero where more than zero is needed: the message says '> 0'."""
    with pytest.raises(ValueError, match=re.escape("rate must be > 0, got 0")):
        check_number("rate", 0)


def test_a_value_below_an_inclusive_minimum_names_the_bound_it_may_equal() -> None:
    """Below an inclusive minimum: the message says '>= 1'."""
    with pytest.raises(ValueError, match=re.escape("burst must be >= 1, got 0.5")):
        check_number("burst", 0.5, minimum=1.0, inclusive=True)


def test_an_inclusive_minimum_itself_passes() -> None:
    """The inclusive minimum itself is accepted and returned as a float."""
    assert check_number("max_wait", 0, inclusive=True) == 0.0


def test_infinity_is_refused_unless_allowed() -> None:
    """+inf is refused by default and accepted with ``allow_inf``; -inf is refused even then."""
    with pytest.raises(ValueError, match=re.escape("retry_after must be finite, got inf")):
        check_number("retry_after", float("inf"))
    assert check_number("retry_after", float("inf"), allow_inf=True) == float("inf")
    with pytest.raises(ValueError, match=re.escape("retry_after must be finite, got -inf")):
        check_number("retry_after", float("-inf"), minimum=float("-inf"), allow_inf=True)


def test_an_optional_number_keeps_its_minimum() -> None:
    """check_optional_number applies the caller's minimum, not the default of zero."""
    with pytest.raises(ValueError, match=re.escape("timeout must be > 1, got 0.5")):
        check_optional_number("timeout", 0.5, minimum=1.0)
    assert check_optional_number("timeout", None, minimum=1.0) is None


def test_a_time_window_of_one_millisecond_buckets_passes() -> None:
    """1 s in 1000 buckets (exactly 1 ms each) is allowed and returned as (1.0, 1000)."""
    assert check_time_window(1, 1000) == (1.0, 1000)


def test_a_time_window_with_buckets_under_a_millisecond_names_both_settings() -> None:
    """1 s in 1001 buckets is refused with a message naming both settings and their values."""
    message = (
        "window_duration / window_buckets must be >= 0.001 s, got "
        "window_duration=1, window_buckets=1001"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_time_window(1, 1001)


@pytest.mark.parametrize(
    ("duration", "buckets", "exc", "message"),
    [
        (0, 10, ValueError, "window_duration must be > 0, got 0"),
        ("60", 10, TypeError, "window_duration must be a number, got '60' (str)"),
        (60, 0, ValueError, "window_buckets must be >= 1, got 0"),
        (60, 2.0, TypeError, "window_buckets must be an int, got 2.0 (float)"),
    ],
)
def test_a_bad_time_window_setting_is_named(
    duration: object, buckets: object, exc: type[Exception], message: str
) -> None:
    """Each bad window setting raises naming that setting and its value."""
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        check_time_window(duration, buckets)
