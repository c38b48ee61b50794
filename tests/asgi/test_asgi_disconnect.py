"""A client that goes away is neutral for the middleware's breaker; the app's own faults are not.

Driven in process through raw ASGI messages: the client's side is a script of ``receive``
messages and a ``send`` that may fail the way a server's does once the client is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from seawall import CircuitBreaker, CircuitState
from seawall.asgi import ResilienceMiddleware
from seawall.asgi._types import Message
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


class ClientGone(OSError):
    """What a server implementing ASGI 2.4 raises from ``send`` once the client is gone."""


class Client:
    """One request's client side: body chunks, then a disconnect or a patient wait."""

    def __init__(
        self,
        *chunks: bytes,
        disconnect: bool = True,
        gone_after: anyio.Event | None = None,
        send_fails_after: int | None = None,
    ) -> None:
        self.messages: list[Message] = [
            {"type": "http.request", "body": c, "more_body": True} for c in chunks
        ]
        if not disconnect:
            self.messages.append({"type": "http.request", "body": b"", "more_body": False})
        self.gone_after = gone_after
        self.send_fails_after = send_fails_after
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        if self.gone_after is not None:
            await self.gone_after.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.send_fails_after is not None and len(self.sent) >= self.send_fails_after:
            raise ClientGone("client disconnected")
        self.sent.append(message)


class Chunks:
    """A body iterator that needs no closing (an abandoned generator would warn on trio)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)


def scope(method: str, path: str, spec: str = "2.3") -> dict[str, Any]:
    headers = [(b"content-length", b"1000")] if method == "POST" else []
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": spec}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": b"", "headers": headers, "client": ("192.0.2.1", 1),
        "server": ("t", 80),
    }  # fmt: skip


async def upload(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)} bytes")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


def build(
    clock: FakeClock, *routes: tuple[str, Callable[[Request], Awaitable[Response]]]
) -> tuple[Starlette, CircuitBreaker]:
    breaker = CircuitBreaker(max_failures=3, reset_timeout=60, clock=clock)
    defaults = [("/upload", upload), ("/boom", boom), ("/", hello)]
    app = Starlette(routes=[Route(p, f, methods=["GET", "POST"]) for p, f in [*routes, *defaults]])
    app.add_middleware(ResilienceMiddleware, breaker=breaker, clock=clock)
    return app, breaker


async def abort_upload(app: Starlette) -> None:
    with pytest.raises(ClientDisconnect):
        await app(scope("POST", "/upload"), Client(b"x" * 10).receive, Client().send)


async def get(app: Starlette, path: str) -> int:
    client = Client(disconnect=False)
    with contextlib.suppress(RuntimeError):  # the app's own fault, after Starlette's 500
        await app(scope("GET", path), client.receive, client.send)
    return int(client.sent[0]["status"])


def outcomes(breaker: CircuitBreaker) -> tuple[int, int, int, CircuitState]:
    stats = breaker.stats
    return stats.successful_calls, stats.failed_calls, stats.neutral_calls, stats.state


async def test_aborted_uploads_leave_the_breaker_closed(clock: FakeClock) -> None:
    """Five uploads aborted mid-body count as neutral, so a healthy request still gets 200."""
    app, breaker = build(clock)
    for _ in range(5):
        await abort_upload(app)
    assert outcomes(breaker) == (0, 0, 5, CircuitState.CLOSED)
    assert await get(app, "/") == 200


async def test_real_failures_still_open_the_breaker_after_aborted_uploads(
    clock: FakeClock,
) -> None:
    """After five aborted uploads, max_failures (3) real exceptions open the circuit."""
    app, breaker = build(clock)
    for _ in range(5):
        await abort_upload(app)
    assert [await get(app, "/boom") for _ in range(3)] == [500, 500, 500]
    assert outcomes(breaker) == (0, 3, 5, CircuitState.OPEN)
    assert await get(app, "/") == 503


async def test_complete_upload_is_a_success(clock: FakeClock) -> None:
    """An upload whose body arrives whole is an ordinary success."""
    app, breaker = build(clock)
    client = Client(b"x" * 10, disconnect=False)
    await app(scope("POST", "/upload"), client.receive, client.send)
    assert client.sent[1]["body"] == b"10 bytes"
    assert outcomes(breaker) == (1, 0, 0, CircuitState.CLOSED)


async def test_disconnect_while_streaming_is_neutral(clock: FakeClock) -> None:
    """A client leaving mid-stream (http.disconnect, ASGI 2.3) is neutral, not a success."""
    first_chunk = anyio.Event()

    async def endless() -> Any:
        while True:
            yield b"tick;"
            first_chunk.set()
            await anyio.sleep_forever()

    async def stream(request: Request) -> Response:
        return StreamingResponse(endless())

    app, breaker = build(clock, ("/stream", stream))
    client = Client(disconnect=False, gone_after=first_chunk)
    await app(scope("GET", "/stream"), client.receive, client.send)
    assert [m.get("body") for m in client.sent] == [None, b"tick;"]
    assert outcomes(breaker) == (0, 0, 1, CircuitState.CLOSED)


async def test_send_failing_on_a_gone_client_is_neutral(clock: FakeClock) -> None:
    """A send that raises OSError (ASGI 2.4: the client is gone) is neutral, and re-raised."""

    async def stream(request: Request) -> Response:
        return StreamingResponse(Chunks(b"a", b"b", b"c"))

    app, breaker = build(clock, ("/stream", stream))
    for _ in range(5):
        client = Client(disconnect=False, send_fails_after=2)
        # Starlette turns the failed send into ClientDisconnect (ASGI 2.4); an older release
        # (0.40, our floor) raises the server's OSError inside an ExceptionGroup instead.
        with pytest.raises((ClientDisconnect, ExceptionGroup)) as raised:
            await app(scope("GET", "/stream", spec="2.4"), client.receive, client.send)
        assert [type(leaf) for leaf in _leaves(raised.value)] in ([ClientDisconnect], [ClientGone])
    assert outcomes(breaker) == (0, 0, 5, CircuitState.CLOSED)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def test_app_exception_after_a_disconnect_is_a_failure(clock: FakeClock) -> None:
    """An app that sees the client leave and then fails for its own reasons still counts."""

    async def leaves_then_breaks(request: Request) -> Response:
        assert await request.is_disconnected()
        raise RuntimeError("bug")

    app, breaker = build(clock, ("/fragile", leaves_then_breaks))
    with pytest.raises(RuntimeError, match="bug"):
        await app(scope("GET", "/fragile"), Client().receive, Client().send)
    assert outcomes(breaker) == (0, 1, 0, CircuitState.CLOSED)


async def test_app_oserror_with_the_client_present_is_a_failure(clock: FakeClock) -> None:
    """An OSError of the app's own (a refused database connection) is a failure."""

    async def no_database(request: Request) -> Response:
        raise ConnectionRefusedError("database down")

    app, breaker = build(clock, ("/db", no_database))
    client = Client(disconnect=False)
    with pytest.raises(ConnectionRefusedError):
        await app(scope("GET", "/db"), client.receive, client.send)
    assert outcomes(breaker) == (0, 1, 0, CircuitState.CLOSED)


async def test_disconnect_after_the_response_is_complete_changes_nothing(
    clock: FakeClock,
) -> None:
    """A server's http.disconnect after the final body message leaves a 5xx a failure."""

    async def fails_then_listens(request: Request) -> Response:
        return PlainTextResponse("down", status_code=502)

    async def app_then_listen(scope_: Any, receive: Any, send: Any) -> None:
        await starlette_app(scope_, receive, send)
        assert (await receive())["type"] == "http.disconnect"  # what uvicorn answers now

    starlette_app = Starlette(routes=[Route("/", fails_then_listens)])
    breaker = CircuitBreaker(max_failures=3, reset_timeout=60, clock=clock)
    mw = ResilienceMiddleware(app_then_listen, breaker=breaker, clock=clock)
    client = Client()
    await mw(scope("GET", "/"), client.receive, client.send)
    assert client.sent[0]["status"] == 502
    assert outcomes(breaker) == (0, 1, 0, CircuitState.CLOSED)


async def read_in_a_task_group(request: Request, also_fail: bool) -> Response:
    async def read() -> None:
        await request.body()

    async def fail() -> None:
        raise RuntimeError("bug")

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        if also_fail:
            tg.start_soon(fail)
    return PlainTextResponse("unreachable")


async def test_group_of_departures_is_neutral(clock: FakeClock) -> None:
    """An exception group holding only the client's departure is neutral."""

    async def grouped(request: Request) -> Response:
        return await read_in_a_task_group(request, also_fail=False)

    app, breaker = build(clock, ("/grouped", grouped))
    with pytest.raises(ExceptionGroup):
        await app(scope("POST", "/grouped"), Client(b"x").receive, Client().send)
    assert outcomes(breaker) == (0, 0, 1, CircuitState.CLOSED)


async def test_group_with_an_app_error_is_a_failure(clock: FakeClock) -> None:
    """An exception group holding the departure and an app error is a failure."""

    async def grouped(request: Request) -> Response:
        return await read_in_a_task_group(request, also_fail=True)

    app, breaker = build(clock, ("/grouped", grouped))
    with pytest.raises(ExceptionGroup):
        await app(scope("POST", "/grouped"), Client(b"x").receive, Client().send)
    assert outcomes(breaker) == (0, 1, 0, CircuitState.CLOSED)
