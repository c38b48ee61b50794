"""FastAPI: dependency and decorator limits, and the example app."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from _paths import EXAMPLES
from seawall.asgi import (
    RateLimit,
    RateLimited,
    ResilienceMiddleware,
    limit,
    rate_limit_exceeded_handler,
)
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio

EXAMPLE = EXAMPLES / "fastapi_app.py"


def client(app: Any, host: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def fastapi_app(clock: FakeClock, *, middleware: bool = True, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/login", dependencies=[Depends(RateLimit("2/minute", clock=clock))])
    async def login(username: str = "x") -> dict[str, str]:
        return {"user": username}

    @app.get("/items/{item_id}")
    @limit("1/minute")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if middleware:
        app.add_middleware(ResilienceMiddleware, clock=clock, **options)
    else:
        app.add_exception_handler(RateLimited, rate_limit_exceeded_handler)
    return app


async def test_dependency_limit_is_rendered_by_the_middleware(clock: FakeClock) -> None:
    """Depends(RateLimit('2/minute')): the third call is a problem+json 429 with the fields."""
    app = fastapi_app(clock)
    async with client(app) as c:
        codes = [(await c.post("/login")).status_code for _ in range(2)]
        refused = await c.post("/login")
    assert codes == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["ratelimit-policy"] == '"endpoint";q=2;w=60'
    assert refused.headers["ratelimit"] == '"endpoint";r=0;t=30'
    assert refused.json()["violated-policies"] == ["endpoint"]


async def test_dependency_limit_without_the_middleware(clock: FakeClock) -> None:
    """With the exception handler instead of the middleware, the 429 looks the same."""
    app = fastapi_app(clock, middleware=False)
    async with client(app) as c:
        codes = [(await c.post("/login")).status_code for _ in range(3)]
        refused = await c.post("/login")
    assert codes == [200, 200, 429]
    assert refused.headers["retry-after"] == "30"
    assert refused.json()["status"] == 429


async def test_dependency_uses_the_middlewares_proxy_aware_key(clock: FakeClock) -> None:
    """Behind a trusted proxy the dependency limits each forwarded client separately."""
    app = fastapi_app(clock, trusted_proxies=["10.0.0.0/8"])
    async with client(app, "10.0.0.2") as c:
        a = [
            (await c.post("/login", headers={"x-forwarded-for": "198.51.100.1"})).status_code
            for _ in range(3)
        ]
        b = [
            (await c.post("/login", headers={"x-forwarded-for": "198.51.100.2"})).status_code
            for _ in range(3)
        ]
    assert a == [200, 200, 429]
    assert b == [200, 200, 429]


async def test_decorator_limit_on_a_fastapi_route(clock: FakeClock) -> None:
    """@limit under @app.get limits per client across path-parameter values."""
    app = fastapi_app(clock, rate_limit="100/minute")
    async with client(app) as c:
        codes = [(await c.get(f"/items/{i}")).status_code for i in (1, 2)]
    assert codes == [200, 429]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seawall_example_fastapi", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_example_app_end_to_end() -> None:
    """The example serves, limits logins at 5/minute, drains and runs its callbacks in order."""
    example = load_example()
    app = example.app
    to_app, app_in = anyio.create_memory_object_stream[Any](4)
    app_out, from_app = anyio.create_memory_object_stream[Any](4)
    with to_app, app_in, app_out, from_app:
        async with client(app) as c, anyio.create_task_group() as tg:
            tg.start_soon(
                app,
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                app_in.receive,
                app_out.send,
            )
            await to_app.send({"type": "lifespan.startup"})
            assert (await from_app.receive())["type"] == "lifespan.startup.complete"
            item = await c.get("/items/7")
            assert (item.status_code, item.json()) == (200, {"item_id": 7})
            assert item.headers["ratelimit"].startswith('"default";r=99;')
            logins = [(await c.post("/login")).status_code for _ in range(6)]
            assert logins == [200] * 5 + [429]
            assert (await c.get("/readyz")).status_code == 200
            assert (await c.post("/-/drain")).status_code == 403  # not a loopback peer
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
    assert example.closed == ["stop-consumers", "close-database"]
