"""Store URLs as they may be shown: the one place that hides a URL's secrets.

Every message, ``repr``, event and CLI line that names a store goes through
:func:`redact_url`, so a Redis password given in the URL never leaves the process.
"""

from __future__ import annotations

import re

__all__ = ["redact_url"]

HIDDEN = "***"

# Query parameters that carry credentials (redis-py reads ``?password=``); the match is on
# part of the name, case-insensitive, so ``sentinel_password`` and ``PASSWORD`` are hidden too.
_SECRET_PARAM = re.compile(
    r"([?&;][^=&;#]*(?:pass|pwd|secret|token|auth|cred)[^=&;#]*=)[^&;#]*", re.IGNORECASE
)
_SHOWN_PARAM = r"\1" + HIDDEN


def redact_url(url: str) -> str:
    """``url`` with its password (and any credential query parameter) shown as ``***``.

    Scheme, host, port, database and the other parameters stay; so does a username given
    as ``user:password@``. A lone ``secret@host`` is hidden whole: some clients read it as
    a password: ``redis://u:pw@h:6379/0?password=x`` reads ``redis://u:***@h:6379/0?password=***``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL, maybe a mistyped one ("redis:/:pw@host"): hide up to the "@"
        at = url.rfind("@")
        return _SECRET_PARAM.sub(_SHOWN_PARAM, url if at < 0 else HIDDEN + url[at:])
    if not rest.startswith("/"):  # an authority (``file:///dir`` has none)
        end = len(rest)
        for stop in "/?#":
            found = rest.find(stop)
            if found >= 0:
                end = min(end, found)
        # A password holding "/", "?" or "#" unescaped would end the authority early and
        # leave its tail in the path: hide everything up to the last "@" then.
        at = rest.rfind("@", 0, end)
        if at < 0:
            at = rest.rfind("@")
        if at >= 0:
            user, colon, _ = rest[:at].partition(":")
            shown = f"{user}:{HIDDEN}" if colon and at < end else HIDDEN
            rest = f"{shown}{rest[at:]}"
    return f"{scheme}://{_SECRET_PARAM.sub(_SHOWN_PARAM, rest)}"
