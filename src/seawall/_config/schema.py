"""The rule each configuration value obeys, and how values are checked against it.

A :class:`Rule` travels in the metadata of each settings dataclass field, so the dataclasses
are the one place where a key, its default and its valid range are written. The same rule
checks a value three ways: a typed value from a YAML or TOML file (:func:`check`), the text of
an environment variable (:func:`parse`), and a value handed to a settings constructor.

A failed check raises :class:`Problem` with only the complaint ("must be an int"); the caller
knows the source and the dotted key and builds the :class:`~seawall.ConfigError` with
:func:`error`, so every message names where the value came from, the key and the value.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from .._errors import ConfigError
from .._redact import redact_url

__all__ = [
    "Problem",
    "Rule",
    "check",
    "choice",
    "closest",
    "error",
    "flag",
    "integer",
    "number",
    "parse",
    "shown",
    "url",
]

T = TypeVar("T")
Kind = Literal["int", "float", "bool", "choice", "url"]

STORE_SCHEMES = ("memory", "file", "redis", "rediss", "redis+cluster")
_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")


class Problem(Exception):
    """A value broke its rule; ``str(self)`` is the complaint, without source or key."""

    def __init__(self, complaint: str, *, show_type: bool = False) -> None:
        super().__init__(complaint)
        self.show_type = show_type


@dataclass(frozen=True, slots=True)
class Rule:
    """What one key accepts: a kind, optional bounds, ``None`` or not, ``"auto"`` or not."""

    kind: Kind
    minimum: float | None = None
    inclusive: bool = True
    allow_inf: bool = False
    optional: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    maximum: float | None = None
    """An inclusive upper bound, or None."""
    auto: bool = False
    """Whether the word ``"auto"`` is accepted too (an int key whose value may be learned)."""

    def describe(self) -> str:
        """The valid range in words, for the documentation table and ``seawall config``."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "url":
            text = "URL: " + ", ".join(f"{s}://" for s in STORE_SCHEMES)
        elif self.kind == "bool":
            text = "true or false"
        else:
            bound = f"{'>=' if self.inclusive else '>'} {self.minimum:g}"
            if self.maximum is not None:
                bound += f", <= {self.maximum:g}"
            text = f"{self.kind} {bound}" + (", inf allowed" if self.allow_inf else "")
        text += ", or 'auto'" if self.auto else ""
        return text + (", or null" if self.optional else "")


def _setting(default: T, rule: Rule) -> T:
    # dataclasses.field is typed to return the default's type, so fields read as plain values.
    return field(default=default, metadata={"rule": rule})


def integer(
    default: T, *, minimum: int = 1, optional: bool = False, auto: bool = False, help: str
) -> T:
    """A field holding an int of at least ``minimum`` (or the word ``"auto"`` if ``auto``)."""
    return _setting(default, Rule("int", minimum, optional=optional, auto=auto, help=help))


def number(
    default: T,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    allow_inf: bool = False,
    optional: bool = False,
    maximum: float | None = None,
    help: str,
) -> T:
    """A finite float above (or at, when ``inclusive``) ``minimum``, at most ``maximum``."""
    rule = Rule("float", minimum, inclusive, allow_inf, optional, help=help, maximum=maximum)
    return _setting(default, rule)


def flag(default: bool, *, help: str) -> bool:
    """A field holding a bool."""
    return _setting(default, Rule("bool", help=help))


def choice(default: str, choices: tuple[str, ...], *, help: str) -> str:
    """A field holding one of ``choices``."""
    return _setting(default, Rule("choice", choices=choices, help=help))


def url(default: str, *, help: str) -> str:
    """A field holding a store URL."""
    return _setting(default, Rule("url", help=help))


# -- checking -----------------------------------------------------------------------------


def check(rule: Rule, value: object) -> object:
    """Return ``value`` (ints as floats for float keys) if it obeys ``rule``; else Problem."""
    if value is None:
        if rule.optional:
            return None
        raise Problem("must be set (null is not allowed here)")
    if rule.auto and value == "auto":
        return value
    if rule.kind == "int":
        return _check_int(rule, value)
    if rule.kind == "float":
        return _check_float(rule, value)
    if rule.kind == "bool":
        if not isinstance(value, bool):
            raise Problem("must be true or false", show_type=True)
        return value
    if not isinstance(value, str):
        raise Problem("must be a string", show_type=True)
    return _check_choice(rule, value) if rule.kind == "choice" else _check_url(value)


def _check_int(rule: Rule, value: object) -> int:
    # bool is an int subclass, and 3.0 is not an int: both are typing mistakes in a file.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem("must be an int" + (" or 'auto'" if rule.auto else ""), show_type=True)
    _check_bound(rule, value)
    return value


def _check_float(rule: Rule, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Problem("must be a number", show_type=True)
    result = float(value)
    if math.isnan(result):
        raise Problem("must be a number")
    if math.isinf(result) and not (rule.allow_inf and result > 0):
        raise Problem("must be finite")
    _check_bound(rule, result)
    return result


def _check_bound(rule: Rule, value: float) -> None:
    low = rule.minimum
    if low is not None and (value < low or (value == low and not rule.inclusive)):
        raise Problem(f"must be {'>=' if rule.inclusive else '>'} {low:g}")
    if rule.maximum is not None and value > rule.maximum:
        raise Problem(f"must be <= {rule.maximum:g}")


def _check_choice(rule: Rule, value: str) -> str:
    if value not in rule.choices:
        raise Problem("must be one of " + ", ".join(repr(c) for c in rule.choices))
    return value


def _check_url(value: str) -> str:
    # urlsplit's messages quote the port text, which may hold part of a password: say what
    # is wrong in seawall's words instead.
    try:
        parts = urlsplit(value)
    except ValueError:
        raise Problem("must be a valid URL") from None
    try:
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise Problem("must be a valid URL (the port must be a number from 0 to 65535)") from None
    if parts.scheme not in STORE_SCHEMES:
        raise Problem("must start with " + ", ".join(f"{s}://" for s in STORE_SCHEMES))
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
        raise Problem("must name an absolute directory, as file:///var/lib/app/seawall")
    if parts.scheme.startswith("redis") and not parts.hostname:
        raise Problem("must name a host, as redis://localhost:6379/0")
    return value


def parse(rule: Rule, text: str) -> object:
    """Turn an environment variable's text into a checked value, or raise Problem."""
    word = text.strip()
    if rule.optional and word.lower() in _NONE_WORDS:
        return None
    if rule.auto and word == "auto":
        return word
    if rule.kind == "int":
        if not _INT_TEXT.fullmatch(word):
            raise Problem("must be an int" + (" or 'auto'" if rule.auto else ""))
        return check(rule, int(word))
    if rule.kind == "float":
        try:
            value = float(word)
        except ValueError:
            raise Problem("must be a number") from None
        return check(rule, value)
    if rule.kind == "bool":
        if word.lower() not in _TRUE_WORDS + _FALSE_WORDS:
            raise Problem("must be one of " + ", ".join(_TRUE_WORDS + _FALSE_WORDS))
        return word.lower() in _TRUE_WORDS
    return check(rule, word)


# -- messages -----------------------------------------------------------------------------


def error(source: str, key: str, value: object, problem: Problem | str) -> ConfigError:
    """The ConfigError for ``value`` at dotted ``key`` from ``source``."""
    text = shown(value)
    if isinstance(problem, Problem) and problem.show_type:
        text += f" ({type(value).__name__})"
    return ConfigError(f"{source}: {key} {problem}, got {text}")


def shown(value: object) -> str:
    """``repr(value)`` for a message, with any password in a URL-like string as ``***``."""
    return repr(redact_url(value)) if isinstance(value, str) else repr(value)


def closest(word: object, known: Iterable[str]) -> str | None:
    """The known word closest to ``word``, or None when none is close."""
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return close[0] if close else None
