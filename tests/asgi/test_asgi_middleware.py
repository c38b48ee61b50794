"""ResilienceMiddleware through httpx.ASGITransport: limits, shedding, breaker, timeout."""

from __future__ import annotations

import contextvars
import json
import subprocess
import sys
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from seawall import CircuitBreaker, CircuitPermit, CircuitState
from seawall.asgi import Rejection, ResilienceMiddleware, limit
from seawall.asgi._types import Message, Scope
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


@limit("1/minute")
async def once(request: Request) -> Response:
    return PlainTextResponse("once")


@limit(None)
async def free(request: Request) -> Response:
    return PlainTextResponse("free")


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


def build(**options: Any) -> Starlette:
    routes = [
        Route("/", hello),
        Route("/once", once),
        Route("/free", free),
        Route("/health", hello),
        Mount("/api", routes=[Route("/items/{item_id:int}", item, methods=["GET", "POST"])]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(ResilienceMiddleware, **options)
    return app


def middleware_of(app: Starlette) -> ResilienceMiddleware:
    layer: Any = app.middleware_stack
    while not isinstance(layer, ResilienceMiddleware):
        layer = layer.app
    return layer


def client(app: Any, host: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def statuses(app: Any, path: str, n: int, host: str = "192.0.2.1", **kw: Any) -> list[int]:
    async with client(app, host) as c:
        return [(await c.get(path, **kw)).status_code for _ in range(n)]


# -- rate limits ------------------------------------------------------------------------------


async def test_exact_429_count_per_client(clock: FakeClock) -> None:
    """With 5/minute and a frozen clock, each client gets exactly 5 OKs, then 429s."""
    app = build(rate_limit="5/minute", clock=clock)
    assert await statuses(app, "/", 8, "192.0.2.1") == [200] * 5 + [429] * 3
    assert await statuses(app, "/", 6, "192.0.2.2") == [200] * 5 + [429]
    assert await statuses(app, "/", 1, "192.0.2.1") == [429]


async def test_429_carries_retry_after_ietf_fields_and_problem_json(clock: FakeClock) -> None:
    """A 429 has Retry-After, RateLimit-Policy, RateLimit and a problem+json body."""
    app = build(rate_limit="5/minute", clock=clock)
    async with client(app) as c:
        for _ in range(5):
            await c.get("/")
        response = await c.get("/")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "12"
    assert response.headers["ratelimit-policy"] == '"default";q=5;w=60'
    assert response.headers["ratelimit"] == '"default";r=0;t=12'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Request quota exceeded; retry in 12 seconds.",
        "violated-policies": ["default"],
    }


async def test_successful_responses_carry_the_fields(clock: FakeClock) -> None:
    """A 200 reports the quota left and the seconds until the bucket is full."""
    app = build(rate_limit="5/minute", clock=clock)
    async with client(app) as c:
        first = await c.get("/")
        second = await c.get("/")
    assert first.headers["ratelimit"] == '"default";r=4;t=12'
    assert second.headers["ratelimit"] == '"default";r=3;t=24'
    assert "retry-after" not in first.headers


async def test_granted_fields_round_the_seconds_up(clock: FakeClock) -> None:
    """A bucket full again in a fraction of a second reports t=1, never t=0."""
    app = build(rate_limit="3/second", clock=clock)
    async with client(app) as c:
        first = await c.get("/")
        clock.advance(0.1)
        second = await c.get("/")
    assert first.headers["ratelimit"] == '"default";r=2;t=1'
    assert second.headers["ratelimit"] == '"default";r=1;t=1'


async def test_legacy_fields_describe_the_tightest_quota(clock: FakeClock) -> None:
    """headers='legacy' sends X-RateLimit-* with Reset as epoch seconds, and no IETF fields."""
    app = build(rate_limit="5/minute", headers="legacy", clock=clock)
    async with client(app) as c:
        response = await c.get("/")
    assert response.headers["x-ratelimit-limit"] == "5"
    assert response.headers["x-ratelimit-remaining"] == "4"
    assert response.headers["x-ratelimit-reset"] == str(int(clock.time()) + 12)
    assert "ratelimit" not in response.headers


async def test_headers_none_sends_no_fields_but_still_limits(clock: FakeClock) -> None:
    """headers=None: no rate-limit fields; the 429 still has Retry-After."""
    app = build(rate_limit="1/minute", headers=None, clock=clock)
    async with client(app) as c:
        ok, refused = await c.get("/"), await c.get("/")
    assert "ratelimit" not in ok.headers
    assert "x-ratelimit-limit" not in ok.headers
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "60")


async def test_spoofed_forwarded_for_mints_no_buckets(clock: FakeClock) -> None:
    """Without trusted proxies, 10 different X-Forwarded-For values are one client and one key."""
    app = build(rate_limit="3/minute", clock=clock)
    async with client(app) as c:
        codes = [
            (await c.get("/", headers={"x-forwarded-for": f"198.51.100.{i}"})).status_code
            for i in range(10)
        ]
    assert codes == [200] * 3 + [429] * 7
    (bucket,) = middleware_of(app).default_limits.buckets  # type: ignore[union-attr]
    assert len(bucket) == 1


async def test_trusted_proxy_separates_clients_behind_it(clock: FakeClock) -> None:
    """Behind a trusted proxy each forwarded client has its own bucket."""
    app = build(rate_limit="2/minute", trusted_proxies=["10.0.0.0/8"], clock=clock)
    async with client(app, "10.0.0.5") as c:
        a = [
            (await c.get("/", headers={"x-forwarded-for": "6.6.6.6, 198.51.100.1"})).status_code
            for _ in range(3)
        ]
        b = [
            (await c.get("/", headers={"x-forwarded-for": "198.51.100.2"})).status_code
            for _ in range(3)
        ]
    assert a == [200, 200, 429]
    assert b == [200, 200, 429]
    (bucket,) = middleware_of(app).default_limits.buckets  # type: ignore[union-attr]
    assert len(bucket) == 2


async def test_custom_key_function(clock: FakeClock) -> None:
    """key= decides the bucket: here an API key header shared across addresses."""

    def by_api_key(scope: Scope) -> str:
        return dict(scope["headers"]).get(b"x-api-key", b"anonymous").decode()

    app = build(rate_limit="2/minute", key=by_api_key, clock=clock)
    h = {"x-api-key": "alice"}
    assert await statuses(app, "/", 2, "192.0.2.1", headers=h) == [200, 200]
    assert await statuses(app, "/", 1, "192.0.2.2", headers=h) == [429]
    assert await statuses(app, "/", 1, "192.0.2.2") == [200]


async def test_key_memory_is_bounded_and_fails_closed(clock: FakeClock) -> None:
    """With max_keys=2 and both keys carrying quota, a third client is refused, not admitted."""
    app = build(rate_limit="1/minute", max_keys=2, clock=clock)
    assert await statuses(app, "/", 1, "192.0.2.1") == [200]
    assert await statuses(app, "/", 1, "192.0.2.2") == [200]
    assert await statuses(app, "/", 2, "192.0.2.3") == [429, 429]
    (bucket,) = middleware_of(app).default_limits.buckets  # type: ignore[union-attr]
    assert len(bucket) == 2
    clock.advance(60)
    assert await statuses(app, "/", 1, "192.0.2.3") == [200]


async def test_several_quotas_all_apply(clock: FakeClock) -> None:
    """'2/second;3/minute': the second quota refuses once the minute is spent."""
    app = build(rate_limit="2/second;3/minute", clock=clock)
    assert await statuses(app, "/", 3) == [200, 200, 429]
    clock.advance(1.0)
    assert await statuses(app, "/", 2) == [200, 429]


async def test_unmatched_paths_are_limited_too(clock: FakeClock) -> None:
    """A 404 flood spends the default quota (no free pass for unknown paths)."""
    app = build(rate_limit="2/minute", clock=clock)
    assert await statuses(app, "/nope", 3) == [404, 404, 429]


async def test_exempt_paths_skip_every_limit(clock: FakeClock) -> None:
    """An exempt path is never limited and carries no fields."""
    app = build(rate_limit="1/minute", exempt=["/health"], clock=clock)
    assert await statuses(app, "/health", 5) == [200] * 5
    assert await statuses(app, "/", 2) == [200, 429]


async def test_exempt_predicate(clock: FakeClock) -> None:
    """exempt= may be a predicate on the scope."""
    app = build(rate_limit="1/minute", exempt=lambda s: s["method"] == "HEAD", clock=clock)
    async with client(app) as c:
        heads = [(await c.head("/")).status_code for _ in range(3)]
    assert heads == [200] * 3


# -- per-route limits -------------------------------------------------------------------------


async def test_route_limit_under_a_mount_with_path_parameters(clock: FakeClock) -> None:
    """A route_limits template covers every path-parameter value under a mount, per client."""
    app = build(
        rate_limit="100/minute", route_limits={"/api/items/{item_id:int}": "2/minute"}, clock=clock
    )
    async with client(app) as c:
        codes = [(await c.get(f"/api/items/{i}")).status_code for i in range(3)]
        refused = await c.get("/api/items/9")
        root = await c.get("/")
    assert codes == [200, 200, 429]
    assert refused.headers["ratelimit-policy"] == '"route";q=2;w=60'
    assert root.status_code == 200
    assert root.headers["ratelimit"].startswith('"default";r=99')
    assert await statuses(app, "/api/items/1", 1, "192.0.2.9") == [200]


async def test_route_limit_for_one_method(clock: FakeClock) -> None:
    """'POST /path' limits only POST; GET on the same route falls to the default."""
    app = build(
        rate_limit="100/minute",
        route_limits={"POST /api/items/{item_id:int}": "1/minute"},
        clock=clock,
    )
    async with client(app) as c:
        posts = [(await c.post("/api/items/1")).status_code for _ in range(2)]
        gets = [(await c.get("/api/items/1")).status_code for _ in range(2)]
    assert posts == [200, 429]
    assert gets == [200, 200]


async def test_route_template_that_does_not_match_does_not_apply(clock: FakeClock) -> None:
    """A path that the int converter rejects is not the limited route (Starlette's matching)."""
    app = build(route_limits={"/api/items/{item_id:int}": "1/minute"}, clock=clock)
    assert await statuses(app, "/api/items/abc", 3) == [404, 404, 404]


async def test_decorator_limit_replaces_the_default(clock: FakeClock) -> None:
    """@limit('1/minute') limits its endpoint; @limit(None) frees it from the default."""
    app = build(rate_limit="3/minute", clock=clock)
    assert await statuses(app, "/once", 2) == [200, 429]
    assert await statuses(app, "/free", 5) == [200] * 5
    assert await statuses(app, "/", 4) == [200, 200, 200, 429]


# -- bulkhead ---------------------------------------------------------------------------------


async def test_load_shedding_above_the_bulkhead() -> None:
    """With max_concurrent=2 and two requests held, the third gets 503 with Retry-After."""
    entered = 0
    release = anyio.Event()
    both_in = anyio.Event()

    async def slow(request: Request) -> Response:
        nonlocal entered
        entered += 1
        if entered == 2:
            both_in.set()
        await release.wait()
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/slow", slow), Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, max_concurrent=2)
    results: list[int] = []
    async with client(app) as c:

        async def call() -> None:
            results.append((await c.get("/slow")).status_code)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(call)
            await both_in.wait()
            shed = await c.get("/")
            release.set()
        after = await c.get("/")
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["title"] == "Service Unavailable"
    assert sorted(results) == [200, 200]
    assert after.status_code == 200
    assert middleware_of(app).bulkhead.stats.in_flight == 0  # type: ignore[union-attr]


async def test_bulkhead_queue_waits_for_a_slot() -> None:
    """With max_wait, a request over the limit waits for a slot instead of failing."""
    release = anyio.Event()
    started = anyio.Event()

    async def slow(request: Request) -> Response:
        started.set()
        await release.wait()
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/slow", slow), Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, max_concurrent=1, max_wait=30.0)
    codes: list[int] = []
    async with client(app) as c, anyio.create_task_group() as tg:

        async def call(path: str) -> None:
            codes.append((await c.get(path)).status_code)

        tg.start_soon(call, "/slow")
        await started.wait()
        tg.start_soon(call, "/")
        await anyio.wait_all_tasks_blocked()
        assert codes == []
        release.set()
    assert codes == [200, 200]


# -- breaker ----------------------------------------------------------------------------------


async def test_breaker_opens_on_5xx_and_recovers(clock: FakeClock) -> None:
    """Two 500s open the circuit (503 + Retry-After); after reset_timeout a good probe closes it."""
    healthy = False

    async def flaky(request: Request) -> Response:
        return PlainTextResponse("ok" if healthy else "bad", status_code=200 if healthy else 500)

    app = Starlette(routes=[Route("/", flaky)])
    app.add_middleware(
        ResilienceMiddleware, breaker={"max_failures": 2, "reset_timeout": 10}, clock=clock
    )
    async with client(app) as c:
        codes = [(await c.get("/")).status_code for _ in range(3)]
        opened = await c.get("/")
        breaker = middleware_of(app).breaker
        assert breaker is not None
        assert breaker.state is CircuitState.OPEN
        clock.advance(10)
        healthy = True
        probe = await c.get("/")
    assert codes == [500, 500, 503]
    assert opened.headers["retry-after"] == "10"
    assert probe.status_code == 200
    assert breaker.state is CircuitState.CLOSED


async def test_breaker_counts_exceptions_and_ignores_4xx(clock: FakeClock) -> None:
    """An exception is a failure, a 404 is not."""

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    breaker = CircuitBreaker(max_failures=2, reset_timeout=5, clock=clock)
    app = Starlette(routes=[Route("/boom", boom)])
    app.add_middleware(ResilienceMiddleware, breaker=breaker, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        missing = [(await c.get("/nope")).status_code for _ in range(3)]
        assert breaker.state is CircuitState.CLOSED
        failed = [(await c.get("/boom")).status_code for _ in range(3)]
    assert missing == [404] * 3
    assert failed == [500, 500, 503]


async def test_a_breaker_subclass_is_asked_through_its_own_admit(clock: FakeClock) -> None:
    """A CircuitBreaker subclass is asked with admit() and told through its permit, every time."""

    class Counting(CircuitBreaker):
        admitted = 0

        def admit(self) -> CircuitPermit:
            Counting.admitted += 1
            return super().admit()

    breaker = Counting(max_failures=2, reset_timeout=5, clock=clock)
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(ResilienceMiddleware, breaker=breaker, clock=clock)
    assert await statuses(app, "/", 3) == [200] * 3
    assert Counting.admitted == 3
    assert breaker.stats.successful_calls == 3


# -- timeout ----------------------------------------------------------------------------------


async def test_timeout_before_the_response_starts_is_504(clock: FakeClock) -> None:
    """A request still running after request_timeout gets 504 and its task is cancelled."""
    cancelled = anyio.Event()

    async def stuck(request: Request) -> Response:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    app = Starlette(routes=[Route("/", stuck)])
    app.add_middleware(ResilienceMiddleware, request_timeout=5.0, breaker=True, clock=clock)
    result: list[httpx.Response] = []
    async with client(app) as c, anyio.create_task_group() as tg:

        async def call() -> None:
            result.append(await c.get("/"))

        tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4.9)
        await anyio.wait_all_tasks_blocked()
        assert result == []
        clock.advance(0.1)
    assert cancelled.is_set()
    assert result[0].status_code == 504
    assert result[0].json()["status"] == 504
    assert middleware_of(app).breaker.stats.failed_calls == 1  # type: ignore[union-attr]


async def test_timeout_on_the_real_clock_is_504() -> None:
    """On the system clock the timeout is a cancel-scope deadline; a stuck request gets 504."""

    async def stuck(request: Request) -> Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    app = Starlette(routes=[Route("/", stuck), Route("/ok", hello)])
    app.add_middleware(ResilienceMiddleware, request_timeout=0.05)
    async with client(app) as c:
        assert (await c.get("/")).status_code == 504
        assert (await c.get("/ok")).status_code == 200


async def test_timeout_after_the_response_started_aborts_it(clock: FakeClock) -> None:
    """Past the timeout mid-body there is no 504: the body is left unfinished for the server."""

    async def hangs(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await anyio.sleep_forever()

    mw = ResilienceMiddleware(hangs, request_timeout=5.0, breaker=True, clock=clock)
    rec = Recorder()
    async with anyio.create_task_group() as tg:
        tg.start_soon(mw, http_scope(), rec.receive, rec.send)
        await anyio.wait_all_tasks_blocked()
        clock.advance(5.0)
    assert [(m["type"], m.get("status"), m.get("more_body")) for m in rec.sent] == [
        ("http.response.start", 200, None),
        ("http.response.body", None, True),
    ]
    assert mw.breaker is not None
    assert mw.breaker.stats.failed_calls == 1


async def test_fast_requests_are_untouched_by_the_timeout(clock: FakeClock) -> None:
    """Under request_timeout a quick request answers normally and app errors stay unwrapped."""

    async def boom(request: Request) -> Response:
        raise KeyError("x")

    app = Starlette(routes=[Route("/", hello), Route("/boom", boom)])
    mw = ResilienceMiddleware(app, request_timeout=5.0, clock=clock)
    assert await statuses(mw, "/", 2) == [200, 200]
    with pytest.raises(KeyError):
        async with client(mw) as c:
            await c.get("/boom")


# -- pass-through -----------------------------------------------------------------------------


class Recorder:
    """A raw ASGI harness: feeds one request, records every message sent."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.received = 0

    async def receive(self) -> Message:
        self.received += 1
        if self.received > 1:
            await anyio.sleep_forever()  # the client never disconnects
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def http_scope(path: str = "/") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [], "client": ("192.0.2.1", 1), "server": ("t", 80),
    }  # fmt: skip


async def test_streaming_response_has_one_start_and_every_chunk(clock: FakeClock) -> None:
    """A streamed response passes in chunks, with exactly one http.response.start."""

    async def chunks() -> Any:
        for part in (b"one,", b"two,", b"three"):
            yield part

    async def stream(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/", stream)])
    mw = ResilienceMiddleware(
        app, rate_limit="10/minute", max_concurrent=4, breaker=True, clock=clock
    )
    rec = Recorder()
    await mw(http_scope(), rec.receive, rec.send)
    kinds = [m["type"] for m in rec.sent]
    assert kinds.count("http.response.start") == 1
    bodies = [m["body"] for m in rec.sent if m["type"] == "http.response.body" and m["body"]]
    assert bodies == [b"one,", b"two,", b"three"]
    async with client(mw) as c:
        assert (await c.get("/")).text == "one,two,three"


async def test_background_task_runs(clock: FakeClock) -> None:
    """A response's background task still runs behind the middleware."""
    ran: list[str] = []

    async def with_task(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(ran.append, "task"))

    app = Starlette(routes=[Route("/", with_task)])
    app.add_middleware(
        ResilienceMiddleware,
        rate_limit="5/minute",
        max_concurrent=2,
        breaker=True,
        request_timeout=30,
        clock=clock,
    )
    assert await statuses(app, "/", 1) == [200]
    assert ran == ["task"]


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


@pytest.mark.parametrize("timeout", [None, 30.0])
async def test_contextvars_and_request_state_flow(clock: FakeClock, timeout: float | None) -> None:
    """The endpoint sees outside contextvars, request.state works, its own set is seen after."""
    seen: list[str] = []

    async def endpoint(request: Request) -> Response:
        seen.append(request_var.get())
        request.state.user = "ann"
        request_var.set("from endpoint")
        return PlainTextResponse(request.state.user)

    inner = Starlette(routes=[Route("/", endpoint)])
    mw = ResilienceMiddleware(inner, rate_limit="5/minute", request_timeout=timeout, clock=clock)

    async def outer(scope: Scope, receive: Any, send: Any) -> None:
        request_var.set("from outside")
        await mw(scope, receive, send)
        seen.append(request_var.get())

    async with client(outer) as c:
        assert (await c.get("/")).text == "ann"
    assert seen == ["from outside", "from endpoint"]


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_other_scopes_pass_through_untouched(kind: str) -> None:
    """websocket and lifespan scopes reach the app with the very same scope, receive and send."""
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    mw = ResilienceMiddleware(app, rate_limit="1/minute", max_concurrent=1, breaker=True)
    scope: dict[str, Any] = {"type": kind}
    rec = Recorder()
    for _ in range(3):
        await mw(scope, rec.receive, rec.send)
    assert calls == [(scope, rec.receive, rec.send)] * 3


async def test_on_reject_hook_renders_and_keeps_the_fields(clock: FakeClock) -> None:
    """A hook's response is sent; seawall adds Retry-After and the fields it lacks."""
    seen: list[Rejection] = []

    def render(scope: Scope, rejection: Rejection) -> Response:
        seen.append(rejection)
        return PlainTextResponse(f"slow down ({rejection.reason})", status_code=rejection.status)

    app = build(rate_limit="1/minute", on_reject=render, clock=clock)
    async with client(app) as c:
        await c.get("/")
        response = await c.get("/")
    assert response.status_code == 429
    assert response.text == "slow down (rate_limited)"
    assert response.headers["retry-after"] == "60"
    assert response.headers["ratelimit"] == '"default";r=0;t=60'
    assert (seen[0].retry_after, seen[0].policies) == (60, ("default",))


def test_import_seawall_does_not_import_starlette() -> None:
    """The top-level package stays free of starlette; seawall.asgi names its extra if missing."""
    code = (
        "import sys; import seawall; assert 'starlette' not in sys.modules;"
        "sys.modules['starlette'] = None\n"
        "try:\n import seawall.asgi\nexcept ImportError as e:\n print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'seawall[asgi]'" in out.stdout


def test_problem_body_reveals_nothing_internal() -> None:
    """The default bodies hold exactly type, title, status and detail (plus violated-policies)."""
    from seawall.asgi._responses import timed_out, unavailable

    assert json.loads(unavailable("circuit_open", 2.1, "Try later.").body()) == {
        "type": "about:blank", "title": "Service Unavailable", "status": 503,
        "detail": "Try later.",
    }  # fmt: skip
    assert set(json.loads(timed_out().body())) == {"type", "title", "status", "detail"}


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rate_limit": "lots"}, "rate_limit"),
        ({"headers": "fancy"}, "headers"),
        ({"max_wait": 1.0}, "max_concurrent"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"route_limits": {"items": "1/s"}}, "route_limits"),
        ({"exempt": ["health"]}, "exempt"),
        ({"max_keys": 0}, "max_keys"),
        ({"drain_path": "/-/drain"}, "drain_path"),
    ],
)
def test_bad_options_raise_naming_the_parameter(options: dict[str, Any], match: str) -> None:
    """Every bad option raises ValueError naming it, at construction."""
    with pytest.raises(ValueError, match=match):
        ResilienceMiddleware(hello, **options)  # type: ignore[arg-type]
