"""Uncontended bulkhead cost, against a bare call/await measured in the same run.

Run: ``python3 benchmarks/bench_bulkhead.py`` (about 15-25 s on 2 cores).

Async (asyncio): ``async with x: await afn()`` for a seawall Bulkhead, asyncio.Semaphore,
anyio.Semaphore(fast_acquire=True) and anyio.CapacityLimiter, against a bare ``await afn()``.
Async (trio): seawall against the bare await only, to show the fast path does not depend on
the backend.
Sync: ``with bulkhead: fn()`` and ``with threading.Semaphore: fn()`` against a bare ``fn()``.
Each figure is the best of several rounds (ns per iteration); ratios are to the bare baseline
of the same run, since absolute ns drift between runs and machines.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

import anyio

from seawall import Bulkhead

ROUNDS = 7
ASYNC_N = 100_000
SYNC_N = 300_000


async def afn() -> None:
    return None


def fn() -> None:
    return None


async def _bare_await(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await afn()
    return time.perf_counter() - start


async def _async_with(cm: AbstractAsyncContextManager[Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        async with cm:
            await afn()
    return time.perf_counter() - start


def _bare_call(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def _sync_with(cm: AbstractContextManager[Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        with cm:
            fn()
    return time.perf_counter() - start


async def _best_async(run: Callable[[], Awaitable[float]], n: int) -> float:
    return min([await run() for _ in range(ROUNDS)]) / n * 1e9


def _best_sync(run: Callable[[], float], n: int) -> float:
    return min(run() for _ in range(ROUNDS)) / n * 1e9


def _report(title: str, rows: list[tuple[str, float]]) -> None:
    base = rows[0][1]
    print(title)
    for label, ns in rows:
        print(f"  {label:<50} {ns:8.0f} ns   x{ns / base:5.1f}")


async def _async_rows(backend: str) -> list[tuple[str, float]]:
    n = ASYNC_N
    rows = [("bare await afn()", await _best_async(lambda: _bare_await(n), n))]
    contenders: list[tuple[str, Callable[[], AbstractAsyncContextManager[Any]]]] = [
        ("seawall Bulkhead(10)", lambda: Bulkhead(10)),
    ]
    if backend == "asyncio":
        contenders += [
            ("asyncio.Semaphore(10)", lambda: asyncio.Semaphore(10)),
            ("anyio.Semaphore(10, fast_acquire=True)", _fast_anyio_semaphore),
            ("anyio.CapacityLimiter(10)", lambda: anyio.CapacityLimiter(10)),
        ]
    for label, make in contenders:
        # anyio's checkpointing primitives are ~10x slower: fewer iterations keep the run short.
        count = n // 10 if "CapacityLimiter" in label else n
        rows.append((f"async with {label}", await _measure_async(make(), count)))
    return rows


async def _measure_async(cm: AbstractAsyncContextManager[Any], n: int) -> float:
    return await _best_async(lambda: _async_with(cm, n), n)


def _fast_anyio_semaphore() -> anyio.Semaphore:
    return anyio.Semaphore(10, fast_acquire=True)


def main() -> None:
    for backend in ("asyncio", "trio"):
        rows = anyio.run(_async_rows, backend, backend=backend)
        _report(f"uncontended async ({backend}): async with x: await afn()", rows)
        if backend == "asyncio":
            # The target: no more than an asyncio.Semaphore's cost.
            print(f"  seawall / asyncio.Semaphore: {rows[1][1] / rows[2][1]:.2f}")
    sync_rows = [
        ("bare fn()", _best_sync(lambda: _bare_call(SYNC_N), SYNC_N)),
        ("with seawall Bulkhead(10)", _best_sync(lambda: _sync_with(Bulkhead(10), SYNC_N), SYNC_N)),
        (
            "with threading.Semaphore(10)",
            _best_sync(lambda: _sync_with(threading.Semaphore(10), SYNC_N), SYNC_N),
        ),
    ]
    _report("uncontended sync: with x: fn()", sync_rows)


if __name__ == "__main__":
    main()
