"""What honouring ``mock.patch("time.monotonic")`` would cost: an interleaved A/B in one run.

    python3 benchmarks/bench_clock.py            # 3 interleaved rounds (~30 s)
    python3 benchmarks/bench_clock.py --quick    # 1 round

A is seawall's ``SystemClock`` (``monotonic`` bound to the C function at import, so a patch of
``time.monotonic`` is not seen); B is the same clock with methods that look ``time.monotonic``
up on every reading (so a patch would be seen). Each hot path runs with A and with B in turn,
round after round, so machine load hits both alike; the table gives the best time of each and
the ratio B/A. Issue 17 kept A because B costs a limiter grant a measurable 5-8 %.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from seawall import CircuitBreaker, RateLimiter
from seawall._clock import SystemClock


class LookupClock(SystemClock):
    """SystemClock whose readings look the time functions up on every call (variant B)."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class Boom(Exception):
    pass


def noop() -> None:
    return None


def boom() -> None:
    raise Boom


def best_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    """Best-of-`repeat` mean nanoseconds per call of `fn` over `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def paths(clock: SystemClock) -> dict[str, Callable[[], Any]]:
    """The hot paths that read the clock, each bound to ``clock``."""
    limiter = RateLimiter(rate=1e12, per=1.0, burst=1e12, clock=clock)
    closed = CircuitBreaker(max_failures=10**9, clock=clock)
    opened = CircuitBreaker(max_failures=1, reset_timeout=3600, clock=clock)
    try:
        opened.call(boom)
    except Boom:
        pass

    def failing() -> None:
        try:
            closed.call(boom)
        except Boom:
            pass

    def rejected() -> None:
        try:
            opened.call(noop)
        except Exception:
            pass

    return {
        "clock.monotonic()": clock.monotonic,
        "RateLimiter.try_acquire()": limiter.try_acquire,
        "CircuitBreaker.call(ok), closed": lambda: closed.call(noop),
        "CircuitBreaker.call(failing)": failing,
        "CircuitBreaker.call(), rejected": rejected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    rounds = 1 if parser.parse_args().quick else 3
    variants = {"A": paths(SystemClock()), "B": paths(LookupClock())}
    times: dict[str, dict[str, float]] = {name: {"A": 1e18, "B": 1e18} for name in variants["A"]}
    for _ in range(rounds):
        for name in times:
            for label in ("A", "B"):
                ns = best_ns(variants[label][name], 50_000, 5)
                times[name][label] = min(times[name][label], ns)
    print(f"bare call {best_ns(noop, 100_000, 5):.0f} ns; best of {rounds} interleaved rounds")
    print(f"{'path':34} {'A bound':>9} {'B lookup':>9} {'B/A':>6} {'B-A':>8}")
    for name, t in times.items():
        a, b = t["A"], t["B"]
        print(f"{name:34} {a:7.0f}ns {b:7.0f}ns {b / a:6.3f} {b - a:+6.0f}ns")


if __name__ == "__main__":
    main()
