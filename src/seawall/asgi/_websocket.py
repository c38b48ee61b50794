"""WebSocket gates: handshakes limited per client, and a message rate per connection.

``ResilienceMiddleware(websocket_limit="10/minute")`` charges each handshake to the client's
key (the same key function, proxies and testing switch as HTTP requests) in a limit of its
own (kept in the middleware's ``store=`` when it has one, like its HTTP limits). A refused
handshake is answered before the app sees it:

* with a real ``429`` (problem document, ``Retry-After``, RateLimit fields) through the ASGI
  *websocket denial response* extension (``websocket.http.response.start``), when the server
  lists ``"websocket.http.response"`` in ``scope["extensions"]`` (uvicorn does);
* else with ``websocket.close`` code 1008 (policy violation) before the accept, which servers
  turn into a refused handshake (uvicorn: 403).

``websocket_message_rate="20/second"`` gives every accepted connection its own bucket: a
message beyond it closes the connection with 1008, and the app receives
``websocket.disconnect`` (code 1008) in place of the message.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .._clock import Clock
from .._gates import OFF
from .._limiter.limiter import RateLimiter
from ._dependency import CLIENT_KEY
from ._limits import LimitGroup, LimitSpec, parse_limits
from ._responses import Header, Rejection
from ._types import Message, Receive, Scope, Send

__all__ = ["WebSocketGate", "websocket_gate"]

_DENIAL = "websocket.http.response"
_POLICY_VIOLATION = 1008


def websocket_gate(
    middleware: Any,
    limit: LimitSpec | None,
    message_rate: LimitSpec | None,
    *,
    max_keys: int,
    clock: Clock | None,
    shared: dict[str, Any] | None = None,
) -> WebSocketGate | None:
    """The gate for ``websocket_limit`` / ``websocket_message_rate``, or None if neither."""
    if limit is None and message_rate is None:
        return None
    group = None
    if limit is not None:
        limits = parse_limits("websocket_limit", limit)
        group = LimitGroup("websocket", limits, max_keys=max_keys, clock=clock, **(shared or {}))
    rates = () if message_rate is None else parse_limits("websocket_message_rate", message_rate)
    return WebSocketGate(middleware, group, rates, clock)


class WebSocketGate:
    """Applies the handshake limit and the message rate to ``websocket`` scopes."""

    __slots__ = ("_clock", "_mw", "_rates", "group")

    def __init__(
        self, middleware: Any, group: LimitGroup | None, rates: Any, clock: Clock | None
    ) -> None:
        # The ResilienceMiddleware it serves (not annotated as one: importing its module
        # here would close an import cycle); its key function and verdicts are reused.
        self._mw = middleware
        self.group = group
        self._rates = rates
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mw = self._mw
        if OFF:  # seawall.testing.disable_gates()
            await mw.app(scope, receive, send)
            return
        if self.group is not None:
            sync_key = mw._sync_key
            key: Hashable = sync_key(scope) if sync_key is not None else await mw._key.akey(scope)
            scope[CLIENT_KEY] = key
            extra: list[Header] = []
            group = self.group
            granted, states = await group.ahit(key) if group.shared else group.hit(key)
            rejection = mw._verdict(group, granted, states, extra)
            if rejection is not None:
                report_only = mw._report_only
                if report_only is None or not report_only.covers("rate_limit"):
                    await _deny(scope, receive, send, rejection)
                    return
                report_only.note(scope, rejection)
        if self._rates:
            receive = self._metered(receive, send)
        await mw.app(scope, receive, send)

    def _metered(self, receive: Receive, send: Send) -> Receive:
        buckets = [
            RateLimiter(rate=r.amount, per=r.window, burst=r.amount, clock=self._clock)
            for r in self._rates
        ]
        closed = False

        async def metered_receive() -> Message:
            nonlocal closed
            if closed:
                return {"type": "websocket.disconnect", "code": _POLICY_VIOLATION}
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            if all(bucket.try_acquire() for bucket in buckets):
                return message
            closed = True
            await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
            return {"type": "websocket.disconnect", "code": _POLICY_VIOLATION}

        return metered_receive


async def _deny(scope: Scope, receive: Receive, send: Send, rejection: Rejection) -> None:
    message = await receive()  # the handshake: websocket.connect
    if message["type"] != "websocket.connect":
        return  # the client left before its handshake was answered
    if _DENIAL in scope.get("extensions", {}):
        body = rejection.body()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            *rejection.headers,
        ]
        start = {"type": "websocket.http.response.start", "status": rejection.status}
        await send({**start, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
