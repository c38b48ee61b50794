"""The forwarding headers a trusted proxy writes, read as lists of hops (nearest last).

Three headers say who a proxy's own peer was; a deployment's proxy writes one of them:

* ``X-Forwarded-For: client, proxy1, proxy2`` (the de facto one);
* ``Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`` (RFC 7239): each element
  is ``;``-separated ``name=value`` pairs, values are tokens or quoted strings, and a ``for``
  node is an IPv4 address, a bracketed IPv6 address (quoted), either with an optional port,
  or ``unknown`` / an obfuscated ``_name``;
* ``X-Real-IP: client`` (nginx's ``real_ip``; a single address, no chain).

Each reader returns the hops as text, left to right. A hop it cannot read becomes ``""``, so
the caller's right-to-left walk stops there, exactly as for a malformed ``X-Forwarded-For``
entry: a client cannot mint keys by writing garbage. Repeated fields are one list, in order
(RFC 9110 section 5.3). The grammar is small enough for the stdlib in a few dozen lines. Of
the dedicated parsers on PyPI, the framework-bound ones (Django, Morepath) do not fit, and
the general one (``forwarded`` 1.0.0, first released 2026-10) has no track record yet: a
new dependency on the request path is not worth these lines.
"""

from __future__ import annotations

from collections.abc import Callable

from ._types import Scope

__all__ = ["HEADERS", "hops"]


def _fields(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == name]


def _forwarded_for(scope: Scope) -> list[str]:
    values = _fields(scope, b"x-forwarded-for")
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]


def _real_ip(scope: Scope) -> list[str]:
    values = _fields(scope, b"x-real-ip")
    # One address is all X-Real-IP holds; several fields (a client's plus the proxy's) leave
    # the last one, the one the trusted proxy wrote.
    return [values[-1].strip()] if values else []


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _node(value: str) -> str:
    """The address of a ``for=`` node, or "" if it names none (unknown, obfuscated, bad)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if value.startswith("["):
        address, bracket, port = value[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit())):
            return ""
        return address if ":" in address else ""  # brackets hold IPv6 only
    address, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return ""  # an unbracketed IPv6 address or a bad port: not a valid node
    return address


def _forwarded(scope: Scope) -> list[str]:
    hops: list[str] = []
    for value in _fields(scope, b"forwarded"):
        for element in _split_outside_quotes(value, ","):
            if not element.strip():
                continue
            node = ""
            for pair in _split_outside_quotes(element, ";"):
                name, equals, item = pair.partition("=")
                if equals and name.strip().lower() == "for":
                    node = _node(item)
                    break
            hops.append(node)
    return hops


#: Header name -> reader of its hops, for ``ClientKey(header=...)``.
HEADERS: dict[str, Callable[[Scope], list[str]]] = {
    "x-forwarded-for": _forwarded_for,
    "forwarded": _forwarded,
    "x-real-ip": _real_ip,
}


def hops(scope: Scope, header: str) -> list[str]:
    """The hops ``header`` lists in ``scope``, left to right ("" for one that is unreadable)."""
    return HEADERS[header](scope)
