"""Route limits on FastAPI apps built with include_router: FastAPI's choice, every version."""

from __future__ import annotations

import contextlib
import itertools
import sys
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, WebSocket
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from seawall import ConfigError
from seawall.asgi import ResilienceMiddleware, limit
from seawall.asgi._routes import RouteIndex
from seawall.asgi._types import Message, Receive, Scope, Send
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


def endpoint() -> Any:
    """A new endpoint function, so the route FastAPI ran can be told from its endpoint."""

    async def each(request: Request) -> Response:
        return PlainTextResponse("ok")

    return each


async def plain_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("plain")(scope, receive, send)


async def socket(websocket: WebSocket) -> None:
    await websocket.close()


def rich_app() -> FastAPI:
    """Nested included routers with prefixes, parameters, mounts and shadowing routes."""
    deep = APIRouter()
    deep.add_api_route("/{id:int}", endpoint(), methods=["GET"])
    deep.add_api_route("/special", endpoint())
    users = APIRouter(prefix="/users")
    users.add_api_route("/{uid}", endpoint(), methods=["GET"])
    users.add_api_route("/me", endpoint(), methods=["POST"])  # GET /users/me goes to {uid}
    users.include_router(deep, prefix="/deep")
    users.add_route("/plain", endpoint())  # a Starlette route in an APIRouter
    users.mount("/static", app=plain_asgi)
    users.add_api_websocket_route("/ws", socket)
    later = APIRouter()
    later.add_api_route("/users/x", endpoint())  # GET shadowed by /users/{uid}
    later.add_api_route("/{tenant}/items", endpoint())
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_api_route("/items/{name}", endpoint(), methods=["POST"])
    app.include_router(users, prefix="/api")
    app.include_router(later, prefix="/api")
    app.add_api_route("/login", endpoint(), methods=["POST"])
    app.add_api_route("/api/users/me", endpoint())  # only PUT... ever reaches it
    return app


SEGMENTS = ["", "api", "users", "me", "1", "deep", "special", "plain", "static"]
SEGMENTS += ["x", "items", "login", "ws"]


def paths() -> list[str]:
    """Every path of one to three segments, and of four under '/api/users' (the deep router)."""
    short = [
        "/" + "/".join(parts)
        for depth in (1, 2, 3)
        for parts in itertools.product(SEGMENTS, repeat=depth)
    ]
    return short + [
        "/api/users/" + "/".join(parts) for parts in itertools.product(SEGMENTS, repeat=2)
    ]


def http_scope(path: str, method: str) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t")],
        "client": ("192.0.2.1", 1),
        "server": ("t", 80),
    }


def endpoint_of_resolved(route: BaseRoute | None) -> Any:
    return None if route is None else getattr(route, "endpoint", None) or route.app  # type: ignore[attr-defined]


async def fastapi_choice(app: FastAPI, scope: Scope) -> Any:
    """The endpoint (or mounted app) FastAPI's router dispatched ``scope`` to, or None."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    # A 422 or 405 is raised for the app's exception handlers: the route was chosen by then.
    with contextlib.suppress(Exception):
        await app.router(scope, receive, send)
    return scope.get("endpoint")


async def test_index_picks_the_endpoint_fastapi_runs() -> None:
    """For 2,548 paths x 3 methods through nested routers, the index finds FastAPI's endpoint."""
    app = rich_app()
    index = RouteIndex(app.routes)
    checked = 0
    for path, method in itertools.product(paths(), ("GET", "POST", "PUT")):
        scope = http_scope(path, method)
        resolved = index.resolve(dict(scope))
        expected = await fastapi_choice(app, scope)
        got = endpoint_of_resolved(None if resolved is None else resolved.route)
        assert got is expected, (path, method)
        checked += 1
    assert checked == 3 * (13 + 13**2 + 13**3 + 13**2)


def test_included_routes_are_filed_by_their_prefixed_path() -> None:
    """300 routes included under '/v1': '/v1/items299/5' asks one, its path prefixed."""
    router = APIRouter()
    for i in range(300):
        router.add_api_route(f"/items{i}/{{item_id}}", endpoint())
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router, prefix="/v1")
    candidates = RouteIndex(app.routes).candidates("/v1/items299/5")
    assert [route.path for _, route in candidates] == ["/v1/items299/{item_id}"]  # type: ignore[attr-defined]


# -- through the middleware --------------------------------------------------------------------


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def statuses(app: Any, method: str, path: str, n: int) -> list[int]:
    async with client(app) as c:
        return [(await c.request(method, path)).status_code for _ in range(n)]


def fastapi_app(*routers: tuple[APIRouter, str]) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for router, prefix in routers:
        app.include_router(router, prefix=prefix)
    return app


async def test_limit_on_a_route_of_an_included_router(clock: FakeClock) -> None:
    """@limit('1/minute') on '/x' included under '/api': GET /api/x three times -> 200, 429, 429."""
    router = APIRouter()

    @router.get("/x")
    @limit("1/minute")
    async def x() -> dict[str, int]:
        return {"ok": 1}

    app = fastapi_app((router, "/api"))
    app.add_middleware(ResilienceMiddleware, clock=clock)
    assert await statuses(app, "GET", "/api/x", 3) == [200, 429, 429]


async def test_limit_in_a_nested_router_with_a_path_parameter(clock: FakeClock) -> None:
    """@limit on '/{item_id}' two routers deep limits '/v1/items/{item_id}' for every id."""
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    @limit("1/minute")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    outer = APIRouter()
    outer.include_router(items)
    app = fastapi_app((outer, "/v1"))
    app.add_middleware(ResilienceMiddleware, rate_limit="5/minute", clock=clock)
    assert await statuses(app, "GET", "/v1/items/1", 1) == [200]
    assert await statuses(app, "GET", "/v1/items/2", 1) == [429]


async def test_route_limits_key_names_the_prefixed_template(clock: FakeClock) -> None:
    """route_limits={'POST /api/login': ...} limits the included '/login', not its GET."""
    router = APIRouter()
    router.add_api_route("/login", endpoint(), methods=["GET", "POST"])
    app = fastapi_app((router, "/api"))
    app.add_middleware(
        ResilienceMiddleware,
        rate_limit="3/minute",
        route_limits={"POST /api/login": "1/minute"},
        clock=clock,
    )
    assert await statuses(app, "POST", "/api/login", 2) == [200, 429]
    assert await statuses(app, "GET", "/api/login", 4) == [200, 200, 200, 429]


async def test_one_router_under_two_prefixes_has_two_limits(clock: FakeClock) -> None:
    """A router included as '/v1' and '/v2': route_limits on '/v1/x' leave '/v2/x' alone."""
    router = APIRouter()
    router.add_api_route("/x", endpoint())
    app = fastapi_app((router, "/v1"), (router, "/v2"))
    app.add_middleware(
        ResilienceMiddleware, rate_limit="3/minute", route_limits={"/v1/x": "1/minute"}, clock=clock
    )
    assert await statuses(app, "GET", "/v1/x", 2) == [200, 429]
    assert await statuses(app, "GET", "/v2/x", 4) == [200, 200, 200, 429]


async def test_limit_applies_before_the_routers_dependencies(clock: FakeClock) -> None:
    """A router included with a dependency keeps its route's limit; a refusal never runs it."""
    ran: list[str] = []

    async def audit() -> None:
        ran.append("audit")

    router = APIRouter()

    @router.get("/x")
    @limit("1/minute")
    async def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router, prefix="/api", dependencies=[Depends(audit)])
    app.add_middleware(ResilienceMiddleware, clock=clock)
    assert await statuses(app, "GET", "/api/x", 2) == [200, 429]
    assert ran == ["audit"]


async def test_a_route_structure_seawall_cannot_read_fails_every_request(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without iter_route_contexts, every request fails with a ConfigError naming the router."""
    if not hasattr(sys.modules["fastapi.routing"], "iter_route_contexts"):
        pytest.skip("this FastAPI copies included routes into the app: nothing to hide")
    router = APIRouter()
    router.add_api_route("/x", endpoint())
    app = fastapi_app((router, "/api"))
    app.add_middleware(ResilienceMiddleware, clock=clock)
    monkeypatch.delattr(sys.modules["fastapi.routing"], "iter_route_contexts")
    async with client(app) as c:
        for _ in range(2):
            with pytest.raises(ConfigError, match=r"cannot read the route .*_IncludedRouter"):
                await c.get("/api/x")


def test_an_included_route_with_its_own_matches_is_refused() -> None:
    """An included APIRoute subclass with its own matches() raises a ConfigError naming it."""
    if not hasattr(sys.modules["fastapi.routing"], "iter_route_contexts"):
        pytest.skip("this FastAPI copies included routes into the app: their matches() is asked")
    from fastapi.routing import APIRoute

    class Lowercase(APIRoute):
        def matches(self, scope: Scope) -> tuple[Any, Scope]:
            return super().matches({**scope, "path": scope["path"].lower()})

    router = APIRouter(route_class=Lowercase)
    router.add_api_route("/x", endpoint(), name="lower_x")
    app = fastapi_app((router, "/api"))
    with pytest.raises(ConfigError, match=r"'lower_x' \(.*Lowercase: its class overrides matches"):
        RouteIndex(app.routes)
