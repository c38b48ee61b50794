"""The middleware's shared gates in one store round trip per request (asgi/_admission.py).

Limits, bulkhead and breaker kept in a store are decided by one ``Store.aadmit_request``;
these tests count the round trips on a real redis-server (``INFO commandstats``), check the
answers on the memory, file and Redis stores, and freeze Redis with SIGSTOP to show that an
admission whose answer was lost leaves no slot or token behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from _redis_server import RedisServer
from seawall.asgi import ResilienceMiddleware
from seawall.stores import FileStore, MemoryStore, RedisStore, Store
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio

state: dict[str, Any] = {}


async def ok(request: Request) -> PlainTextResponse:
    if "mark" in state:
        state["mark"]("inside")  # the app runs: what came before was the request path
    return PlainTextResponse("ok")


async def boom(request: Request) -> PlainTextResponse:
    return PlainTextResponse("down", status_code=500)


async def wait(request: Request) -> PlainTextResponse:
    state["inside"] += 1
    if state["inside"] == state["expected"]:
        state["all_in"].set()
    await state["go"].wait()
    return PlainTextResponse("slow")


APP = Starlette(routes=[Route("/", ok), Route("/boom", boom), Route("/wait", wait)])


def scripts(server: RedisServer) -> int:
    """EVALSHA and EVAL calls so far."""
    with server.client() as c:
        stats = c.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in ("evalsha", "eval"))


@pytest.fixture(params=["memory", "file", "redis"])
def store(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Store]:
    """A store of each kind, on the fake clock's wall time."""
    found: Store
    if request.param == "memory":
        found = MemoryStore(clock=clock)
    elif request.param == "file":
        found = FileStore(tmp_path / "state", clock=clock)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        found = RedisStore(server.url, time_source="client", clock=clock, timeout=2.0)
    yield found
    found.close()


def middleware(store: Store, clock: FakeClock, **options: Any) -> ResilienceMiddleware:
    """The app behind a middleware whose gates all live in ``store``."""
    return ResilienceMiddleware(APP, store=store, clock=clock, **options)


async def get(mw: ResilienceMiddleware, path: str = "/") -> httpx.Response:
    """One request through ``mw``."""
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_limits_answer_with_ratelimit_headers(store: Store, clock: FakeClock) -> None:
    """Two quotas in one admission: 2 admitted, the 3rd refused 429 with exact fields."""
    mw = middleware(store, clock, rate_limit="2/second;10/minute")
    first, second, third = [await get(mw) for _ in range(3)]
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert first.headers["ratelimit"] == '"default-1";r=1;t=1, "default-2";r=9;t=6'
    assert third.headers["retry-after"] == "1"
    assert third.headers["ratelimit"] == '"default-1";r=0;t=1, "default-2";r=8;t=12'
    clock.advance(0.5)
    assert (await get(mw)).headers["ratelimit"] == '"default-1";r=0;t=1, "default-2";r=7;t=18'
    await store.aclose()


async def test_full_bulkhead_answers_503_and_spends_no_token(
    store: Store, clock: FakeClock
) -> None:
    """One slot held: the next request is shed with 503 and the limit keeps its token."""
    mw = middleware(store, clock, rate_limit="5/minute", max_concurrent=1)
    state.update(inside=0, expected=1, all_in=anyio.Event(), go=anyio.Event())
    async with anyio.create_task_group() as tg:
        tg.start_soon(get, mw, "/wait")
        await state["all_in"].wait()
        shed = await get(mw)
        assert (shed.status_code, shed.headers["retry-after"]) == (503, "1")
        state["go"].set()
    after = await get(mw)
    assert after.status_code == 200
    assert after.headers["ratelimit"] == '"default";r=3;t=24'  # 5 - the slow one - this one
    await store.aclose()


async def test_open_breaker_answers_503_until_its_reset_timeout(
    store: Store, clock: FakeClock
) -> None:
    """Two 500s open the breaker: 503 with the open period left; a success after it closes it."""
    mw = middleware(store, clock, breaker={"max_failures": 2, "reset_timeout": 30.0})
    assert [(await get(mw, "/boom")).status_code for _ in range(2)] == [500, 500]
    clock.advance(10.0)
    refused = await get(mw)
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "20")
    clock.advance(20.0)
    assert (await get(mw)).status_code == 200
    assert mw.breaker is not None
    assert mw.breaker.state.name == "CLOSED"
    await store.aclose()


class Monitor:
    """Every command clients send to ``server``, in the order Redis runs them (MONITOR).

    Commands a script runs inside Redis are left out: they are no round trip. ``mark(text)``
    sends ``ECHO text`` so a test can cut the stream where it wants.
    """

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.seen: list[str] = []
        self._marker = server.client()  # one connection, opened before the monitor starts
        self._marker.ping()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.server.client() as c, c.monitor() as m:
            self._started.set()
            for event in m.listen():
                if event.get("client_type") == "lua":
                    continue
                self.seen.append(event["command"])
                if event["command"] == "ECHO end":
                    return

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mark("end")
        self._thread.join(10.0)
        self._marker.close()

    def mark(self, text: str) -> None:
        self._marker.echo(text)

    def between(self, first: str, last: str) -> list[str]:
        """The commands between two marks, each by its name."""
        start, end = self.seen.index(f"ECHO {first}"), self.seen.index(f"ECHO {last}")
        return [cmd.split(" ", 1)[0] for cmd in self.seen[start + 1 : end]]


async def test_one_round_trip_on_the_request_path(redis_server: RedisServer) -> None:
    """Limit + bulkhead + breaker in Redis: one EVALSHA before the app runs, one after it."""
    store = RedisStore(redis_server.url, timeout=2.0, async_client="redis-py")
    mw = ResilienceMiddleware(
        APP, rate_limit="100/second;1000/minute", max_concurrent=8, breaker=True, store=store
    )
    await get(mw)  # loads the scripts (NOSCRIPT, then EVAL) and opens the connection
    with Monitor(redis_server) as monitor:
        state["mark"] = monitor.mark
        try:
            monitor.mark("request")
            response = await get(mw)
            monitor.mark("done")
        finally:
            del state["mark"]
    assert response.status_code == 200
    assert monitor.between("request", "inside") == ["EVALSHA"]  # every gate: one script
    assert monitor.between("inside", "done") == ["EVALSHA"]  # slot and outcome, one batch
    await store.aclose()


def _wait_for_stale(server: RedisServer, before: int) -> int:
    """Block until the resumed Redis has run the scripts left in its sockets; how many ran."""
    deadline = time.monotonic() + 10.0  # a bound on a resumed process catching up, not a figure
    seen, quiet = scripts(server), 0
    while True:
        assert time.monotonic() < deadline, "the stale scripts never ran"
        time.sleep(0.05)
        now = scripts(server)
        quiet = quiet + 1 if now == seen else 0
        seen = now
        if now > before and quiet >= 4:
            return now - before


async def test_lost_admissions_leave_no_slot_and_no_token(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    """Redis frozen under 3 admissions: once it is back, all 3 slots and the 3 tokens are free."""
    store = RedisStore(redis_server.url, timeout=1.0)
    mw = ResilienceMiddleware(
        APP, rate_limit="6/minute", max_concurrent=3, breaker=True, store=store,
        degraded="deny", clock=clock,
    )  # fmt: skip
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        state.update(inside=0, expected=3, all_in=anyio.Event(), go=anyio.Event())
        async with anyio.create_task_group() as tg:  # three pooled connections, script loaded
            for _ in range(3):
                tg.start_soon(client.get, "/wait")
            await state["all_in"].wait()
            state["go"].set()
        before = scripts(redis_server)
        redis_server.pause()
        try:
            statuses: list[int] = []

            async def one() -> None:
                statuses.append((await client.get("/")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(one)
            assert statuses == [503, 503, 503]  # degraded="deny"
        finally:
            redis_server.resume()
        assert await anyio.to_thread.run_sync(_wait_for_stale, redis_server, before) >= 1
        clock.advance(1.0)  # past the store guard's backoff
        # The 3 slow requests took 3 of the 6 tokens; the lost ones took none in the end.
        answers = [await client.get("/") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert mw.bulkhead is not None
        assert mw.bulkhead.stats.in_flight == 0
    await store.aclose()


async def test_refused_client_is_answered_locally_until_its_refusal_ends(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    """1/minute: after the first refusal, refusals cost Redis nothing until the minute is up."""
    store = RedisStore(redis_server.url, time_source="client", clock=clock, timeout=2.0)
    mw = ResilienceMiddleware(APP, rate_limit="1/minute", store=store, clock=clock)
    assert (await get(mw)).status_code == 200
    assert (await get(mw)).status_code == 429  # asks Redis: the refusal and when it ends
    with Monitor(redis_server) as monitor:
        monitor.mark("flood")
        refused = [await get(mw) for _ in range(5)]
        clock.advance(45.0)
        late = await get(mw)
        monitor.mark("done")
    assert monitor.between("flood", "done") == []
    assert {r.status_code for r in refused} == {429}
    assert refused[0].headers["retry-after"] == "60"
    assert (late.status_code, late.headers["retry-after"]) == (429, "15")
    assert late.headers["ratelimit"] == '"default";r=0;t=15'
    clock.advance(15.0)
    assert (await get(mw)).status_code == 200  # the refusal ended: Redis is asked again
    await store.aclose()


async def test_refusals_kept_for_at_most_max_keys_clients(clock: FakeClock) -> None:
    """max_keys=2: a third refused client pushes out the refusal that ends first."""
    store = MemoryStore(clock=clock)
    mw = ResilienceMiddleware(
        APP, rate_limit="1/minute", store=store, clock=clock, max_keys=2,
        key=lambda scope: scope["query_string"].decode(),
    )  # fmt: skip
    assert mw._gates is not None
    for path in ("/?a", "/?b", "/?c"):
        assert [(await get(mw, path)).status_code for _ in range(2)] == [200, 429]
        clock.advance(1.0)
    assert len(mw._gates.refusals) == 2
    await store.aclose()


class HeldStore(MemoryStore):
    """A MemoryStore whose batches of settlements wait for ``go`` (to hold one in flight)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.batches: list[int] = []
        self.go = anyio.Event()
        self.sending = anyio.Event()

    async def asettle_requests(self, gates: Any, items: Any) -> Any:
        self.batches.append(len(items))
        self.sending.set()
        await self.go.wait()
        return await super().asettle_requests(gates, items)


async def test_requests_done_while_a_batch_is_in_flight_share_the_next(clock: FakeClock) -> None:
    """5 requests: the first one's batch is held; the 4 that finish meanwhile go in one batch."""
    store = HeldStore(clock)
    mw = ResilienceMiddleware(APP, max_concurrent=10, breaker=True, store=store, clock=clock)
    done: list[int] = []

    async def one() -> None:
        done.append((await get(mw)).status_code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        await store.sending.wait()  # the first settlement is on its way, and held
        for _ in range(4):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        assert store.batches == [1]
        assert store.holders(mw.bulkhead.store_spec) == 5  # type: ignore[arg-type, union-attr]
        store.go.set()
    assert done == [200] * 5
    assert store.batches == [1, 4]
    assert store.holders(mw.bulkhead.store_spec) == 0  # type: ignore[arg-type, union-attr]
    assert store.view(mw.breaker.store_spec).successful_calls == 5  # type: ignore[arg-type, union-attr]


async def test_settlement_survives_a_cancelled_request(clock: FakeClock) -> None:
    """A request cancelled while its settlement waits for a batch still frees its slot."""
    store = HeldStore(clock)
    mw = ResilienceMiddleware(APP, max_concurrent=10, store=store, clock=clock)
    late = anyio.CancelScope()

    async def cancelled() -> None:
        with late:
            await get(mw)

    async with anyio.create_task_group() as tg:
        tg.start_soon(get, mw)
        await store.sending.wait()  # the first settlement is on its way, and held
        tg.start_soon(cancelled)
        await anyio.wait_all_tasks_blocked()  # the second waits for a batch to carry it
        late.cancel()
        await anyio.wait_all_tasks_blocked()
        store.go.set()
    assert store.batches == [1, 1]
    assert store.holders(mw.bulkhead.store_spec) == 0  # type: ignore[arg-type, union-attr]


async def test_reset_forgets_the_refusals(clock: FakeClock) -> None:
    """mw.reset() (so reset_gates()) refills the quota and forgets the refusal it remembered."""
    store = MemoryStore(clock=clock)
    mw = ResilienceMiddleware(APP, rate_limit="1/minute", store=store, clock=clock)
    assert [(await get(mw)).status_code for _ in range(2)] == [200, 429]
    mw.reset()
    assert (await get(mw)).status_code == 200


async def test_breaker_transitions_reach_its_listeners(store: Store, clock: FakeClock) -> None:
    """Transitions decided by the admission and by the settlements reach on_state_change."""
    seen: list[tuple[str, str]] = []
    options: dict[str, Any] = {"max_failures": 2, "reset_timeout": 30.0}
    options["on_state_change"] = lambda e: seen.append((e.old.name, e.new.name))
    mw = middleware(store, clock, breaker=options)
    assert [(await get(mw, "/boom")).status_code for _ in range(2)] == [500, 500]
    clock.advance(30.0)
    assert (await get(mw)).status_code == 200
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    await store.aclose()
