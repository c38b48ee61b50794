"""The engine's inline bulkhead slot counts as :meth:`Bulkhead.acquire` and ``release`` do.

``Engine.send`` and ``Engine.asend`` take and give back the slot of an in-memory bulkhead with
no queue inline (every request pays for it) and go through ``acquire`` / ``release`` only when
no slot is free, someone is queued, releases are being timed or events are observed. Each case
here holds one slot both ways, a request through the transport and the bulkhead's own calls,
doing the same thing meanwhile, and compares the counters, the ``retry_after`` estimate, the
bulkhead events and what a queued waiter got.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx
import pytest
from tests._slot_pool import AppendHook

from seawall import Bulkhead, BulkheadFullError, BulkheadStats
from seawall.events import BulkheadChanged, Rejected, add_listener
from seawall.httpx import ResilientTransport
from seawall.testing import FakeClock


def refuse_another(bulkhead: Bulkhead, clock: FakeClock) -> None:
    assert bulkhead.try_acquire() is False  # the bulkhead is full from here: releases are timed
    clock.advance(3)


@contextmanager
def events(observed: bool) -> Iterator[list[object]]:
    seen: list[object] = []
    if not observed:
        yield seen
        return
    with add_listener(seen.append):
        yield seen


def slot_of(bulkhead: Bulkhead, seen: list[object], outcome: object) -> tuple[object, ...]:
    bulkhead_events = [e for e in seen if isinstance(e, BulkheadChanged | Rejected)]
    return outcome, bulkhead.stats, bulkhead._core.retry_after(), bulkhead_events


def hold_sync(
    through_engine: bool, meanwhile: str, full: bool, observed: bool
) -> tuple[object, ...]:
    clock = FakeClock()
    bulkhead = Bulkhead(1, clock=clock)
    if full:
        bulkhead.acquire()
    go = threading.Event()

    def waiter() -> None:
        bulkhead.acquire(timeout=10)  # handed the slot by the holder's release
        go.wait(10)
        bulkhead.release()

    thread = threading.Thread(target=waiter, daemon=True)

    def hold() -> None:
        if meanwhile == "refuse another":
            refuse_another(bulkhead, clock)
        elif meanwhile == "queue another":
            thread.start()
            clock.wait_for_sleepers(1)

    def handler(request: httpx.Request) -> httpx.Response:
        hold()
        return httpx.Response(200)

    transport = ResilientTransport(
        httpx.MockTransport(handler), bulkhead=bulkhead, breaker=None, retry=None, clock=clock
    )
    outcome: object = "ok"
    with events(observed) as seen:
        try:
            if through_engine:
                transport.handle_request(httpx.Request("GET", "http://a.test/"))
            else:
                bulkhead.acquire()
                try:
                    hold()
                finally:
                    bulkhead.release()
        except BulkheadFullError:
            outcome = "full"
        go.set()
        if meanwhile == "queue another":
            thread.join(10)
    return slot_of(bulkhead, seen, outcome)


async def hold_async(
    through_engine: bool, meanwhile: str, full: bool, observed: bool
) -> tuple[object, ...]:
    clock = FakeClock()
    bulkhead = Bulkhead(1, clock=clock)
    if full:
        bulkhead.acquire()

    async def queue_a_task() -> None:
        await bulkhead.acquire_async(timeout=10)  # handed the slot by the holder's release
        bulkhead.release()

    async with anyio.create_task_group() as tg:

        async def hold() -> None:
            if meanwhile == "refuse another":
                refuse_another(bulkhead, clock)
            elif meanwhile == "queue another":
                tg.start_soon(queue_a_task)
                await anyio.wait_all_tasks_blocked()

        async def handler(request: httpx.Request) -> httpx.Response:
            await hold()
            return httpx.Response(200)

        transport = ResilientTransport(
            httpx.MockTransport(handler), bulkhead=bulkhead, breaker=None, retry=None, clock=clock
        )
        outcome: object = "ok"
        with events(observed) as seen:
            try:
                if through_engine:
                    await transport.handle_async_request(httpx.Request("GET", "http://a.test/"))
                else:
                    bulkhead.acquire()
                    try:
                        await hold()
                    finally:
                        bulkhead.release()
            except BulkheadFullError:
                outcome = "full"
            await anyio.wait_all_tasks_blocked()
    return slot_of(bulkhead, seen, outcome)


# (what happens while the slot is held, full at the start) -> (outcome, stats, retry_after)
CASES: dict[str, tuple[str, bool, tuple[object, BulkheadStats, float]]] = {
    "a free slot": ("nothing", False, ("ok", BulkheadStats(1, 0, 0, 1, 0, 0), 0.0)),
    "no free slot": ("nothing", True, ("full", BulkheadStats(1, 1, 0, 1, 1, 0), 0.0)),
    "a release timed": ("refuse another", False, ("ok", BulkheadStats(1, 0, 0, 1, 1, 0), 3.0)),
    "a hand-over": ("queue another", False, ("ok", BulkheadStats(1, 0, 0, 2, 0, 1), 0.0)),
}


@pytest.mark.parametrize("observed", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_the_inline_slot_counts_as_acquire_and_release_do(case: str, observed: bool) -> None:
    """A request's slot leaves the bulkhead exactly as acquire() and release() leave it."""
    meanwhile, full, expected = CASES[case]
    inline = hold_sync(True, meanwhile, full, observed)
    assert inline[:3] == expected
    assert inline == hold_sync(False, meanwhile, full, observed)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("observed", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_the_inline_async_slot_counts_as_acquire_and_release_do(
    case: str, observed: bool, backend: str
) -> None:
    """An async request's slot leaves the bulkhead exactly as acquire() and release() leave it."""
    meanwhile, full, expected = CASES[case]
    inline = anyio.run(hold_async, True, meanwhile, full, observed, backend=backend)
    assert inline[:3] == expected
    assert inline == anyio.run(hold_async, False, meanwhile, full, observed, backend=backend)


def queued_at_release(bulkhead: Bulkhead, clock: FakeClock) -> list[threading.Thread]:
    """Make the next lock-free release queue a thread after it looks, before it appends."""
    threads: list[threading.Thread] = []

    def queue_a_thread() -> None:
        thread = threading.Thread(target=lambda: bulkhead.acquire(timeout=60), daemon=True)
        thread.start()
        threads.append(thread)
        clock.wait_for_sleepers(1)

    pool = bulkhead._core.free = AppendHook(bulkhead._core.free)
    pool.callback = queue_a_thread
    return threads


def handed_over(bulkhead: Bulkhead, threads: list[threading.Thread]) -> BulkheadStats:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return bulkhead.stats


@pytest.mark.parametrize("path", ["sync request", "asyncio request", "trio request", "async with"])
def test_a_thread_queued_during_the_inline_release_gets_the_slot(path: str) -> None:
    """The engine's inline release (and ``async with``'s) hands the slot to a thread that queued
    between its look at the bulkhead and its append, as Bulkhead.release does."""
    clock = FakeClock()
    bulkhead = Bulkhead(1, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        bulkhead=bulkhead,
        breaker=None,
        retry=None,
        clock=clock,
    )
    request = httpx.Request("GET", "http://a.test/")
    transport.handle_request(request)  # the slot is issued; from here it comes from the pool
    threads = queued_at_release(bulkhead, clock)
    if path == "sync request":
        transport.handle_request(request)
    elif path == "async with":

        async def enter_and_leave() -> None:
            async with bulkhead:
                pass

        anyio.run(enter_and_leave)
    else:
        backend = path.split()[0]
        anyio.run(transport.handle_async_request, request, backend=backend)
    assert handed_over(bulkhead, threads) == BulkheadStats(1, 1, 0, 3, 0, 1)
