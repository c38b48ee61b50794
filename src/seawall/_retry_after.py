"""Parsing ``Retry-After`` (RFC 9110 section 10.2.3) without trusting the server.

``Retry-After = HTTP-date / delay-seconds`` and ``delay-seconds = 1*DIGIT``. What arrives in
practice is messier, and every mistake here has bitten someone: urllib3 passed ``9999999999``
to ``time.sleep`` and got ``OverflowError``; ``int("١٢٣")`` is 123 because Python's ``int`` and
``str.isdigit`` accept any Unicode digit; ``email.utils.parsedate_to_datetime`` returns a naive
datetime for a ``-0000`` zone. So this module:

* accepts delay-seconds made of ASCII ``0-9`` only; more than :data:`MAX_DIGITS` digits is
  "later than anyone will wait" and reads as :data:`HUGE` (callers cap it);
* accepts an HTTP-date, normalised to aware UTC, measured against the caller's wall clock;
  a date in the past means "now" (0 seconds);
* returns ``None`` for everything else (negative numbers, fractions, NaN, empty, non-ASCII,
  over-long text): an unreadable hint is ignored, never a crash and never an endless sleep.

The functions are pure: the caller passes the current wall time.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC

__all__ = ["HUGE", "MAX_DIGITS", "parse_retry_after", "retry_after_delay"]

#: Longest run of digits converted exactly; anything longer reads as :data:`HUGE`.
MAX_DIGITS = 12
#: The value of an absurdly long delay; finite so arithmetic on it stays safe.
HUGE = 1e12
# An HTTP-date is 29 characters; the obsolete formats are a little longer. Anything much
# longer is not a Retry-After value and is not worth handing to the date parser.
_MAX_LENGTH = 64
_ASCII_DIGITS = frozenset("0123456789")
_OWS = " \t"


def parse_retry_after(value: str | bytes | None, *, now: float) -> float | None:
    """Return the delay ``value`` asks for, in seconds (>= 0), or None when unreadable.

    ``now`` is the current wall-clock time (Unix seconds), used for HTTP-dates.
    A list of repeated fields joined by commas is read by its first element.
    """
    text = _as_text(value)
    if text is None:
        return None
    seconds = _delay_seconds(text)
    if seconds is not None:
        return seconds
    date = _http_date(text, now)
    if date is not None:
        return date
    # "120, 120": the same field sent twice and joined. HTTP-dates contain a comma too,
    # which is why this is tried last.
    head = text.split(",", 1)[0].strip(_OWS)
    return _delay_seconds(head) if head != text else None


def retry_after_delay(value: str | bytes | None, *, now: float, maximum: float) -> float | None:
    """Like :func:`parse_retry_after`, capped at ``maximum`` seconds."""
    seconds = parse_retry_after(value, now=now)
    return None if seconds is None else min(seconds, maximum)


def _as_text(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        # Header bytes are latin-1 by definition; any non-ASCII byte fails the checks below.
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        return None
    text = value.strip(_OWS)
    if not text or not text.isascii():
        return None
    return text


def _delay_seconds(text: str) -> float | None:
    if not text or not _ASCII_DIGITS.issuperset(text):
        return None
    if len(text.lstrip("0")) > MAX_DIGITS:
        return HUGE
    return float(int(text))


def _http_date(text: str, now: float) -> float | None:
    # The date parser reads bare numbers as something (or raises); only try text with letters.
    if not any(c.isalpha() for c in text):
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" means "UTC, source unknown"; RFC 9110 dates are always GMT anyway.
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), HUGE)
