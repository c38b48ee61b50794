"""ResilienceMiddleware(max_concurrent="auto"): priority shedding, probes, what a response tells."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall import AdaptiveBulkhead, AIMDLimit, Gradient2Limit
from seawall.asgi import ResilienceMiddleware
from seawall.testing import FakeClock


def frozen(limit: int) -> AdaptiveBulkhead:
    """An adaptive bulkhead held at ``limit`` (min = max), so a test sees only the shedding."""
    rule = AIMDLimit(initial_limit=limit, min_limit=limit, max_limit=limit)
    return AdaptiveBulkhead(rule, window=0.0, window_samples=1)


def aimd(limit: int, clock: FakeClock | None = None) -> AdaptiveBulkhead:
    """An AIMD bulkhead whose every request is one window."""
    rule = AIMDLimit(initial_limit=limit, max_limit=50)
    return AdaptiveBulkhead(rule, window=0.0, window_samples=1, clock=clock)


class Held:
    """A route whose requests wait until released, counting how many are inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.release = anyio.Event()
        self.changed = anyio.Event()

    async def endpoint(self, request: Request) -> Response:
        self.inside += 1
        self.changed.set()
        await self.release.wait()
        return PlainTextResponse("done")

    async def until(self, count: int) -> None:
        while self.inside < count:
            self.changed = anyio.Event()
            await self.changed.wait()


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def starlette_app(
    held: Held | None = None, **options: Any
) -> tuple[Starlette, ResilienceMiddleware]:
    routes = [Route("/", ok), Route("/batch", ok), Route("/pay", ok), Route("/health", ok)]
    if held is not None:
        routes.append(Route("/slow", held.endpoint))
    app = Starlette(routes=routes)
    middleware = ResilienceMiddleware(app, **options)
    return app, middleware


@pytest.mark.anyio
async def test_auto_builds_a_gradient2_bulkhead() -> None:
    """max_concurrent='auto' gives an AdaptiveBulkhead named 'asgi' (Gradient2, limit 20)."""
    _, middleware = starlette_app(max_concurrent="auto")
    assert middleware.bulkhead is None
    assert middleware.shedding is not None
    bulkhead = middleware.shedding.bulkhead
    assert (bulkhead.name, bulkhead.limit) == ("asgi", 20)
    assert isinstance(bulkhead.algorithm, Gradient2Limit)


@pytest.mark.anyio
async def test_sheddable_first_then_default_critical_last() -> None:
    """Limit 4: at 3 in flight /batch is shed; at 4 / is shed; /pay (critical) still served."""
    held = Held()
    priorities = {"/batch": "sheddable", "/pay": "critical"}
    _, middleware = starlette_app(held, max_concurrent=frozen(4), priority=priorities)
    async with client(middleware) as c, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(c.get, "/slow")
        await held.until(3)
        batch = await c.get("/batch")
        tg.start_soon(c.get, "/slow")
        await held.until(4)
        default = await c.get("/")
        pay = await c.get("/pay")
        held.release.set()
    assert (batch.status_code, default.status_code, pay.status_code) == (503, 503, 200)
    assert batch.headers["retry-after"] == "1"
    assert batch.json()["type"].endswith("#temporary-reduced-capacity")
    stats = middleware.shedding.bulkhead.stats  # type: ignore[union-attr]
    assert (stats.shed_sheddable, stats.shed_default, stats.shed_critical, stats.in_flight) == (
        1,
        1,
        0,
        0,
    )


@pytest.mark.anyio
async def test_priority_function_of_the_request() -> None:
    """A function of the scope picks the priority: x-priority: sheddable is shed at 1 of 2."""

    def by_header(scope: Any) -> str:
        headers = dict(scope["headers"])
        return headers.get(b"x-priority", b"default").decode()

    held = Held()
    _, middleware = starlette_app(held, max_concurrent=frozen(2), priority=by_header)
    async with client(middleware) as c, anyio.create_task_group() as tg:
        tg.start_soon(c.get, "/slow")
        await held.until(1)
        shed = await c.get("/", headers={"x-priority": "sheddable"})
        served = await c.get("/")
        held.release.set()
    assert (shed.status_code, served.status_code) == (503, 200)


@pytest.mark.anyio
async def test_probes_and_exempt_paths_are_never_shed() -> None:
    """At limit 1 with one request held, /livez, /readyz and exempt /health still answer 200."""
    held = Held()
    _, middleware = starlette_app(
        held,
        max_concurrent=frozen(1),
        readiness_path="/readyz",
        liveness_path="/livez",
        exempt=["/health"],
    )
    async with client(middleware) as c, anyio.create_task_group() as tg:
        tg.start_soon(c.get, "/slow")
        await held.until(1)
        codes = [(await c.get(p)).status_code for p in ("/livez", "/readyz", "/health", "/")]
        held.release.set()
    assert codes == [200, 200, 200, 503]


@pytest.mark.parametrize(
    ("status", "limit_after"),
    [(200, 11), (404, 11), (503, 9), (504, 9), (429, 10), (500, 10)],
)
@pytest.mark.anyio
async def test_response_status_tells_the_limit(status: int, limit_after: int) -> None:
    """AIMD 10 with 5 in flight: 2xx/4xx grow it to 11, 503/504 drop it to 9, 429/500 leave 10."""
    held = Held()

    async def answer(request: Request) -> Response:
        return PlainTextResponse("x", status_code=status)

    app = Starlette(routes=[Route("/answer", answer), Route("/slow", held.endpoint)])
    bulkhead = aimd(10)
    middleware = ResilienceMiddleware(app, max_concurrent=bulkhead)
    async with client(middleware) as c, anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(c.get, "/slow")
        await held.until(4)
        await c.get("/answer")
        assert bulkhead.limit == limit_after
        held.release.set()


@pytest.mark.anyio
async def test_app_exception_is_no_sample() -> None:
    """An exception from the app frees the slot and leaves AIMD's 2 alone."""

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    bulkhead = aimd(2)
    middleware = ResilienceMiddleware(
        Starlette(routes=[Route("/", broken)]), max_concurrent=bulkhead
    )
    async with client(middleware) as c:
        with pytest.raises(RuntimeError, match="boom"):
            await c.get("/")
    assert (bulkhead.limit, bulkhead.in_flight) == (2, 0)


@pytest.mark.anyio
async def test_request_timeout_is_a_drop(clock: FakeClock) -> None:
    """A request cut by request_timeout (504) is a drop: AIMD 10 -> 9."""
    entered = anyio.Event()

    async def stuck(request: Request) -> Response:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    bulkhead = aimd(10, clock)
    middleware = ResilienceMiddleware(
        Starlette(routes=[Route("/", stuck)]),
        max_concurrent=bulkhead,
        request_timeout=1.0,
        clock=clock,
    )
    async with client(middleware) as c, anyio.create_task_group() as tg:
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await c.get("/"))

        tg.start_soon(call)
        await entered.wait()
        await anyio.lowlevel.checkpoint()
        clock.advance(1.0)
    assert responses[0].status_code == 504
    assert (bulkhead.limit, bulkhead.in_flight) == (9, 0)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_concurrent": "lots"}, ValueError, "max_concurrent must be an int, 'auto'"),
        ({"priority": {"/a": "critical"}}, ValueError, "priority needs max_concurrent='auto'"),
        (
            {"max_concurrent": "auto", "priority": {"/a": "urgent"}},
            ValueError,
            r"priority\['/a'\] must be one of \('sheddable', 'default', 'critical'\), got 'urgent'",
        ),
        (
            {"max_concurrent": "auto", "priority": {"a": "critical"}},
            ValueError,
            "priority keys must be paths starting with '/', got 'a'",
        ),
        ({"max_concurrent": "auto", "priority": 3}, TypeError, "priority must be a mapping"),
    ],
)
@pytest.mark.anyio
async def test_bad_options(options: dict[str, Any], error: type[Exception], message: str) -> None:
    """Bad shedding options raise at construction, naming the option and the value."""
    with pytest.raises(error, match=message):
        ResilienceMiddleware(Starlette(), **options)


def test_longest_path_prefix_wins() -> None:
    """{'/api': critical, '/api/batch': sheddable}: /api/batch/7 is sheddable, /api/x critical."""
    from seawall.asgi._shedding import priority_function

    pick = priority_function({"/api": "critical", "/api/batch": "sheddable"})
    paths = ("/api/batch/7", "/api/x", "/other")
    assert [pick({"path": p}) for p in paths] == ["sheddable", "critical", "default"]


def test_priority_function_returning_an_unknown_priority_is_named() -> None:
    """A priority function that returns 'urgent' raises ValueError naming the value."""
    from seawall.asgi._shedding import priority_function

    pick = priority_function(lambda scope: "urgent")
    with pytest.raises(ValueError, match="priority function returned 'urgent'"):
        pick({"path": "/"})
