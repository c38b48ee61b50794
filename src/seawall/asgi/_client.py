"""Who is calling: the client key a request is rate-limited under.

The default key is the peer address the server reports (``scope["client"]``). A forwarding
header is read only when the peer is a configured trusted proxy, and only the one header the
proxy writes (``header=``: ``X-Forwarded-For`` by default, RFC 7239 ``Forwarded`` or
``X-Real-IP``; see :mod:`._forwarded`), since a proxy passes the others through from the
client untouched. Its hops are walked right to left, skipping trusted proxies, and the first
address that is not one is the client. Every entry is validated with :mod:`ipaddress`; a
malformed entry ends the walk and the last good hop is used, so a client cannot mint keys by
writing garbage. Without trusted proxies the headers are ignored entirely: a spoofed header
creates no new bucket.

Addresses are normalised so one client has one key: IPv4-mapped IPv6 becomes IPv4, and IPv6
is grouped by /64 (one customer network usually holds a whole /64).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Hashable, Iterable
from functools import lru_cache
from typing import Any

from .._callables import is_async_callable
from ._forwarded import HEADERS, hops
from ._types import Scope

__all__ = ["ClientKey", "KeyFunction", "RequestKey", "normalize_address", "parse_networks"]

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
    """The default key function: ``ClientKey(trusted_proxies, header=...)(scope) -> str``.

    ``header`` names the forwarding header the trusted proxies write: ``"x-forwarded-for"``
    (default), ``"forwarded"`` (RFC 7239) or ``"x-real-ip"``.
    """

    __slots__ = ("_header", "_trusted")

    def __init__(
        self,
        trusted_proxies: Iterable[str | Network | Address] = (),
        *,
        header: str = "x-forwarded-for",
    ) -> None:
        self._trusted = parse_networks("trusted_proxies", trusted_proxies)
        if not isinstance(header, str) or header.lower() not in HEADERS:
            raise ValueError(f"header must be one of {tuple(HEADERS)}, got {header!r}")
        self._header = header.lower()

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
        client = peer
        for text in reversed(hops(scope, self._header)):
            address = _parse(text)
            if address is None:
                break  # garbage: keep the last hop we could verify
            client = address
            if not self._is_trusted(address):
                break
        return _key_of(client)


#: A key function: ``key(scope)`` returning the bucket's key, or an async one; None from it
#: means "the client address" (e.g. an anonymous request under a per-user key).
KeyFunction = Callable[[Scope], Hashable | None] | Callable[[Scope], Awaitable[Hashable | None]]


class RequestKey:
    """The key a request is charged to: the user's ``key`` (sync or async) or the client's.

    ``sync`` is the key function when no await is needed (the :class:`ClientKey` itself by
    default, so the default costs no extra call), else None and :meth:`akey` answers. A
    user key answering None falls back to the client's key.
    """

    __slots__ = ("_user", "client", "sync")

    def __init__(self, key: KeyFunction | None, client: ClientKey) -> None:
        if key is not None and not callable(key):
            raise TypeError(f"key must be a callable key(scope), got {key!r}")
        self.client = client
        self._user: Any = key
        self.sync: Callable[[Scope], Hashable] | None
        if key is None:
            self.sync = client
        elif is_async_callable(key):
            self.sync = None
        else:
            self.sync = self._sync_user

    def _sync_user(self, scope: Scope) -> Hashable:
        key = self._user(scope)
        return self.client(scope) if key is None else key

    async def akey(self, scope: Scope) -> Hashable:
        """The key for ``scope``, awaiting an async ``key`` function."""
        if self.sync is not None:
            return self.sync(scope)
        key = await self._user(scope)
        return self.client(scope) if key is None else key
