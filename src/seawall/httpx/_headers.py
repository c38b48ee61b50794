"""Reading the server's pacing fields: ``Retry-After`` and the IETF ``RateLimit`` fields.

``RateLimit`` has changed shape across drafts of draft-ietf-httpapi-ratelimit-headers; all
three are read, with the same ASCII-digits-only rule as ``Retry-After``:

* structured field (draft 08+): ``RateLimit: "default";r=0;t=30``
* dictionary (drafts 03-07): ``RateLimit: limit=100, remaining=0, reset=30``
* separate fields (drafts 00-02): ``RateLimit-Remaining: 0`` and ``RateLimit-Reset: 30``

Only "nothing remains, reset in t seconds" matters to a client: :func:`exhausted_for` returns
``t`` then, and None otherwise.
"""

from __future__ import annotations

import re

import httpx

from .._retry_after import retry_after_delay

__all__ = ["exhausted_for", "retry_after_of"]

# re.ASCII keeps \w and friends ASCII; the digit class is spelled out anyway.
_PARAM = re.compile(r"(?:^|[;,\s])(r|t|remaining|reset)\s*=\s*([0-9]{1,12})(?![0-9])", re.ASCII)


def retry_after_of(response: httpx.Response, *, now: float, maximum: float) -> float | None:
    """The capped ``Retry-After`` delay of ``response`` in seconds, or None."""
    value = response.headers.get("retry-after")
    return None if value is None else retry_after_delay(value, now=now, maximum=maximum)


def exhausted_for(response: httpx.Response, *, maximum: float) -> float | None:
    """Seconds until the quota resets when the server says none remains, else None."""
    headers = response.headers
    field = headers.get("ratelimit")
    if field is not None and len(field) <= 512:
        params = dict(_PARAM.findall(field))
        remaining = params.get("r", params.get("remaining"))
        reset = params.get("t", params.get("reset"))
    else:
        remaining = _digits(headers.get("ratelimit-remaining"))
        reset = _digits(headers.get("ratelimit-reset"))
    if remaining is None or reset is None or int(remaining) != 0:
        return None
    return min(float(int(reset)), maximum)


def _digits(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if 0 < len(value) <= 12 and value.isascii() and value.isdigit():
        return value
    return None
