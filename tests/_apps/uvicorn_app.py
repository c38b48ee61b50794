"""An app the uvicorn tests run in a subprocess (``uvicorn --app-dir tests/_apps uvicorn_app:app``).

Shutdown callbacks print ``callback:<name>`` to stdout, so the test can check their order.
``/slow`` holds a request until the file named by ``SEAWALL_TEST_GO`` exists.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from seawall import GracefulShutdown
from seawall.asgi import ResilienceMiddleware, seawall_lifespan

in_slow = 0
background_done: list[str] = []


def say(text: str) -> None:
    print(text, flush=True)


shutdown = GracefulShutdown(timeout=10)
shutdown.register("third", lambda: say("callback:third"), priority=30)
shutdown.register("first", lambda: say("callback:first"), priority=10)


async def second() -> None:
    say(f"callback:second in_flight={hook.in_flight}")


shutdown.register("second", second, priority=20)
hook = seawall_lifespan(shutdown=shutdown, drain_timeout=10, chain_sigterm=True)


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


async def slow(request: Request) -> Response:
    global in_slow
    in_slow += 1
    go = anyio.Path(os.environ["SEAWALL_TEST_GO"])
    # The test releases the requests from outside the process, through a file.
    while not await go.exists():  # noqa: ASYNC110
        await anyio.sleep(0.02)
    return JSONResponse({"ready_at_finish": hook.ready})


async def count(request: Request) -> Response:
    return JSONResponse({"in_slow": in_slow, "in_flight": hook.in_flight})


async def chunks() -> AsyncIterator[bytes]:
    for i in range(5):
        yield f"chunk{i};".encode()
        await anyio.sleep(0.01)


async def stream(request: Request) -> Response:
    return StreamingResponse(chunks(), media_type="text/plain")


async def with_background(request: Request) -> Response:
    return PlainTextResponse("queued", background=BackgroundTask(background_done.append, "done"))


async def background_status(request: Request) -> Response:
    return JSONResponse(background_done)


async def stuck(request: Request) -> Response:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


# A sub-app with its own short timeout, to see a real 504 without slowing the rest.
timed = ResilienceMiddleware(Starlette(routes=[Route("/stuck", stuck)]), request_timeout=0.3)

app = Starlette(
    routes=[
        Route("/", hello),
        Route("/slow", slow),
        Route("/count", count),
        Route("/stream", stream),
        Route("/bg", with_background),
        Route("/bg-status", background_status),
        Mount("/timed", app=timed),
    ],
    lifespan=hook,
)
app.add_middleware(
    ResilienceMiddleware,
    route_limits={"/": "3/hour"},
    trusted_proxies=["127.0.0.1"],
    max_concurrent=32,
    breaker=True,
    lifespan=hook,
    readiness_path="/readyz",
    liveness_path="/livez",
    exempt=["/count", "/bg-status"],
)
