"""The lifespan hook: startup, readiness, drain, shutdown callbacks, probes."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from seawall import GracefulShutdown, Heartbeat
from seawall.asgi import ResilienceMiddleware, seawall_lifespan
from seawall.asgi._types import ASGIApp, Message
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio


class LifespanDriver:
    """Plays the server's side of the ASGI lifespan protocol."""

    def __init__(self, app: ASGIApp, tg: anyio.abc.TaskGroup) -> None:
        self.to_app, self._app_in = anyio.create_memory_object_stream[Message](4)
        self._app_out, self.from_app = anyio.create_memory_object_stream[Message](4)
        self.state: dict[str, Any] = {}
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        tg.start_soon(app, scope, self._app_in.receive, self._app_out.send)

    def __enter__(self) -> LifespanDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for stream in (self.to_app, self._app_in, self._app_out, self.from_app):
            stream.close()

    async def startup(self) -> str:
        await self.to_app.send({"type": "lifespan.startup"})
        return str((await self.from_app.receive())["type"])

    async def shutdown(self) -> str:
        await self.to_app.send({"type": "lifespan.shutdown"})
        return str((await self.from_app.receive())["type"])


@pytest.fixture
def exits() -> Iterator[ExitStack]:
    """Closes each test's lifespan streams at teardown."""
    with ExitStack() as stack:
        yield stack


def client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(host, 5000)), base_url="http://t"
    )


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


def recording_shutdown(log: list[str]) -> GracefulShutdown:
    shutdown = GracefulShutdown(timeout=10)
    shutdown.register("db", lambda: log.append("db (20)"), priority=20)
    shutdown.register("cache", lambda: log.append("cache (10)"), priority=10)

    async def flush() -> None:
        log.append("flush (30)")

    shutdown.register("flush", flush, priority=30)
    return shutdown


async def test_callbacks_run_by_priority_at_lifespan_shutdown(exits: ExitStack) -> None:
    """As Starlette's lifespan=, shutdown runs the callbacks lowest priority first."""
    log: list[str] = []
    app = Starlette(
        routes=[Route("/", hello)], lifespan=seawall_lifespan(shutdown=recording_shutdown(log))
    )
    async with anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        assert await driver.startup() == "lifespan.startup.complete"
        assert log == []
        assert await driver.shutdown() == "lifespan.shutdown.complete"
    assert log == ["cache (10)", "db (20)", "flush (30)"]


async def test_composes_with_the_apps_own_lifespan(exits: ExitStack) -> None:
    """The app's lifespan runs inside ours: its state is kept, it exits before the callbacks."""
    log: list[str] = []

    @asynccontextmanager
    async def own(app: Any) -> AsyncIterator[Mapping[str, Any]]:
        log.append("app up")
        yield {"pool": "ready"}
        log.append("app down")

    hook = seawall_lifespan(shutdown=recording_shutdown(log), app_lifespan=own)
    app = Starlette(routes=[Route("/", hello)], lifespan=hook)
    async with anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        await driver.startup()
        assert driver.state == {"pool": "ready"}
        await driver.shutdown()
    assert log == ["app up", "app down", "cache (10)", "db (20)", "flush (30)"]


async def test_middleware_drives_the_hook_around_an_apps_own_lifespan(exits: ExitStack) -> None:
    """Given lifespan=, the middleware runs the hook on the lifespan events, each step once."""
    log: list[str] = []

    @asynccontextmanager
    async def own(app: Any) -> AsyncIterator[None]:
        log.append("app up")
        yield
        log.append("app down")

    hook = seawall_lifespan(shutdown=recording_shutdown(log))
    app = Starlette(routes=[Route("/", hello)], lifespan=own)
    app.add_middleware(ResilienceMiddleware, lifespan=hook)
    async with anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        assert await driver.startup() == "lifespan.startup.complete"
        assert await driver.shutdown() == "lifespan.shutdown.complete"
    assert log == ["app up", "app down", "cache (10)", "db (20)", "flush (30)"]
    await hook.finish()  # idempotent: nothing runs twice
    assert len(log) == 5


async def test_shutdown_waits_for_in_flight_requests_and_refuses_new_ones(exits: ExitStack) -> None:
    """Lifespan shutdown drains: it completes only after the request in flight answers."""
    log: list[str] = []
    release, entered = anyio.Event(), anyio.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        await release.wait()
        log.append("request done")
        return PlainTextResponse("slow")

    hook = seawall_lifespan(shutdown=recording_shutdown(log), drain_timeout=60)
    app = Starlette(routes=[Route("/slow", slow), Route("/", hello)], lifespan=hook)
    app.add_middleware(ResilienceMiddleware, lifespan=hook)
    codes: list[int] = []
    async with client(app) as c, anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        await driver.startup()

        async def call() -> None:
            codes.append((await c.get("/slow")).status_code)

        tg.start_soon(call)
        await entered.wait()
        assert hook.in_flight == 1
        done: list[str] = []

        async def stop() -> None:
            done.append(await driver.shutdown())

        tg.start_soon(stop)
        await anyio.wait_all_tasks_blocked()
        assert done == []
        assert hook.stopping
        refused = await c.get("/")
        assert refused.status_code == 503
        assert refused.json()["detail"] == "The service is shutting down."
        release.set()
    assert codes == [200]
    assert done == ["lifespan.shutdown.complete"]
    assert log == ["request done", "cache (10)", "db (20)", "flush (30)"]


async def test_drain_gives_up_at_the_deadline(clock: FakeClock, exits: ExitStack) -> None:
    """A request stuck past drain_timeout no longer holds up the shutdown callbacks."""
    log: list[str] = []
    entered = anyio.Event()

    async def stuck(request: Request) -> Response:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    hook = seawall_lifespan(shutdown=recording_shutdown(log), drain_timeout=5, clock=clock)
    app = Starlette(routes=[Route("/", stuck)], lifespan=hook)
    app.add_middleware(ResilienceMiddleware, lifespan=hook)
    async with client(app) as c, anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        await driver.startup()
        tg.start_soon(c.get, "/")
        await entered.wait()
        done: list[str] = []
        stopped = anyio.Event()

        async def stop() -> None:
            done.append(await driver.shutdown())
            stopped.set()

        tg.start_soon(stop)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4.9)
        await anyio.wait_all_tasks_blocked()
        assert log == []
        clock.advance(0.1)
        with anyio.fail_after(10):
            await stopped.wait()
        tg.cancel_scope.cancel()
    assert done == ["lifespan.shutdown.complete"]
    assert log == ["cache (10)", "db (20)", "flush (30)"]


async def test_probes_and_the_drain_endpoint() -> None:
    """/readyz is 200 until a loopback POST /-/drain; then 503 while requests still work."""
    hook = seawall_lifespan()
    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(
        ResilienceMiddleware,
        lifespan=hook,
        rate_limit="1/hour",
        readiness_path="/readyz",
        liveness_path="/livez",
        drain_path="/-/drain",
    )
    async with client(app) as local, client(app, "203.0.113.7") as remote:
        assert (await local.get("/readyz")).status_code == 200
        assert (await remote.post("/-/drain")).status_code == 403
        assert hook.ready
        drained = await local.post("/-/drain")
        assert (drained.status_code, drained.json()) == (
            200,
            {"status": "draining", "in_flight": 0},
        )
        ready = await local.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert (await local.get("/livez")).status_code == 200
        assert (await local.get("/")).status_code == 200
        assert (await local.put("/-/drain")).status_code == 405
        assert [(await local.get("/readyz")).status_code for _ in range(3)] == [503] * 3


async def test_heartbeat_runs_between_startup_and_shutdown(
    tmp_path: Path, exits: ExitStack
) -> None:
    """A heartbeat given to the hook beats from startup and is marked stopped at shutdown."""
    beat = Heartbeat(state_file=tmp_path / "hb.json", interval=60)
    app = Starlette(routes=[Route("/", hello)], lifespan=seawall_lifespan(heartbeat=beat))
    async with anyio.create_task_group() as tg:
        driver = exits.enter_context(LifespanDriver(app, tg))
        await driver.startup()
        state = Heartbeat.read_state(tmp_path / "hb.json")
        assert state is not None
        assert beat.is_running
        await driver.shutdown()
    assert not beat.is_running


async def test_a_failing_startup_is_reported(exits: ExitStack) -> None:
    """If the hook cannot start, the server hears lifespan.startup.failed."""

    @asynccontextmanager
    async def broken(app: Any) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    app = Starlette(routes=[Route("/", hello)], lifespan=seawall_lifespan(app_lifespan=broken))
    heard: list[str] = []
    failures: list[BaseException] = []
    try:
        async with anyio.create_task_group() as tg:
            driver = exits.enter_context(LifespanDriver(app, tg))
            heard.append(await driver.startup())
    except* RuntimeError as group:
        failures.extend(group.exceptions)
    assert heard == ["lifespan.startup.failed"]
    assert [str(e) for e in failures] == ["no database"]


async def test_chained_sigterm_flips_readiness_calls_the_server_and_is_restored() -> None:
    """chain_sigterm: SIGTERM sets draining, then the previous handler runs; finish restores it."""
    heard: list[int] = []

    def server_handler(signum: int, frame: object) -> None:
        heard.append(signum)

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        hook = seawall_lifespan(chain_sigterm=True)
        await hook.startup()
        assert signal.getsignal(signal.SIGTERM) is not server_handler
        assert hook.ready
        os.kill(os.getpid(), signal.SIGTERM)
        with anyio.fail_after(5):
            while not heard:  # the handler runs on the main thread at the next bytecode
                await anyio.lowlevel.checkpoint()
        assert heard == [signal.SIGTERM]
        assert hook.draining
        assert not hook.ready
        await hook.drain()
        await hook.finish()
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_bad_drain_timeout_names_the_parameter() -> None:
    """A negative drain_timeout raises ValueError naming it."""
    with pytest.raises(ValueError, match="drain_timeout"):
        seawall_lifespan(drain_timeout=-1)
