"""The app of the uvicorn disconnect tests (served as `uvicorn_disconnect_app:app`).

``/breaker`` (exempt) reports the middleware breaker's counters, so the test can wait until the
server has settled every aborted request and then check exact counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from seawall import CircuitBreaker
from seawall.asgi import ResilienceMiddleware

breaker = CircuitBreaker(max_failures=3, reset_timeout=3600)


async def upload(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)} bytes")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


async def endless() -> AsyncIterator[bytes]:
    while True:
        yield b"tick;" * 100
        await anyio.sleep(0.01)


async def stream(request: Request) -> Response:
    return StreamingResponse(endless(), media_type="text/plain")


async def counters(request: Request) -> Response:
    s = breaker.stats
    return JSONResponse(
        {
            "state": s.state.name,
            "success": s.successful_calls,
            "failure": s.failed_calls,
            "neutral": s.neutral_calls,
        }
    )


app = Starlette(
    routes=[
        Route("/upload", upload, methods=["POST"]),
        Route("/boom", boom),
        Route("/", hello),
        Route("/stream", stream),
        Route("/breaker", counters),
    ]
)
app.add_middleware(ResilienceMiddleware, breaker=breaker, exempt=["/breaker"])
