"""The middleware's view of one response: its status, and whether the client left early.

A client that goes away (an aborted upload, a closed tab mid-stream) says nothing about the
app's health, so the breaker must count it as neutral; otherwise a few aborted uploads would
open the circuit for everyone. The client's departure shows in two places only the server
sees: ``receive`` answers ``http.disconnect`` before the response is complete, or ``send``
raises (ASGI 2.4). :class:`Observed` wraps both and remembers it; an exception then counts as
neutral only if it is that departure (Starlette's ``ClientDisconnect``, the server's OSError),
so an app's own fault, even an OSError of its own, is still a failure.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from starlette.requests import ClientDisconnect

from .._core.breaker import NEUTRAL
from ._responses import Header
from ._types import Message, Receive, Send

__all__ = ["Observed"]

# What a send to a client that has gone away raises: OSError per ASGI 2.4 (uvicorn's
# ClientDisconnected is one), anyio's stream errors on servers built on anyio streams.
_CLIENT_GONE = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class Observed:
    """One request's wrapped ``send`` (adds the rate-limit fields, notes the status) and
    ``receive``; ``gone`` turns true when the client leaves before the response is complete."""

    __slots__ = ("complete", "extra", "gone", "inner_receive", "send", "status")

    def __init__(self, send: Send, extra: Sequence[Header], receive: Receive) -> None:
        self.send = send
        self.extra = extra
        self.inner_receive = receive
        self.status = 0
        self.complete = False
        self.gone = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            if self.extra:
                headers = [*message.get("headers", ()), *self.extra]
                message = {**message, "headers": headers}
        try:
            await self.send(message)
        except _CLIENT_GONE:
            # ASGI 2.4: a server raises OSError from send once the client is gone.
            self.gone = True
            raise
        if kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True

    async def receive(self) -> Message:
        message = await self.inner_receive()
        # Servers also answer http.disconnect once the response is complete (uvicorn does):
        # only a disconnect before that means the client left early.
        if message["type"] == "http.disconnect" and not self.complete:
            self.gone = True
        return message

    def outcome(self, exc: BaseException) -> int | None:
        """NEUTRAL when ``exc`` is the client's departure; None to let the breaker classify it."""
        if self.gone and _is_departure(exc):
            return NEUTRAL
        return None


def _is_departure(exc: BaseException) -> bool:
    """Whether ``exc`` (or every exception in a group) reports that the client went away."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(_is_departure_leaf)[1] is None
    return _is_departure_leaf(exc)


def _is_departure_leaf(exc: BaseException) -> bool:
    return isinstance(exc, (ClientDisconnect, *_CLIENT_GONE))
