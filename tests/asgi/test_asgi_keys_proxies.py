"""RFC 7239 Forwarded and X-Real-IP: believed only from trusted proxies, never spoofable."""

from __future__ import annotations

import pytest

from seawall.asgi import ClientKey


def scope(peer: str, name: str, *values: str) -> dict[str, object]:
    headers = [(name.encode(), value.encode()) for value in values]
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def forwarded(peer: str, *values: str) -> dict[str, object]:
    return scope(peer, "forwarded", *values)


def real_ip(peer: str, *values: str) -> dict[str, object]:
    return scope(peer, "x-real-ip", *values)


TRUSTED = ["10.0.0.0/8"]


def test_forwarded_is_ignored_without_trusted_proxies() -> None:
    """A client-written Forwarded header never changes the key."""
    key = ClientKey(header="forwarded")
    assert key(forwarded("203.0.113.9", "for=1.2.3.4")) == "203.0.113.9"


def test_forwarded_from_an_untrusted_peer_is_ignored() -> None:
    """A peer outside trusted_proxies is itself the client, whatever Forwarded says."""
    key = ClientKey(TRUSTED, header="forwarded")
    assert key(forwarded("192.0.2.1", "for=1.2.3.4")) == "192.0.2.1"


def test_forwarded_walks_right_to_left_past_trusted_proxies() -> None:
    """The first for= node that is not a trusted proxy, from the right, is the client."""
    key = ClientKey(TRUSTED, header="forwarded")
    value = "for=6.6.6.6, for=198.51.100.7;proto=https, for=10.1.1.1;by=10.0.0.1"
    assert key(forwarded("10.0.0.1", value)) == "198.51.100.7"


def test_forwarded_repeated_fields_are_one_list() -> None:
    """Several Forwarded fields join in order, the last field being rightmost."""
    key = ClientKey(TRUSTED, header="forwarded")
    assert key(forwarded("10.0.0.1", "for=6.6.6.6", "For=198.51.100.7")) == "198.51.100.7"


def test_forwarded_quoted_ipv6_with_port_is_read() -> None:
    """for="[2001:db8:cafe::17]:4711" is the IPv6 client, grouped by /64."""
    key = ClientKey(TRUSTED, header="forwarded")
    value = 'for="[2001:db8:cafe::17]:4711";proto=https'
    assert key(forwarded("10.0.0.1", value)) == "2001:db8:cafe::/64"


def test_forwarded_ipv4_with_port_is_read() -> None:
    """for="192.0.2.60:8080" is the client 192.0.2.60."""
    key = ClientKey(TRUSTED, header="forwarded")
    assert key(forwarded("10.0.0.1", 'for="192.0.2.60:8080"')) == "192.0.2.60"


@pytest.mark.parametrize(
    "value",
    [
        "for=unknown",
        "for=_hidden",
        "for=not-an-ip",
        'for="[1.2.3.4]"',
        'for="[2001:db8::1]:http"',
        "for=2001:db8::1",
        "proto=https",
        'for="1.2.3.4',
    ],
)
def test_forwarded_unreadable_node_stops_the_walk(value: str) -> None:
    """A node that names no address ends the walk at the last verified hop (the proxy)."""
    key = ClientKey(TRUSTED, header="forwarded")
    assert key(forwarded("10.0.0.1", f"for=1.2.3.4, {value}")) == "10.0.0.1"


def test_forwarded_comma_inside_quotes_cannot_add_a_hop() -> None:
    """A quoted value holding a comma stays one element: it cannot smuggle a for= node."""
    key = ClientKey(TRUSTED, header="forwarded")
    value = 'for=198.51.100.7;ext=", for=6.6.6.6"'
    assert key(forwarded("10.0.0.1", value)) == "198.51.100.7"


def test_only_the_configured_header_is_read() -> None:
    """Behind a proxy that writes Forwarded, a client's X-Forwarded-For is ignored, and back."""
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"forwarded", b"for=198.51.100.7")]
    request = {"type": "http", "client": ("10.0.0.1", 5000), "headers": headers}
    assert ClientKey(TRUSTED, header="forwarded")(request) == "198.51.100.7"
    assert ClientKey(TRUSTED)(request) == "6.6.6.6"
    assert ClientKey(TRUSTED, header="x-real-ip")(request) == "10.0.0.1"


def test_real_ip_is_ignored_without_trusted_proxies() -> None:
    """A client-written X-Real-IP never changes the key."""
    assert ClientKey(header="x-real-ip")(real_ip("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_real_ip_from_an_untrusted_peer_is_ignored() -> None:
    """A peer outside trusted_proxies is itself the client, whatever X-Real-IP says."""
    key = ClientKey(TRUSTED, header="X-Real-IP")
    assert key(real_ip("192.0.2.1", "1.2.3.4")) == "192.0.2.1"


def test_real_ip_from_a_trusted_proxy_is_the_client() -> None:
    """A trusted proxy's X-Real-IP names the client."""
    key = ClientKey(TRUSTED, header="x-real-ip")
    assert key(real_ip("10.0.0.1", "198.51.100.7")) == "198.51.100.7"


def test_real_ip_last_field_wins() -> None:
    """With a client's X-Real-IP passed along beside the proxy's, the proxy's (last) one counts."""
    key = ClientKey(TRUSTED, header="x-real-ip")
    assert key(real_ip("10.0.0.1", "6.6.6.6", "198.51.100.7")) == "198.51.100.7"


def test_real_ip_garbage_keeps_the_proxy() -> None:
    """An X-Real-IP that is not one IP address leaves the proxy as the key."""
    key = ClientKey(TRUSTED, header="x-real-ip")
    assert key(real_ip("10.0.0.1", "1.2.3.4, 5.6.7.8")) == "10.0.0.1"
    assert key(real_ip("10.0.0.1", "not-an-ip")) == "10.0.0.1"


def test_random_spoofed_values_share_one_bucket_per_peer() -> None:
    """Without trusted proxies, 100 different spoofed headers give one key per peer."""
    for name in ("forwarded", "x-real-ip", "x-forwarded-for"):
        key = ClientKey(header=name)
        values = {
            f"for=198.51.100.{i}" if name == "forwarded" else f"1.1.1.{i}" for i in range(100)
        }
        keys = {key(scope("203.0.113.9", name, v)) for v in values}
        assert keys == {"203.0.113.9"}


def test_unknown_header_names_the_parameter() -> None:
    """header= outside the three known names raises ValueError naming header and the value."""
    with pytest.raises(ValueError, match=r"header must be one of .* got 'x-client-ip'"):
        ClientKey(TRUSTED, header="x-client-ip")
