"""Redis key names, URL checks and number formatting for the Redis store.

Every key is ``<prefix>:{<tag>}:<kind>[:<digest>]``. The tag is a digest of the policy name,
so all keys of one policy share one Cluster hash slot and a policy name can never move a key
to another slot or inject glob characters; a limiter's user key enters only as a digest of
its length-prefixed bytes. The raw name and key are kept *inside* the hash, for ``status``.

A spec with a ``group`` (the gates of one request's admission, see ``Gates``) is tagged by
the group instead, and its name enters as a digest after the kind:
``<prefix>:{<group tag>}:<kind>:<name digest>[:<key digest>]``; every gate of one admission
then lives in one hash slot, so one script can decide them all, on a Cluster too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..._redact import redact_url

__all__ = [
    "RedisTarget",
    "bucket_key",
    "check_prefix",
    "fmt",
    "grouped_pattern",
    "parse_url",
    "policy_key",
    "policy_pattern",
    "store_pattern",
]

_SCHEMES = {
    "redis": (False, False),
    "rediss": (True, False),
    "redis+cluster": (False, True),
    "rediss+cluster": (True, True),
}
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A checked store URL: ``client_url`` is what redis-py is given."""

    client_url: str = field(repr=False)  # holds the password: never shown
    tls: bool
    cluster: bool
    display: str
    """The URL with its password shown as ``***`` (see :func:`redact_url`), for messages."""
    async_client: str | None = None
    """The URL's ``async_client`` option, taken out of ``client_url`` (None when absent)."""
    options: frozenset[str] = frozenset()
    """The names of the URL's other query options (what the client is asked to honour)."""


def parse_url(url: str) -> RedisTarget:
    """Check a ``redis://``, ``rediss://``, ``redis+cluster://`` or ``rediss+cluster://`` URL."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    display = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError:
        # urlsplit's message quotes the port text, which may hold part of a password.
        raise ValueError(f"url is not a valid Redis URL: {display!r} (bad port)") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"url must start with redis://, rediss://, redis+cluster:// or "
            f"rediss+cluster://, got {display!r}"
        )
    if not parts.hostname:
        raise ValueError(f"url must name a host, got {display!r}")
    tls, cluster = _SCHEMES[parts.scheme]
    if cluster and parts.path not in ("", "/", "/0"):
        raise ValueError(f"url of a Redis Cluster can only name database 0, got {display!r}")
    scheme = "rediss" if tls else "redis"
    client_url = scheme + url[len(parts.scheme) :]
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = [v for k, v in query if k == "async_client"]
    if chosen:  # seawall's own option: redis-py would refuse it
        rest = urlencode([(k, v) for k, v in query if k != "async_client"])
        client_url = client_url.split("?", 1)[0] + (f"?{rest}" if rest else "")
    options = frozenset(k for k, _ in query if k != "async_client")
    return RedisTarget(client_url, tls, cluster, display, chosen[-1] if chosen else None, options)


def check_prefix(prefix: str) -> str:
    """The fixed key prefix: 1-64 of ``A-Z a-z 0-9 _ . -`` (safe in SCAN patterns)."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix must be 1-64 characters of A-Z a-z 0-9 _ . -, got {prefix!r}")
    return prefix


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _tag(name: str) -> str:
    return _digest(_length_prefixed(name))


def _length_prefixed(text: str | None) -> bytes:
    if text is None:
        return b"-"
    raw = text.encode("utf-8", "surrogatepass")
    return b"%d:" % len(raw) + raw


@lru_cache(maxsize=4096)
def policy_key(prefix: str, name: str, kind: str, group: str = "") -> str:
    """The key of a breaker or bulkhead record (tagged by ``group`` when given)."""
    if group:
        return f"{prefix}:{{{_tag(group)}}}:{kind}:{_tag(name)}"
    return f"{prefix}:{{{_tag(name)}}}:{kind}"


@lru_cache(maxsize=65536)
def bucket_key(prefix: str, name: str, key: str | None, group: str = "") -> str:
    """The key of one limiter bucket (``key`` None for an unkeyed limiter)."""
    digest = _digest(_length_prefixed(key))
    if group:
        return f"{prefix}:{{{_tag(group)}}}:limiter:{_tag(name)}:{digest}"
    return f"{prefix}:{{{_tag(name)}}}:limiter:{digest}"


def policy_pattern(prefix: str, name: str) -> str:
    """SCAN pattern for every key of one policy (no user text in it)."""
    return f"{prefix}:{{{_tag(name)}}}:*"


def grouped_pattern(prefix: str, name: str) -> str:
    """SCAN pattern for the keys of policy ``name`` in any group (see the module docstring)."""
    return f"{prefix}:{{*}}:*:{_tag(name)}*"


def store_pattern(prefix: str) -> str:
    """SCAN pattern for every key of this store (the fixed prefix only)."""
    return f"{prefix}:*"


def fmt(value: float) -> str:
    """A float as text Lua's ``tonumber`` reads back as the same double (``inf`` included)."""
    return repr(float(value))
