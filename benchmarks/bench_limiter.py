"""Rate limiter cost and accuracy, against baselines and peers measured in the same run.

    python3 benchmarks/bench_limiter.py            # full run (~40 s)
    python3 benchmarks/bench_limiter.py --quick    # fewer repeats, 2 s accuracy runs

1. Cost of one granted call with a never-denying rate: sync ``try_acquire`` as a ratio to a
   bare call, async ``await acquire_async()`` as a ratio to a bare await.
2. Accuracy: rate 100/s, burst 10, 50 asyncio tasks looping on the limiter for 5 s on the real
   clock: grants against the ideal ``burst + rate*t`` (t from the first grant to the last; a
   correct limiter lands in [0.999, 1] of it, at most one above), the most grants in any 1 s
   window (the bucket allows ``burst + rate`` = 110), and process CPU time as a share of the
   run. Then the same with 8 threads added, on one shared limiter.

Peers (aiolimiter, kstlib) are measured when installed: ``pip install aiolimiter kstlib``.
Absolute nanoseconds drift between runs on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from seawall import KeyedRateLimiter, RateLimiter

RATE, BURST, TASKS, THREADS = 100.0, 10, 50, 8


def noop() -> None:
    return None


async def anoop() -> None:
    return None


def per_call_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Best-of-``repeat`` mean nanoseconds per call of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def per_await_ns(
    make: Callable[[], Callable[[], Awaitable[Any]]], number: int, repeat: int
) -> float:
    """Best-of-``repeat`` mean nanoseconds per ``await fn()``, on one asyncio loop."""

    async def run() -> float:
        fn = make()  # built inside the loop: some peers bind to the running loop
        best = float("inf")
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter_ns()
            for _ in range(number):
                await fn()
            best = min(best, (time.perf_counter_ns() - start) / number)
        return best

    return asyncio.run(run())


def peers() -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        import aiolimiter

        found["aiolimiter"] = aiolimiter
    except ImportError:
        pass
    try:
        from kstlib import resilience

        found["kstlib"] = resilience
    except ImportError:
        pass
    return found


def cost_table(number: int, repeat: int, found: dict[str, Any]) -> None:
    bare = per_call_ns(noop, number, repeat)
    bare_await = per_await_ns(lambda: anoop, number, repeat)
    print(f"baseline: bare call {bare:.0f} ns, bare await {bare_await:.0f} ns\n")
    print(f"{'granted call (never-denying rate)':44} {'ns':>7} {'ratio':>7} {'above':>8}")

    def row(label: str, ns: float, base: float) -> None:
        print(f"{label:44} {ns:7.0f} {ns / base:6.1f}x {ns - base:+7.0f}")

    big = 1e12
    lim = RateLimiter(big, burst=big)
    row("seawall RateLimiter.try_acquire()", per_call_ns(lim.try_acquire, number, repeat), bare)
    row("seawall RateLimiter.consume()", per_call_ns(lim.consume, number, repeat), bare)
    keyed = KeyedRateLimiter(big, burst=big)
    row(
        "seawall KeyedRateLimiter.try_acquire(key)",
        per_call_ns(lambda: keyed.try_acquire("client"), number, repeat),
        bare,
    )
    row(
        "seawall KeyedRateLimiter.consume(key)",
        per_call_ns(lambda: keyed.consume("client"), number, repeat),
        bare,
    )
    if "kstlib" in found:
        k = found["kstlib"].RateLimiter(rate=big, per=1.0)
        row("kstlib RateLimiter.try_acquire()", per_call_ns(k.try_acquire, number, repeat), bare)
    row(
        "seawall await acquire_async()",
        per_await_ns(lambda: RateLimiter(big, burst=big).acquire_async, number, repeat),
        bare_await,
    )
    if "aiolimiter" in found:
        make = found["aiolimiter"].AsyncLimiter
        row(
            "aiolimiter await acquire()",
            per_await_ns(lambda: make(big, 1.0).acquire, number, repeat),
            bare_await,
        )
    if "kstlib" in found:
        make_k = found["kstlib"].RateLimiter
        row(
            "kstlib await acquire_async()",
            per_await_ns(lambda: make_k(rate=big, per=1.0).acquire_async, number, repeat),
            bare_await,
        )


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max(
        (bisect.bisect_right(stamps, s + width) - i for i, s in enumerate(stamps)), default=0
    )


def accuracy(
    label: str,
    acquire: Callable[[], Awaitable[Any]],
    seconds: float,
    sync: Callable[[], Any] | None,
    *,
    quiet: bool = False,
) -> None:
    """Hammer one limiter with tasks (and threads, if ``sync``) and report what got through."""
    stamps: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        assert sync is not None
        while not stop.is_set():
            sync()
            stamps.append(time.monotonic())

    async def worker() -> None:
        while True:
            await acquire()
            stamps.append(time.monotonic())

    async def run() -> float:
        threads = [threading.Thread(target=spin) for _ in range(THREADS if sync else 0)]
        cpu = time.process_time()
        start = time.monotonic()
        for t in threads:
            t.start()
        tasks = [asyncio.create_task(worker()) for _ in range(TASKS)]
        await asyncio.sleep(seconds)
        end = time.monotonic()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop.set()
        for t in threads:
            t.join()
        cpu = time.process_time() - cpu
        inside = sorted(s for s in stamps if s <= end)
        # Ideal over the span actually measured, first grant to last: burst + rate * span.
        ideal = BURST + RATE * (inside[-1] - inside[0])
        if quiet:
            return cpu
        print(
            f"{label:38} {len(inside):6d} {ideal:7.1f} {len(inside) / ideal:8.4f} "
            f"{max_in_window(inside):8d} {100 * cpu / (end - start):6.1f}%"
        )
        return cpu

    asyncio.run(run())


def accuracy_table(seconds: float, found: dict[str, Any]) -> None:
    print(
        f"\naccuracy: rate {RATE:g}/s, burst {BURST}, {TASKS} asyncio tasks, {seconds:g} s, "
        f"system clock (at most {BURST + RATE:g} allowed in any 1 s)\n"
    )
    print(f"{'limiter':38} {'grants':>6} {'ideal':>7} {'ratio':>8} {'max/1s':>8} {'CPU':>7}")
    # Warm-up, not reported: first use imports and initialises the backends' timer machinery.
    accuracy("warm-up", RateLimiter(RATE, burst=BURST).acquire_async, 0.3, None, quiet=True)
    if "aiolimiter" in found:
        warm = found["aiolimiter"].AsyncLimiter(BURST, BURST / RATE)
        accuracy("warm-up", warm.acquire, 0.3, None, quiet=True)
    lim = RateLimiter(RATE, burst=BURST)
    accuracy("seawall", lim.acquire_async, seconds, None)
    if "aiolimiter" in found:
        # aiolimiter's capacity is max_rate: 10 per 0.1 s is burst 10 at 100/s.
        leaky = found["aiolimiter"].AsyncLimiter(BURST, BURST / RATE)
        accuracy("aiolimiter", leaky.acquire, seconds, None)
    if "kstlib" in found:
        k = found["kstlib"].RateLimiter(rate=RATE, per=1.0, burst=BURST)
        accuracy("kstlib (capacity is rate, not burst)", k.acquire_async, seconds, None)
    mixed = RateLimiter(RATE, burst=BURST)
    accuracy(f"seawall, + {THREADS} threads", mixed.acquire_async, seconds, mixed.acquire)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 2 s runs")
    args = parser.parse_args()
    number, repeat, seconds = (50_000, 3, 2.0) if args.quick else (200_000, 7, 5.0)
    found = peers()
    print("peers installed:", ", ".join(found) or "none")
    cost_table(number, repeat, found)
    accuracy_table(seconds, found)


if __name__ == "__main__":
    main()
