"""WebSockets: handshakes limited per client (429 or 1008), and a message rate per connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seawall.asgi import ResilienceMiddleware
from seawall.asgi._types import Message, Scope
from seawall.testing import FakeClock, disable_gates, reset_gates

pytestmark = pytest.mark.anyio

DENIAL = {"websocket.http.response": {}}


class Echo:
    """A raw ASGI websocket app: accepts, echoes each text, records how it ended."""

    def __init__(self) -> None:
        self.ended: list[int] = []
        self.connections = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        self.connections += 1
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.ended.append(message["code"])
                return
            await send({"type": "websocket.send", "text": message["text"]})


async def connect(
    app: Any, texts: tuple[str, ...] = (), host: str = "192.0.2.1", extensions: Any = None
) -> list[Message]:
    """Run one websocket session: connect, send ``texts``, then disconnect (1000)."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        *({"type": "websocket.receive", "text": t} for t in texts),
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [],
        "client": (host, 40000),
        "extensions": extensions or {},
    }
    await app(scope, receive, send)
    return sent


async def test_handshake_over_the_limit_gets_a_429(clock: FakeClock) -> None:
    """With the denial extension, the third handshake of 2/minute is an HTTP 429 with fields."""
    echo = Echo()
    mw = ResilienceMiddleware(echo, websocket_limit="2/minute", clock=clock)
    for _ in range(2):
        accepted = await connect(mw, extensions=DENIAL)
        assert accepted[0] == {"type": "websocket.accept"}
    start, body = await connect(mw, extensions=DENIAL)
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 429
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"30"
    assert headers[b"ratelimit-policy"] == b'"websocket";q=2;w=60'
    assert headers[b"ratelimit"] == b'"websocket";r=0;t=30'
    assert headers[b"content-type"] == b"application/problem+json"
    assert body["type"] == "websocket.http.response.body"
    assert b'"status":429' in body["body"]
    assert echo.connections == 2


async def test_handshake_over_the_limit_without_the_extension_closes_1008(
    clock: FakeClock,
) -> None:
    """Without the denial extension the refused handshake is closed with 1008 before accept."""
    echo = Echo()
    mw = ResilienceMiddleware(echo, websocket_limit="1/minute", clock=clock)
    await connect(mw)
    assert await connect(mw) == [{"type": "websocket.close", "code": 1008}]
    clock.advance(60)
    assert (await connect(mw))[0] == {"type": "websocket.accept"}
    assert echo.connections == 2


async def test_handshakes_are_limited_per_client(clock: FakeClock) -> None:
    """Another client address has its own handshake bucket."""
    mw = ResilienceMiddleware(Echo(), websocket_limit="1/minute", clock=clock)
    await connect(mw, host="192.0.2.1")
    assert (await connect(mw, host="192.0.2.2"))[0] == {"type": "websocket.accept"}


async def test_handshake_limit_is_shared_through_the_store(
    clock: FakeClock, tmp_path: Path
) -> None:
    """Two workers on one file store share a client's handshake quota."""
    store = f"file://{tmp_path}"
    one, two = (
        ResilienceMiddleware(Echo(), websocket_limit="1/minute", store=store, clock=clock)
        for _ in range(2)
    )
    assert (await connect(one))[0] == {"type": "websocket.accept"}
    assert await connect(two) == [{"type": "websocket.close", "code": 1008}]


async def test_message_beyond_the_rate_closes_the_connection(clock: FakeClock) -> None:
    """At 2/second the third message closes with 1008; the app sees a 1008 disconnect."""
    echo = Echo()
    mw = ResilienceMiddleware(echo, websocket_message_rate="2/second", clock=clock)
    sent = await connect(mw, ("a", "b", "c", "d"))
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": "a"},
        {"type": "websocket.send", "text": "b"},
        {"type": "websocket.close", "code": 1008},
    ]
    assert echo.ended == [1008]


async def test_message_rate_is_per_connection(clock: FakeClock) -> None:
    """A new connection starts with a full bucket of its own."""
    echo = Echo()
    mw = ResilienceMiddleware(echo, websocket_message_rate="1/minute", clock=clock)
    first = await connect(mw, ("a",))
    second = await connect(mw, ("b",))
    assert first[1:] == [{"type": "websocket.send", "text": "a"}]
    assert second[1:] == [{"type": "websocket.send", "text": "b"}]
    assert echo.ended == [1000, 1000]


async def test_disabled_gates_let_websockets_through(clock: FakeClock) -> None:
    """Inside disable_gates(), handshakes and messages are not limited."""
    echo = Echo()
    mw = ResilienceMiddleware(
        echo, websocket_limit="1/minute", websocket_message_rate="1/minute", clock=clock
    )
    with disable_gates():
        sessions = [await connect(mw, ("a", "b")) for _ in range(2)]
    assert [len(s) for s in sessions] == [3, 3]
    assert echo.ended == [1000, 1000]


async def test_reset_gates_forgets_spent_handshakes(clock: FakeClock) -> None:
    """reset_gates() gives a client its handshake quota back."""
    mw = ResilienceMiddleware(Echo(), websocket_limit="1/minute", clock=clock)
    await connect(mw)
    refused = await connect(mw)
    reset_gates()
    assert refused == [{"type": "websocket.close", "code": 1008}]
    assert (await connect(mw))[0] == {"type": "websocket.accept"}


async def test_report_only_handshake_is_counted_and_accepted(clock: FakeClock) -> None:
    """report_only='rate_limit': a handshake over the limit is counted, then accepted."""
    echo = Echo()
    mw = ResilienceMiddleware(
        echo, websocket_limit="1/minute", report_only="rate_limit", clock=clock
    )
    sessions = [await connect(mw, extensions=DENIAL) for _ in range(2)]
    assert [s[0] for s in sessions] == [{"type": "websocket.accept"}] * 2
    assert mw.report_only_counts == {"rate_limited": 1}
    assert echo.connections == 2


async def test_websockets_pass_through_unless_configured(clock: FakeClock) -> None:
    """An HTTP rate limit alone leaves websocket scopes untouched."""
    echo = Echo()
    mw = ResilienceMiddleware(echo, rate_limit="1/minute", clock=clock)
    sessions = [await connect(mw, ("a",)) for _ in range(3)]
    assert [s[0]["type"] for s in sessions] == ["websocket.accept"] * 3


def test_bad_websocket_limit_names_the_parameter() -> None:
    """An unreadable websocket limit raises ValueError naming the option."""
    with pytest.raises(ValueError, match="websocket_message_rate"):
        ResilienceMiddleware(Echo(), websocket_message_rate="fast")
