"""``seawall demo``: a short scripted scenario that shows each policy at work.

It runs in real time on the in-memory default state, takes a few seconds, prints what happens
as it happens, and ends with a summary. Every count it prints is decided by the scenario's
structure (how many calls, how many slots), not by timing, so the demo's output is stable.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from ._breaker import CircuitBreaker, CircuitStateChange
from ._bulkhead import Bulkhead
from ._clock import SYSTEM_CLOCK
from ._errors import BulkheadFullError, CircuitOpenError, RateLimitExceededError
from ._heartbeat import Heartbeat
from ._heartbeat_cli import check as check_heartbeat
from ._limiter import RateLimiter
from ._shutdown import GracefulShutdown
from ._stall import LoopStallDetector, LoopStallEvent
from ._watchdog import Watchdog

__all__ = ["register", "run_demo"]


def register(subparsers: Any) -> None:
    """Add ``seawall demo`` to the command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run a short scripted scenario showing each policy at work"
    )
    parser.set_defaults(handler=lambda args: run_demo())


class _Console:
    """Prints timestamped lines and tallies what happened."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = SYSTEM_CLOCK.monotonic()
        self.tally: Counter[str] = Counter()

    def say(self, text: str) -> None:
        elapsed = SYSTEM_CLOCK.monotonic() - self.start
        print(f"[{elapsed:6.2f}s] {text}", file=self.out, flush=True)

    def section(self, title: str) -> None:
        print(f"\n== {title} ==", file=self.out, flush=True)


class _FlakyUpstream:
    """An upstream that fails its first ``failures`` calls, then recovers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def fetch(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"upstream down (call {self.calls})")
        return f"quote #{self.calls}"


async def _breaker_scene(con: _Console) -> None:
    con.section("circuit breaker: trip, fail fast, probe, recover")
    upstream = _FlakyUpstream(failures=3)

    def announce(event: CircuitStateChange) -> None:
        con.say(f"breaker {event.old.name} -> {event.new.name} ({event.reason})")
        con.tally["breaker transitions"] += 1

    breaker = CircuitBreaker(
        max_failures=3, reset_timeout=0.5, name="quotes", on_state_change=announce
    )
    for _ in range(5):
        await _attempt(con, breaker, upstream.fetch)
    con.say("waiting 0.5 s for the reset timeout ...")
    await SYSTEM_CLOCK.asleep(0.5)
    for _ in range(2):
        await _attempt(con, breaker, upstream.fetch)
    con.say(f"upstream saw {upstream.calls} calls; {con.tally['fast fails']} never reached it")


async def _attempt(con: _Console, breaker: CircuitBreaker, fetch: Callable[[], Any]) -> None:
    try:
        result = await breaker.acall(fetch)
    except CircuitOpenError as exc:
        con.tally["fast fails"] += 1
        con.say(f"rejected at once: circuit open, retry after {exc.retry_after:.2f} s")
    except ConnectionError as exc:
        con.tally["upstream failures"] += 1
        con.say(f"call failed: {exc}")
    else:
        con.tally["upstream successes"] += 1
        con.say(f"call succeeded: {result}")


async def _limiter_scene(con: _Console) -> None:
    con.section("rate limiter: 5/s, burst 5: a burst of 10, then paced waiters")
    limiter = RateLimiter(rate=5, per=1.0, burst=5, name="api")
    for i in range(10):
        decision = limiter.consume()
        if decision.granted:
            con.tally["limiter granted"] += 1
            con.say(f"request {i + 1:2d}: granted, {decision.remaining} left in the bucket")
        else:
            con.tally["limiter rejected"] += 1
            con.say(f"request {i + 1:2d}: 429, retry after {decision.retry_after:.2f} s")
    con.say("three waiters queue for tokens (served in arrival order, no polling):")

    async def waiter(n: int) -> None:
        await limiter.acquire_async(timeout=2.0)
        con.tally["limiter waited"] += 1
        con.say(f"waiter {n} granted")

    async with anyio.create_task_group() as tg:
        for n in range(1, 4):
            tg.start_soon(waiter, n)
            await anyio.lowlevel.checkpoint()
    try:
        await limiter.acquire_async(timeout=0.01)
    except RateLimitExceededError as exc:
        con.tally["limiter timeouts"] += 1
        con.say(f"caller with timeout 0.01 s refused at once: retry after {exc.retry_after:.2f} s")


async def _bulkhead_scene(con: _Console) -> None:
    con.section("bulkhead: 3 slots, no queue: 8 concurrent requests")
    bulkhead = Bulkhead(max_concurrent=3, max_wait=0.0, name="workers")
    release = anyio.Event()

    async def request(n: int) -> None:
        try:
            async with bulkhead:
                con.tally["bulkhead admitted"] += 1
                con.say(f"request {n}: running")
                await release.wait()
        except BulkheadFullError:
            con.tally["bulkhead shed"] += 1
            con.say(f"request {n}: shed (503)")

    async with anyio.create_task_group() as tg:
        for n in range(1, 9):
            tg.start_soon(request, n)
        await anyio.wait_all_tasks_blocked()
        con.say(f"in flight: {bulkhead.stats.in_flight}; releasing")
        release.set()
    con.say(f"in flight after: {bulkhead.stats.in_flight}")


async def _watchdog_scene(con: _Console) -> None:
    con.section("watchdog and stall detector: a coroutine blocks the event loop")
    fired = threading.Event()

    def on_freeze() -> None:  # runs on seawall's monitor thread, since the loop is stuck
        con.say("watchdog fired: no ping for 0.2 s (the event loop itself is blocked)")
        fired.set()

    def on_stall(event: LoopStallEvent) -> None:
        if event.recovered:
            con.say(f"event loop ran again after {event.duration:.2f} s")
        else:
            frames = [line for line in event.stack.splitlines() if line.strip().startswith("File")]
            con.say(f"event loop stalled {event.duration:.2f} s in {frames[-1].strip()}")

    async with (
        LoopStallDetector(threshold=0.2, on_stall=on_stall),
        Watchdog(timeout=0.2, on_timeout=on_freeze, name="worker") as watchdog,
    ):
        await watchdog.aping()
        con.say("calling time.sleep(0.6) inside a coroutine (the bug being shown) ...")
        SYSTEM_CLOCK.sleep(0.6)  # a blocking sleep on the loop thread, on purpose
        fired.wait(5)
        await SYSTEM_CLOCK.asleep(0.1)  # the loop runs again; the detector reports the recovery
    con.tally["watchdog firings"] += watchdog.stats.timeouts_triggered


async def _lifecycle_scene(con: _Console) -> None:
    con.section("heartbeat and graceful shutdown: what SIGTERM would run")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.heartbeat"
        heartbeat = Heartbeat(path, interval=0.2, metadata={"demo": "lifecycle"})
        stuck = threading.Event()
        shutdown = GracefulShutdown(timeout=2.0)
        shutdown.register("flush-queue", lambda: con.say("flushing the queue"), priority=10)
        shutdown.register("stuck-client", stuck.wait, priority=20, timeout=0.3)
        shutdown.register("heartbeat", heartbeat.stop, priority=100)  # last: "stopped" shows
        heartbeat.start()  # the first beat is on disk before start() returns
        con.say(f"health check: {check_heartbeat(path, max_age=1.0)[1]}")
        for result in await shutdown.atrigger():
            con.tally[f"shutdown callbacks {result.status}"] += 1
            con.say(f"callback {result.name:<12} {result.status:<7} {result.duration:.2f} s")
        stuck.set()  # release the abandoned callback's thread
        con.say(f"health check: {check_heartbeat(path, max_age=1.0)[1]}")


def _summary(con: _Console) -> None:
    con.section("summary")
    for key in (
        "upstream failures",
        "fast fails",
        "upstream successes",
        "breaker transitions",
        "limiter granted",
        "limiter rejected",
        "limiter waited",
        "limiter timeouts",
        "bulkhead admitted",
        "bulkhead shed",
        "watchdog firings",
        "shutdown callbacks ok",
        "shutdown callbacks timeout",
    ):
        print(f"  {key:28} {con.tally[key]}", file=con.out)


async def _scenario(out: TextIO) -> Counter[str]:
    con = _Console(out)
    print("seawall demo: each policy at work, in real time", file=out)
    await _breaker_scene(con)
    await _limiter_scene(con)
    await _bulkhead_scene(con)
    await _watchdog_scene(con)
    await _lifecycle_scene(con)
    _summary(con)
    return con.tally


def run_demo(out: TextIO | None = None) -> int:
    """Run the scenario on asyncio, print it to ``out`` (stdout), and return exit status 0."""
    anyio.run(_scenario, out or sys.stdout)
    return 0
