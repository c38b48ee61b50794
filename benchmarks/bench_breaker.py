"""Circuit breaker overhead, as ratios to a bare call / await / raise measured in the same run.

    python3 benchmarks/bench_breaker.py            # full run (~1 minute)
    python3 benchmarks/bench_breaker.py --quick    # fewer repeats

Peers (pybreaker, circuitbreaker, aiobreaker, purgatory, kstlib) are measured when installed:
``pip install pybreaker circuitbreaker aiobreaker purgatory kstlib``.
Absolute nanoseconds drift between runs on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from seawall import CircuitBreaker, CircuitOpenError

Sync = Callable[[], Any]


class Boom(Exception):
    pass


def noop() -> None:
    return None


async def anoop() -> None:
    return None


def best_ns(fn: Sync, number: int, repeat: int) -> float:
    """Best-of-`repeat` mean nanoseconds per call of `fn` over `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def best_async_ns(make: Callable[[], Awaitable[Any]], number: int, repeat: int) -> float:
    async def loop() -> float:
        best = float("inf")
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter_ns()
            for _ in range(number):
                await make()
            best = min(best, (time.perf_counter_ns() - start) / number)
        return best

    return asyncio.run(loop())


def rejecting(call: Sync, exc: type[BaseException]) -> Sync:
    def run() -> None:
        try:
            call()
        except exc:
            pass

    return run


def arejecting(make: Callable[[], Awaitable[Any]], exc: type[BaseException]) -> Any:
    async def run() -> None:
        try:
            await make()
        except exc:
            pass

    return run


def bare_raise() -> None:
    raise Boom


async def abare_raise() -> None:
    raise Boom


def seawall_cases() -> dict[str, dict[str, Any]]:
    closed = CircuitBreaker(max_failures=10**9)
    opened = CircuitBreaker(max_failures=1, reset_timeout=3600)
    try:
        opened.call(bare_raise)
    except Boom:
        pass
    decorated = closed(noop)
    adecorated = closed(anoop)
    return {
        "seawall call()": {"closed": lambda: closed.call(noop)},
        "seawall decorator": {
            "closed": decorated,
            "aclosed": adecorated,
            "reject": rejecting(lambda: opened.call(noop), CircuitOpenError),
            "areject": arejecting(lambda: opened.acall(anoop), CircuitOpenError),
        },
        "seawall acall()": {"aclosed": lambda: closed.acall(anoop)},
    }


def peer_cases() -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    try:
        import pybreaker

        closed = pybreaker.CircuitBreaker(fail_max=10**9)
        opened = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
        try:
            opened.call(bare_raise)
        except (Boom, pybreaker.CircuitBreakerError):
            pass
        cases["pybreaker 1.4"] = {
            "closed": lambda: closed.call(noop),
            "reject": rejecting(lambda: opened.call(noop), pybreaker.CircuitBreakerError),
        }
    except ImportError:
        pass
    try:
        import circuitbreaker as cbmod

        closed_fn = cbmod.circuit(failure_threshold=10**9)(noop)
        closed_afn = cbmod.circuit(failure_threshold=10**9)(anoop)

        @cbmod.circuit(failure_threshold=1, recovery_timeout=3600)
        def opened_fn() -> None:
            raise Boom

        @cbmod.circuit(failure_threshold=1, recovery_timeout=3600)
        async def opened_afn() -> None:
            raise Boom

        for f in (opened_fn,):
            try:
                f()
            except Boom:
                pass
        try:
            asyncio.run(opened_afn())
        except Boom:
            pass
        cases["circuitbreaker 2.1 (decorator)"] = {
            "closed": closed_fn,
            "aclosed": closed_afn,
            "reject": rejecting(opened_fn, cbmod.CircuitBreakerError),
            "areject": arejecting(opened_afn, cbmod.CircuitBreakerError),
        }
    except ImportError:
        pass
    try:
        from kstlib.resilience import CircuitBreaker as KCB
        from kstlib.resilience import CircuitOpenError as KOpen

        kclosed = KCB(max_failures=10**6, reset_timeout=3600)
        kopen = KCB(max_failures=1, reset_timeout=3600)
        try:
            kopen.call(bare_raise)
        except Boom:
            pass
        cases["kstlib 3.8"] = {
            "closed": lambda: kclosed.call(noop),
            "aclosed": lambda: kclosed.acall(anoop),
            "reject": rejecting(lambda: kopen.call(noop), KOpen),
            "areject": arejecting(lambda: kopen.acall(anoop), KOpen),
        }
    except ImportError:
        pass
    try:
        import aiobreaker

        aclosed = aiobreaker.CircuitBreaker(fail_max=10**9)
        aopen = aiobreaker.CircuitBreaker(fail_max=1)

        async def trip() -> None:
            try:
                await aopen.call_async(abare_raise)
            except (Boom, aiobreaker.CircuitBreakerError):
                pass

        asyncio.run(trip())
        cases["aiobreaker 1.2"] = {
            "aclosed": lambda: aclosed.call_async(anoop),
            "areject": arejecting(lambda: aopen.call_async(anoop), aiobreaker.CircuitBreakerError),
        }
    except ImportError:
        pass
    return cases


def rejection_memory(rejections: int) -> tuple[int, int]:
    """Traced memory (bytes) after 1,000 and after `rejections` rejections, errors dropped."""
    breaker = CircuitBreaker(max_failures=1, reset_timeout=3600)
    try:
        breaker.call(bare_raise)
    except Boom:
        pass
    tracemalloc.start()
    marks = []
    for count in (1_000, rejections):
        for _ in range(count - (1_000 if marks else 0)):
            try:
                breaker.call(noop)
            except CircuitOpenError:
                pass
        gc.collect()
        marks.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    return marks[0], marks[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    number, repeat = (20_000, 5) if args.quick else (100_000, 9)

    base = {
        "closed": best_ns(noop, number, repeat),
        "aclosed": best_async_ns(anoop, number, repeat),
        "reject": best_ns(rejecting(bare_raise, Boom), number, repeat),
        "areject": best_async_ns(arejecting(abare_raise, Boom), number, repeat),
    }
    print(f"python {sys.version.split()[0]}; best of {repeat} x {number:,} calls")
    print(
        "baselines: bare call {closed:.0f} ns, bare await {aclosed:.0f} ns, "
        "bare raise+catch {reject:.0f} ns, async raise+catch {areject:.0f} ns".format(**base)
    )
    columns = ("closed sync", 18), ("closed async", 18), ("reject sync", 12), ("reject async", 13)
    header = f"{'breaker':34} " + " ".join(f"{title:>{width}}" for title, width in columns)
    print(header)
    print("-" * len(header))
    rows = {**seawall_cases(), **peer_cases()}
    for name, cases in rows.items():
        cells = []
        for kind in ("closed", "aclosed", "reject", "areject"):
            fn = cases.get(kind)
            if fn is None:
                cells.append("n/a")
                continue
            ns = (
                best_async_ns(fn, number, repeat)
                if kind.startswith("a")
                else best_ns(fn, number, repeat)
            )
            if kind.endswith("closed"):
                cells.append(f"+{ns - base[kind]:.0f} ns x{ns / base[kind]:.1f}")
            else:
                cells.append(f"x{ns / base[kind]:.2f}")
        print(f"{name:34} {cells[0]:>18} {cells[1]:>18} {cells[2]:>12} {cells[3]:>13}")
    first, last = rejection_memory(100_000)
    print(
        f"memory after 1,000 rejections: {first:,} B; after 100,000: {last:,} B "
        f"(growth {last - first:,} B)"
    )


if __name__ == "__main__":
    main()
