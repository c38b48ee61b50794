"""Who is calling: the client key a request is rate-limited under.

The default key is the peer address the server reports (``scope["client"]``). Forwarding
headers are read only when the peer is a configured trusted proxy: then ``X-Forwarded-For``
is walked right to left, skipping trusted proxies, and the first address that is not one is
the client. Every entry is validated with :mod:`ipaddress`; a malformed entry ends the walk
and the last good hop is used, so a client cannot mint keys by writing garbage. Without
trusted proxies the header is ignored entirely: a spoofed header creates no new bucket.

Addresses are normalised so one client has one key: IPv4-mapped IPv6 becomes IPv4, and IPv6
is grouped by /64 (one customer network usually holds a whole /64).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from ._types import Scope

__all__ = ["ClientKey", "normalize_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The key of requests whose peer address is unknown (e.g. a Unix socket).
UNKNOWN_CLIENT = "unknown"


def parse_networks(name: str, values: Iterable[str | Network | Address]) -> tuple[Network, ...]:
    """Parse addresses and CIDR networks (``"10.0.0.0/8"``, ``"::1"``) for ``name``."""
    if isinstance(values, str):
        values = [values]
    networks: list[Network] = []
    for value in values:
        if isinstance(value, Network):
            networks.append(value)
            continue
        try:
            networks.append(ipaddress.ip_network(str(value), strict=True))
        except ValueError as exc:
            raise ValueError(f"{name}: {value!r} is not an IP address or network ({exc})") from None
    return tuple(networks)


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _key_of(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@lru_cache(maxsize=4096)
def normalize_address(host: str) -> str:
    """The rate-limit key for a peer address string as the server reported it."""
    address = _parse(host)
    return host if address is None else _key_of(address)


class ClientKey:
    """The default key function: ``ClientKey(trusted_proxies)(scope) -> str``."""

    __slots__ = ("_trusted",)

    def __init__(self, trusted_proxies: Iterable[str | Network | Address] = ()) -> None:
        self._trusted = parse_networks("trusted_proxies", trusted_proxies)

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        if not client:
            return UNKNOWN_CLIENT
        host = client[0]
        if not self._trusted:
            return normalize_address(host)
        return self._forwarded(scope, host)

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def _forwarded(self, scope: Scope, host: str) -> str:
        peer = _parse(host)
        if peer is None or not self._is_trusted(peer):
            return normalize_address(host)
        hops = _forwarded_for(scope)
        client = peer
        for text in reversed(hops):
            address = _parse(text)
            if address is None:
                break  # garbage: keep the last hop we could verify
            client = address
            if not self._is_trusted(address):
                break
        return _key_of(client)


def _forwarded_for(scope: Scope) -> list[str]:
    # Repeated X-Forwarded-For fields are one list, in order (RFC 9110 section 5.3).
    values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    return [hop for value in values for hop in value.split(",") if hop.strip()]
