"""What telemetry costs on the hot paths: off, with Prometheus installed, and off again.

Run: ``python3 benchmarks/bench_telemetry.py`` (about 20-30 s on 2 cores).

For a breaker ``call(fn)`` (success), a limiter ``try_acquire()`` (granted), a sync
``with bulkhead: fn()`` and an asyncio ``async with bulkhead: await afn()``, the best of several
rounds in ns per operation, printed as a ratio to a bare ``fn()`` / ``await afn()`` baseline
measured in the same run (absolute ns drift between runs and machines). "off" is measured
before anything is installed and again after uninstalling, so the two off columns bracket the
"on" column.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from seawall import Bulkhead, CircuitBreaker, RateLimiter

ROUNDS = 7
N = 200_000


def fn() -> None:
    return None


async def afn() -> None:
    return None


def _time(loop: Callable[[int], None]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        loop(N)
        best = min(best, time.perf_counter() - start)
    return best / N * 1e9


def _bare(n: int) -> None:
    for _ in range(n):
        fn()


def _breaker(breaker: CircuitBreaker) -> Callable[[int], None]:
    def run(n: int) -> None:
        call = breaker.call
        for _ in range(n):
            call(fn)

    return run


def _limiter(limiter: RateLimiter) -> Callable[[int], None]:
    def run(n: int) -> None:
        take = limiter.try_acquire
        for _ in range(n):
            take()

    return run


def _bulkhead(bulkhead: Bulkhead) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            with bulkhead:
                fn()

    return run


def _abare(n: int) -> None:
    async def main() -> None:
        for _ in range(n):
            await afn()

    asyncio.run(main())


def _abulkhead(bulkhead: Bulkhead) -> Callable[[int], None]:
    def run(n: int) -> None:
        async def main() -> None:
            for _ in range(n):
                async with bulkhead:
                    await afn()

        asyncio.run(main())

    return run


def measure() -> dict[str, float]:
    """ns per operation for each case, and the two baselines."""
    breaker = CircuitBreaker(name="bench")
    limiter = RateLimiter(1e12, burst=1e12, name="bench")
    bulkhead = Bulkhead(4, name="bench")
    return {
        "bare fn()": _time(_bare),
        "breaker.call(fn)": _time(_breaker(breaker)),
        "limiter.try_acquire()": _time(_limiter(limiter)),
        "with bulkhead: fn()": _time(_bulkhead(bulkhead)),
        "bare await afn()": _time(_abare),
        "async with bulkhead": _time(_abulkhead(bulkhead)),
    }


def _install() -> Callable[[], None] | None:
    try:
        from prometheus_client import CollectorRegistry

        from seawall.metrics import prometheus
    except ImportError:  # before seawall.metrics existed, or without the extra
        return None
    return prometheus.install(registry=CollectorRegistry()).uninstall


def main() -> None:
    columns = {"off": measure()}
    uninstall = _install()
    if uninstall is not None:
        columns["prometheus"] = measure()
        uninstall()
        columns["off again"] = measure()
    names = list(columns)
    print(f"{'case':<24}" + "".join(f"{n:>22}" for n in names))
    for case in columns["off"]:
        base = "bare await afn()" if "async" in case or "await" in case else "bare fn()"
        cells = []
        for name in names:
            ns = columns[name][case]
            cells.append(f"{ns:8.0f} ns {ns / columns[name][base]:6.2f}x")
        print(f"{case:<24}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
