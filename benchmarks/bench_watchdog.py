"""Watchdog costs, as ratios to a bare call / await measured in the same run.

    python3 benchmarks/bench_watchdog.py            # full run (~10 s)
    python3 benchmarks/bench_watchdog.py --quick    # fewer repeats

Measures ``ping()`` and ``await aping()`` on a running watchdog, starting and stopping many
watchdogs (and the number of threads they need), and the detection latency of a watchdog on
a blocked event loop. Absolute nanoseconds drift between runs on a shared machine; compare
the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from seawall import Watchdog


def noop() -> None:
    return None


async def anoop() -> None:
    return None


def best_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Best-of-``repeat`` mean nanoseconds per call of ``fn`` over ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


async def abest_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            await fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def bench_ping(number: int, repeat: int) -> None:
    bare = best_ns(noop, number, repeat)
    lock, clock = threading.Lock(), time.monotonic

    def stamp() -> None:  # the least a ping can do: read the clock under a lock
        with lock:
            clock()

    floor = best_ns(stamp, number, repeat)
    with Watchdog(timeout=60) as wd:
        ping = best_ns(wd.ping, number, repeat)
    print(
        f"ping():        {ping:7.0f} ns  bare call {bare:5.0f} ns  x{ping / bare:.1f}"
        f"  (lock+monotonic {floor:.0f} ns, x{floor / bare:.1f})"
    )

    async def run() -> None:
        abare = await abest_ns(anoop, number, repeat)
        async with Watchdog(timeout=60) as wd:
            aping = await abest_ns(wd.aping, number, repeat)
        print(f"await aping(): {aping:7.0f} ns  bare await {abare:5.0f} ns  x{aping / abare:.1f}")

    asyncio.run(run())


def bench_many(count: int) -> None:
    before = threading.active_count()
    dogs = [Watchdog(timeout=60) for _ in range(count)]
    start = time.perf_counter_ns()
    for wd in dogs:
        wd.start()
    started = (time.perf_counter_ns() - start) / count
    threads = threading.active_count() - before
    start = time.perf_counter_ns()
    for wd in dogs:
        wd.stop()
    stopped = (time.perf_counter_ns() - start) / count
    print(
        f"{count} watchdogs: {threads} extra thread(s); "
        f"start {started:.0f} ns, stop {stopped:.0f} ns each"
    )


def bench_blocked_loop(runs: int, timeout: float) -> None:
    """Seconds from the deadline to the sync callback while the loop sleeps in time.sleep."""
    lags: list[float] = []

    async def one() -> None:
        fired_at: list[float] = []
        async with Watchdog(timeout=timeout, on_timeout=lambda: fired_at.append(time.monotonic())):
            start = time.monotonic()
            time.sleep(timeout * 3)  # noqa: ASYNC251 - block the loop on purpose
        lags.append(fired_at[0] - (start + timeout))

    for _ in range(runs):
        asyncio.run(one())
    lags.sort()
    print(
        f"blocked loop, timeout {timeout} s: fired {lags[len(lags) // 2] * 1e3:.2f} ms after the "
        f"deadline (median of {runs}), max {lags[-1] * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    number, repeat = (20_000, 3) if quick else (200_000, 5)
    bench_ping(number, repeat)
    bench_many(1_000 if quick else 10_000)
    bench_blocked_loop(5 if quick else 20, 0.05)


if __name__ == "__main__":
    main()
