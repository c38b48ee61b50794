"""Client keys: peer address by default, X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from seawall.asgi import ClientKey


def scope(peer: str | None, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": None if peer is None else (peer, 5000), "headers": headers}


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    """A client-written X-Forwarded-For never changes the key."""
    key = ClientKey()
    assert key(scope("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_trusted_proxy_yields_first_untrusted_hop_from_the_right() -> None:
    """Walking right to left past trusted proxies, the first other address is the client."""
    key = ClientKey(["10.0.0.0/8"])
    assert key(scope("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1")) == "198.51.100.7"


def test_repeated_forwarded_for_fields_are_one_list() -> None:
    """Several X-Forwarded-For fields join in order, the last field being rightmost."""
    key = ClientKey(["10.0.0.0/8"])
    assert key(scope("10.0.0.1", "6.6.6.6", "198.51.100.7")) == "198.51.100.7"


def test_untrusted_peer_ignores_the_header() -> None:
    """A peer outside trusted_proxies is itself the client, whatever it forwards."""
    key = ClientKey(["10.0.0.0/8"])
    assert key(scope("192.0.2.1", "1.2.3.4")) == "192.0.2.1"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    """When every hop is a trusted proxy, the leftmost address is the client (as uvicorn)."""
    key = ClientKey(["10.0.0.0/8"])
    assert key(scope("10.0.0.1", "10.9.9.9, 10.2.2.2")) == "10.9.9.9"


def test_garbage_hop_stops_the_walk_at_the_last_verified_address() -> None:
    """A malformed entry cannot mint a key: the last good hop is used."""
    key = ClientKey(["10.0.0.0/8"])
    assert key(scope("10.0.0.1", "1.2.3.4, not-an-ip, 10.2.2.2")) == "10.2.2.2"
    assert key(scope("10.0.0.1", "1.2.3.4:80")) == "10.0.0.1"


def test_ipv6_clients_are_grouped_by_64() -> None:
    """Two addresses in one /64 share a key; another /64 does not."""
    key = ClientKey()
    a = key(scope("2001:db8:1:2::1"))
    assert a == key(scope("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert key(scope("2001:db8:1:3::1")) != a


def test_ipv4_mapped_ipv6_is_ipv4() -> None:
    """::ffff:a.b.c.d is the IPv4 client a.b.c.d."""
    assert ClientKey()(scope("::ffff:192.0.2.5")) == "192.0.2.5"


def test_missing_client_is_one_unknown_key() -> None:
    """A scope without a client (Unix socket) is keyed 'unknown'."""
    assert ClientKey()(scope(None)) == "unknown"


def test_bad_trusted_proxy_names_the_parameter() -> None:
    """An unparsable network raises ValueError naming trusted_proxies."""
    with pytest.raises(ValueError, match="trusted_proxies"):
        ClientKey(["10.0.0.1/8"])  # host bits set
    with pytest.raises(ValueError, match="trusted_proxies"):
        ClientKey(["*"])


def test_network_objects_are_accepted() -> None:
    """ipaddress network objects work as trusted proxies."""
    key = ClientKey([ipaddress.ip_network("::1/128")])
    assert key(scope("::1", "192.0.2.8")) == "192.0.2.8"
