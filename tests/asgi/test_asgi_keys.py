"""Keys users need: async key functions, keys after authentication, a dependency's own key."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall.asgi import RateLimit, ResilienceMiddleware
from seawall.asgi._types import Scope
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


def client(app: Any, host: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def starlette_app(**options: Any) -> Starlette:
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, **options)
    return app


async def codes(c: httpx.AsyncClient, n: int, **headers: str) -> list[int]:
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    return [(await c.get("/", headers=fields)).status_code for _ in range(n)]


def tenant_of(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-tenant":
            return value.decode()
    return None


async def test_async_key_function_picks_the_bucket(clock: FakeClock) -> None:
    """key=async def ...: each awaited key has its own bucket."""

    async def tenant(scope: Scope) -> Hashable:
        return tenant_of(scope)

    app = starlette_app(rate_limit="2/minute", key=tenant, clock=clock)
    async with client(app) as c:
        a = await codes(c, 3, x_tenant="a")
        b = await codes(c, 3, x_tenant="b")
    assert a == [200, 200, 429]
    assert b == [200, 200, 429]


async def test_key_answering_none_falls_back_to_the_client_address(clock: FakeClock) -> None:
    """A key that answers None (an anonymous request) is charged to the client's address."""

    async def tenant(scope: Scope) -> Hashable:
        return tenant_of(scope)

    app = starlette_app(rate_limit="2/minute", key=tenant, clock=clock)
    async with client(app, "192.0.2.1") as one, client(app, "192.0.2.2") as two:
        first = await codes(one, 3)
        second = await codes(two, 2)
        tenant = await codes(one, 1, x_tenant="a")
    assert (first, second, tenant) == ([200, 200, 429], [200, 200], [200])


async def test_sync_key_answering_none_falls_back_to_the_client_address(clock: FakeClock) -> None:
    """The same fallback holds for a plain (sync) key function."""
    app = starlette_app(rate_limit="1/minute", key=tenant_of, clock=clock)
    async with client(app, "192.0.2.1") as one, client(app, "192.0.2.2") as two:
        assert await codes(one, 2) == [200, 429]
        assert await codes(two, 1) == [200]
        assert await codes(one, 1, x_tenant="a") == [200]


class HeaderAuth(AuthenticationBackend):
    """Authenticates ``Authorization: user <name>``; anyone else stays anonymous."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scheme, _, name = conn.headers.get("authorization", "").partition(" ")
        if scheme != "user":
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


def user_key(scope: Scope) -> Hashable:
    user = scope.get("user")
    return f"user:{user.username}" if user is not None and user.is_authenticated else None


async def test_key_from_the_authenticated_user(clock: FakeClock) -> None:
    """With AuthenticationMiddleware added after (so outside) ours, scope['user'] is the key."""
    app = starlette_app(rate_limit="2/minute", key=user_key, clock=clock)
    app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())
    async with client(app) as c:  # one address, two users and anonymous requests
        alice = await codes(c, 3, authorization="user alice")
        bob = await codes(c, 3, authorization="user bob")
        anonymous = await codes(c, 3)
    assert alice == [200, 200, 429]
    assert bob == [200, 200, 429]
    assert anonymous == [200, 200, 429]


def fastapi_app(clock: FakeClock, key: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/export", dependencies=[Depends(RateLimit("1/minute", key=key, clock=clock))])
    async def export() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(ResilienceMiddleware, rate_limit="100/minute", clock=clock)
    return app


def api_key(request: Request) -> str | None:
    return request.headers.get("x-api-key")


async def test_dependency_key_wins_over_the_middleware_key(clock: FakeClock) -> None:
    """Depends(RateLimit(key=...)) charges its own key, not the address the middleware set."""
    app = fastapi_app(clock, api_key)
    async with client(app) as c:  # one address, two API keys
        a = [(await c.get("/export", headers={"x-api-key": "a"})).status_code for _ in range(2)]
        b = [(await c.get("/export", headers={"x-api-key": "b"})).status_code for _ in range(2)]
    assert a == [200, 429]
    assert b == [200, 429]


async def test_async_dependency_key(clock: FakeClock) -> None:
    """An async dependency key is awaited; answering None falls back to the middleware's key."""

    async def key(request: Request) -> str | None:
        return api_key(request)

    app = fastapi_app(clock, key)
    async with client(app, "192.0.2.1") as one, client(app, "192.0.2.2") as two:
        a = [(await one.get("/export", headers={"x-api-key": "a"})).status_code for _ in range(2)]
        anonymous = [(await one.get("/export")).status_code for _ in range(2)]
        other = [(await two.get("/export")).status_code for _ in range(1)]
    assert (a, anonymous, other) == ([200, 429], [200, 429], [200])


async def test_middleware_reads_forwarded_from_its_trusted_proxy(clock: FakeClock) -> None:
    """proxy_header='forwarded': two clients behind one trusted proxy have two buckets."""
    app = starlette_app(
        rate_limit="1/minute",
        trusted_proxies=["10.0.0.0/8"],
        proxy_header="forwarded",
        clock=clock,
    )
    async with client(app, "10.0.0.2") as c:
        a = await codes(c, 2, forwarded="for=198.51.100.1", x_forwarded_for="6.6.6.6")
        b = await codes(c, 2, forwarded="for=198.51.100.2", x_forwarded_for="6.6.6.6")
    assert a == [200, 429]
    assert b == [200, 429]


@pytest.mark.parametrize(
    ("header", "values"),
    [
        ("forwarded", [f"for=198.51.100.{i}" for i in range(3)]),
        ("x-real-ip", [f"198.51.100.{i}" for i in range(3)]),
    ],
)
async def test_spoofed_header_from_an_untrusted_peer_mints_no_bucket(
    clock: FakeClock, header: str, values: list[str]
) -> None:
    """A client outside trusted_proxies writing a new address each time has one bucket."""
    app = starlette_app(
        rate_limit="1/minute", trusted_proxies=["10.0.0.0/8"], proxy_header=header, clock=clock
    )
    async with client(app, "203.0.113.9") as c:
        codes = [(await c.get("/", headers={header: v})).status_code for v in values]
    assert codes == [200, 429, 429]


def test_key_that_is_not_callable_names_the_parameter() -> None:
    """key= that is not callable raises TypeError naming key."""
    app = starlette_app(key="user")
    with pytest.raises(TypeError, match="key must be a callable"):
        app.build_middleware_stack()
    with pytest.raises(TypeError, match="key must be a callable"):
        RateLimit("1/minute", key="user")  # type: ignore[arg-type]
