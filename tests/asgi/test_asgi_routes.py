"""Route resolution for per-route limits: Starlette's own choice, asking only routes that fit."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Host, Mount, Route, Router

from seawall.asgi import ResilienceMiddleware, limit
from seawall.asgi._routes import RouteIndex
from seawall.asgi._types import Message, Receive, Scope, Send
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


@limit("1/minute")
async def limited(request: Request) -> Response:
    return PlainTextResponse("limited")


async def plain_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("plain")(scope, receive, send)


def endpoint() -> Any:
    """A new endpoint function, so the route Starlette ran can be told from its endpoint."""

    async def each(request: Request) -> Response:
        return PlainTextResponse("ok")

    return each


def rich_routes() -> list[BaseRoute]:
    """Every kind of route the index files differently, in an order where some shadow others."""
    return [
        Route("/", endpoint()),
        Route("/items/{id:int}", endpoint(), methods=["GET"]),
        Route("/items/{name}", endpoint(), methods=["POST"]),
        Route("/items/special", endpoint()),  # GET only reachable here: POST goes to {name}
        Route("/login", endpoint(), methods=["POST"]),
        Route("/files/{rest:path}", endpoint()),
        Route("/a{suffix}", endpoint()),  # a parameter inside the first segment
        Route("/{tenant}/users", endpoint()),  # a parameter as the first segment
        Route("/trailing/", endpoint()),
        Mount(
            "/api",
            routes=[
                Route("/v1/items/{id}", endpoint()),
                Mount(
                    "/v2", routes=[Route("/", endpoint()), Route("/users/{uid:int}", endpoint())]
                ),
            ],
        ),
        Mount("/static", app=plain_asgi),
        Host("h.example", app=Router(routes=[Route("/host", endpoint())])),
        Route("/users", endpoint()),
    ]


SEGMENTS = ["", "items", "1", "special", "login", "login\n", "files", "abc", "api"]
SEGMENTS += ["v1", "v2", "users", "static", "host", "trailing"]


def paths() -> list[str]:
    return [
        "/" + "/".join(parts)
        for depth in (1, 2, 3)
        for parts in itertools.product(SEGMENTS, repeat=depth)
    ]


def by_endpoint(routes: list[BaseRoute]) -> dict[int, BaseRoute]:
    """Every route of the tree by the id of the endpoint it puts in the scope when it matches."""
    found: dict[int, BaseRoute] = {}
    for route in routes:
        found[id(getattr(route, "endpoint", None) or route.app)] = route  # type: ignore[attr-defined]
        found.update(by_endpoint(list(getattr(route, "routes", None) or [])))
    return found


async def starlette_choice(app: Router, scope: Scope) -> BaseRoute | None:
    """The leaf route Starlette dispatched ``scope`` to (None: no route, or none in a mount).

    Each matching route puts its endpoint in the scope (every Starlette version does), so
    the last one there names the route the router ran.
    """

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app(scope, receive, send)
    route = by_endpoint(app.routes).get(id(scope["endpoint"])) if "endpoint" in scope else None
    # A mount with routes that none of them matched answered 404 itself: no leaf route.
    return None if route is not None and getattr(route, "routes", None) else route


def http_scope(path: str, method: str, host: bytes = b"t", root_path: str = "") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", host)],
        "client": ("192.0.2.1", 1),
        "server": ("t", 80),
    }


@pytest.mark.parametrize(("host", "root_path"), [(b"t", ""), (b"h.example", ""), (b"t", "/p")])
async def test_index_picks_the_route_starlette_picks(host: bytes, root_path: str) -> None:
    """For 3,615 paths x 2 methods, the index resolves to the very route Starlette's router runs."""
    router = Router(routes=rich_routes())
    index = RouteIndex(router.routes)
    checked = 0
    for path, method in itertools.product(paths(), ("GET", "POST")):
        scope = http_scope(path, method, host, root_path)
        resolved = index.resolve(dict(scope))
        expected = await starlette_choice(router, scope)
        assert (None if resolved is None else resolved.route) is expected, (path, method)
        checked += 1
    assert checked == 2 * (15 + 15**2 + 15**3)


def test_static_route_among_500_asks_one_route() -> None:
    """With 500 static routes, '/r499' has exactly one candidate: itself."""
    routes = [Route(f"/r{i}", ok) for i in range(500)]
    candidates = RouteIndex(routes).candidates("/r499")
    assert [route for _, route in candidates] == [routes[499]]


def test_parameter_routes_are_candidates_only_under_their_prefix() -> None:
    """'/v1/items/{id}' is a candidate for '/v1/items/7', never for '/v2/items/7'."""
    routes: list[BaseRoute] = [Route(f"/v{i}/items/{{id}}", ok) for i in range(1, 201)]
    routes.append(Route("/{anything}/x", ok))
    index = RouteIndex(routes)
    assert [r for _, r in index.candidates("/v1/items/7")] == [routes[0], routes[200]]
    assert [r for _, r in index.candidates("/v300/items/7")] == [routes[200]]


def test_candidates_keep_router_order_across_levels() -> None:
    """Candidates filed at different depths come back in the router's order, not by depth."""
    routes = [Route("/a/b/c", ok), Route("/{x}/b/c", ok), Route("/a/{y}/c", ok)]
    candidates = RouteIndex(routes).candidates("/a/b/c")
    assert [position for position, _ in candidates] == [0, 1, 2]


class CaseInsensitiveRoute(Route):
    """A route of the app's own that matches its path in any case."""

    def matches(self, scope: Scope) -> tuple[Any, Scope]:
        return super().matches({**scope, "path": scope["path"].lower()})


async def test_a_route_with_its_own_matching_is_asked_for_every_path() -> None:
    """A custom matches() is not read by the index: '/ADMIN' finds '/admin' as in Starlette."""
    routes = [*(Route(f"/r{i}", ok) for i in range(50)), CaseInsensitiveRoute("/admin", limited)]
    router = Router(routes=routes)
    scope = http_scope("/ADMIN", "GET")
    resolved = RouteIndex(router.routes).resolve(dict(scope))
    assert resolved is not None
    assert resolved.route is routes[50] is await starlette_choice(router, scope)


def test_fastapi_routes_are_filed_by_their_path() -> None:
    """A FastAPI app with 300 routes asks one of them for '/items299/5'."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for i in range(300):
        app.add_api_route(f"/items{i}/{{item_id}}", ok)
    candidates = RouteIndex(app.routes).candidates("/items299/5")
    assert [route.path for _, route in candidates] == ["/items299/{item_id}"]  # type: ignore[attr-defined]


# -- through the middleware --------------------------------------------------------------------


def many_routes(n: int, *extra: BaseRoute) -> Starlette:
    return Starlette(routes=[*(Route(f"/r{i}", ok) for i in range(n)), *extra])


def client(app: Any, host: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def statuses(app: Any, method: str, path: str, n: int) -> list[int]:
    async with client(app) as c:
        return [(await c.request(method, path)).status_code for _ in range(n)]


async def test_static_route_limit_after_500_routes(clock: FakeClock) -> None:
    """route_limits on the 500th static route limits it; its neighbours keep the default."""
    app = many_routes(500)
    app.add_middleware(
        ResilienceMiddleware, rate_limit="3/minute", route_limits={"/r499": "1/minute"}, clock=clock
    )
    assert await statuses(app, "GET", "/r499", 2) == [200, 429]
    assert await statuses(app, "GET", "/r498", 4) == [200, 200, 200, 429]


async def test_decorator_limit_on_a_parameter_route_under_a_mount(clock: FakeClock) -> None:
    """@limit on '/api/{name}/x' under a mount limits every name, after 200 other routes."""
    inner = [*(Route(f"/s{i}", ok) for i in range(200)), Route("/{n}/x", limited)]
    api = Mount("/api", routes=inner)
    app = many_routes(200, api)
    app.add_middleware(ResilienceMiddleware, rate_limit="5/minute", clock=clock)
    assert await statuses(app, "GET", "/api/one/x", 1) == [200]
    assert await statuses(app, "GET", "/api/two/x", 1) == [429]
    assert await statuses(app, "GET", "/api/s3", 2) == [200, 200]


async def test_a_parameter_route_shadows_a_later_static_route(clock: FakeClock) -> None:
    """POST /items/special goes to the earlier '/items/{name}' route, so its limit applies."""
    app = Starlette(
        routes=[Route("/items/{name}", ok, methods=["POST"]), Route("/items/special", ok)]
    )
    app.add_middleware(
        ResilienceMiddleware,
        route_limits={"/items/{name}": "1/minute", "/items/special": "5/minute"},
        clock=clock,
    )
    assert await statuses(app, "POST", "/items/special", 2) == [200, 429]
    assert await statuses(app, "GET", "/items/special", 2) == [200, 200]


async def test_a_final_newline_cannot_dodge_a_route_limit(clock: FakeClock) -> None:
    """'/login%0A' is Starlette's '/login' (its '$' matches before a newline): same limit."""
    app = many_routes(50, Route("/login", ok, methods=["POST"]))
    app.add_middleware(ResilienceMiddleware, route_limits={"POST /login": "1/minute"}, clock=clock)
    assert await statuses(app, "POST", "/login", 1) == [200]
    assert await statuses(app, "POST", "/login%0A", 1) == [429]


# -- the resolution cache -----------------------------------------------------------------------


def route_limits_of(app: Starlette) -> Any:
    layer: Any = app.middleware_stack
    while not isinstance(layer, ResilienceMiddleware):
        layer = layer.app
    return layer.route_limits


async def test_one_path_under_two_root_paths_resolves_twice(clock: FakeClock) -> None:
    """'/p/login' is '/login' under root_path '/p' and '/p/login' without: each its own limit."""
    app = Starlette(routes=[Route("/login", ok), Route("/p/login", ok)])
    app.add_middleware(
        ResilienceMiddleware,
        route_limits={"/login": "1/minute", "/p/login": "3/minute"},
        clock=clock,
    )
    await statuses(app, "GET", "/", 1)  # builds the middleware and its route table
    limits = route_limits_of(app)
    under_p = {**http_scope("/login", "GET", root_path="/p"), "app": app}
    bare = {**http_scope("/p/login", "GET"), "app": app}
    assert under_p["path"] == bare["path"] == "/p/login"
    groups = [limits.lookup(s, app, None) for s in (under_p, bare, under_p, bare)]
    assert [g.limits[0].amount for g in groups] == [1, 3, 1, 3]


async def test_host_routes_are_never_cached(clock: FakeClock) -> None:
    """With a Host route, one path on two hosts goes to two routes, so each keeps its limit."""
    app = Starlette(
        routes=[
            Host("a.example", app=Router(routes=[Route("/x", limited)])),
            Route("/x", ok),
        ]
    )
    app.add_middleware(ResilienceMiddleware, rate_limit="3/minute", clock=clock)
    async with client(app) as c:
        on_a = [(await c.get("/x", headers={"host": "a.example"})).status_code for _ in range(2)]
        on_b = [(await c.get("/x", headers={"host": "b.example"})).status_code for _ in range(4)]
    assert on_a == [200, 429]
    assert on_b == [200, 200, 200, 429]


async def test_the_cache_holds_at_most_its_size(clock: FakeClock) -> None:
    """1,100 distinct paths leave at most 1,024 remembered, and the answers stay exact."""
    app = many_routes(3, Route("/items/{n:int}", limited))
    app.add_middleware(ResilienceMiddleware, rate_limit="5/minute", clock=clock)
    await statuses(app, "GET", "/r1", 1)
    limits = route_limits_of(app)
    default = route_limits_of(app)  # any object stands for the default here
    found = [
        limits.lookup({**http_scope(f"/items/{i}", "GET"), "app": app}, app, default)
        for i in range(1100)
    ]
    assert len(limits._cache) <= 1024
    assert len({id(group) for group in found}) == 1
    assert found[0] is not default
    assert limits.lookup({**http_scope("/r2", "GET"), "app": app}, app, default) is default


async def test_one_route_under_two_mounts_has_two_limits(clock: FakeClock) -> None:
    """One Route object mounted at '/a' and '/b': route_limits on '/a/x' leave '/b/x' alone."""
    shared = Route("/x", ok)
    app = Starlette(routes=[Mount("/a", routes=[shared]), Mount("/b", routes=[shared])])
    app.add_middleware(
        ResilienceMiddleware, rate_limit="3/minute", route_limits={"/a/x": "1/minute"}, clock=clock
    )
    assert await statuses(app, "GET", "/a/x", 2) == [200, 429]
    assert await statuses(app, "GET", "/b/x", 4) == [200, 200, 200, 429]
