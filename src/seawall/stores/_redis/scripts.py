"""The Redis store's Lua scripts: loaded from package data, run with one round trip each.

Each operation is one script (``stores/_redis/lua/<name>.lua``) with its preludes prepended; it is
sent as ``EVALSHA`` with the SHA1 computed here, so nothing is loaded up front. When the
server has lost its script cache (restart, failover, ``SCRIPT FLUSH``) the answer is
``NOSCRIPT``, and the call is repeated once as ``EVAL`` with the full text, which runs the
script and caches it again: still one round trip for the decision that hit it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, cast

from redis.exceptions import NoScriptError

from .errors import FAILURES, store_failure

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

    Client = Redis | RedisCluster

__all__ = ["Script", "run", "script"]

_PRELUDES = {
    "limiter": ("_common", "_bucket"),
    "breaker": ("_common", "_breaker"),
    "lease": ("_common", "_lease"),
}


@dataclass(frozen=True, slots=True)
class Script:
    """One operation's full Lua text and its SHA1 (what ``EVALSHA`` names it by)."""

    name: str
    text: str
    sha: str


def _source(name: str) -> str:
    return (files("seawall.stores._redis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


# The admission script calls the single operations' code as functions. Each part becomes
# the body of a Lua function whose parameters KEYS and ARGV shadow the script's own, so the
# unchanged text of a prelude (which reads its arguments from fixed ARGV positions) runs
# once per gate with that gate's arguments; an operation's top-level ``return`` becomes the
# function's return.
_COMPOSED = {
    "admit": (
        ("bucket_api", ("_bucket",), "return { load = load_bucket, rebase = rebase, "
         "save = save_bucket, describe = describe, span = SPAN, interval = INTERVAL, "
         "burst = BURST }"),
        ("lease_acquire", ("_lease", "lease_acquire"), ""),
        ("breaker_admit", ("_breaker", "breaker_admit"), ""),
    ),
    "settle": (("breaker_record", ("_breaker", "breaker_record"), ""),),
}  # fmt: skip
# Coalesced admissions: admit.lua itself becomes a function, called once per member.
_COMPOSED["admit_many"] = (*_COMPOSED["admit"], ("admit_one", ("admit",), ""))


def _compose(name: str) -> str:
    parts = [_source("_common")]
    for function, sources, tail in _COMPOSED[name]:
        body = "\n".join(_source(part) for part in sources)
        parts.append(f"local function {function}(KEYS, ARGV)\n{body}\n{tail}\nend")
    parts.append(_source(name))
    return "\n".join(parts)


@cache
def script(name: str) -> Script:
    """The script for operation ``name`` (e.g. ``"limiter_reserve"``), preludes included."""
    if name in _COMPOSED:
        text = _compose(name)
    else:
        family = name.split("_", 1)[0]
        text = "\n".join(_source(part) for part in (*_PRELUDES[family], name))
    return Script(name, text, hashlib.sha1(text.encode("utf-8")).hexdigest())


Reply = list[str]


def run(
    client: Client,
    s: Script,
    key: str | Sequence[str],
    args: Sequence[str | bytes],
    where: str,
) -> Reply:
    """Run ``s`` on ``key`` (or keys) in one round trip; failures sorted by :func:`store_failure`.

    ``where`` is the store's redacted URL, for the message.
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    try:
        try:
            raw = client.evalsha(s.sha, len(keys), *keys, *args)
        except NoScriptError:
            raw = client.eval(s.text, len(keys), *keys, *args)
    except FAILURES as exc:
        raise store_failure(exc, where, s.name) from exc
    return decode(raw)


def decode(raw: object) -> Reply:
    """A script's reply (bytes, ints or a list of them) as a list of text items."""
    items = cast("list[object]", raw) if isinstance(raw, list) else [raw]
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in items]
