"""Throughput of httpx through ResilientTransport, against the plain transport and httpx-retries.

    python3 benchmarks/bench_httpx.py            # about 2 minutes on 2 cores
    python3 benchmarks/bench_httpx.py hedging    # only the hedging figures
    python3 benchmarks/bench_httpx.py mock       # only the MockTransport figures (about 25 s)

1. ``httpx.MockTransport`` as the upstream (no network): client CPU per request, so the
   figure is the wrapper's own cost. Sync ``httpx.Client`` and async (asyncio). The
   standard pipeline is also shown with parts switched off, so each part's cost shows.
2. A real uvicorn server in a subprocess on 127.0.0.1: requests per second of wall time.
3. Hedging against a uvicorn upstream with a slow tail (5% of answers 10x slower: 50 ms
   instead of 5 ms): latency percentiles of sequential async requests with and without
   hedging, and the extra requests the hedges cost (counted by the server).

Ratios are throughput divided by the plain transport's in the same run (higher is better,
1.0 = no cost). The uvicorn part reports each configuration's best of 7 interleaved rounds.
The MockTransport part alternates short blocks of requests between configurations (one client
each, 40 rounds of 300 requests) and reports the median block: on a shared machine the load
other jobs add then falls on every configuration alike, where long rounds let one
configuration's round land in a quiet moment and another's in a busy one. Its ratio is the
median over rounds of each block divided by plain's block of the same round (paired, as
``bench_asgi.py`` does); the ratio of the median blocks follows in brackets.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import anyio
import httpx

from seawall import Bulkhead, CircuitBreaker, RateLimiter
from seawall.httpx import ResilientTransport

try:
    import httpx_retries
except ImportError:  # optional peer
    httpx_retries = None

ROUNDS = 7
MOCK_ROUNDS, MOCK_BLOCK = 40, 300


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


def wrappers() -> dict[str, Callable[[httpx.BaseTransport | httpx.AsyncBaseTransport], object]]:
    """Transport factories, each wrapping the given inner transport."""
    made: dict[str, Callable[[httpx.BaseTransport | httpx.AsyncBaseTransport], object]] = {
        "plain": lambda inner: inner,
        "seawall standard (default)": lambda inner: ResilientTransport(inner),
        "  standard, no breaker": lambda inner: ResilientTransport(inner, breaker=None),
        "  standard, no bulkhead": lambda inner: ResilientTransport(inner, bulkhead=None),
        "  standard, no timeouts": lambda inner: ResilientTransport(
            inner, timeout=None, attempt_timeout=None
        ),
        "seawall bare retry (standard=False)": lambda inner: ResilientTransport(
            inner, standard=False
        ),
        "seawall bare retry+breaker+limiter+bulkhead": lambda inner: ResilientTransport(
            inner,
            standard=False,
            breaker=lambda o: CircuitBreaker(max_failures=5, reset_timeout=30),
            limiter=lambda o: RateLimiter(10**9, 1.0),
            bulkhead=lambda o: Bulkhead(64),
        ),
    }
    if httpx_retries is not None:
        made["httpx-retries"] = lambda inner: httpx_retries.RetryTransport(
            inner, retry=httpx_retries.Retry(total=3)
        )
    return made


def sync_round(transport: object, url: str, n: int, clock: Callable[[], float]) -> float:
    with httpx.Client(transport=transport) as client:  # type: ignore[arg-type]
        client.get(url)
        start = clock()
        for _ in range(n):
            client.get(url)
        return n / (clock() - start)


def report(
    title: str,
    results: dict[str, list[float]],
    unit: str,
    pick: Callable[[list[float]], float] = max,
    *,
    paired: bool = False,
) -> None:
    """One line per configuration: its rate, its ratio to plain and the spread of its rounds.

    ``paired``: the ratio is the median, over rounds, of the configuration's block divided by
    plain's block of the same round (as ``bench_asgi.py`` does), so a slow moment of the host
    weighs on both sides of each quotient; the ratio of the picked rates follows in brackets.
    """
    print(f"\n{title}")
    base = pick(results["plain"])
    for name, rates in results.items():
        rate = pick(rates)
        spread = statistics.pstdev(rates) / statistics.mean(rates)
        line = f"  {name:44s} {rate:9.0f} {unit}  ratio "
        if paired:
            pairs = [r / p for r, p in zip(rates, results["plain"], strict=True)]
            line += f"{statistics.median(pairs):5.3f} ({rate / base:5.3f})"
        else:
            line += f"{rate / base:5.3f}"
        print(f"{line}  (spread {spread:.1%})")


def sync_blocks(clients: dict[str, httpx.Client], url: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        client.get(url)
    for _ in range(MOCK_ROUNDS):
        for name, client in clients.items():
            start = time.process_time()
            for _ in range(MOCK_BLOCK):
                client.get(url)
            rates[name].append(MOCK_BLOCK / (time.process_time() - start))
    return rates


async def async_blocks(
    factories: dict[str, Callable[[httpx.AsyncBaseTransport], object]], url: str
) -> dict[str, list[float]]:
    clients = {
        name: httpx.AsyncClient(transport=make(httpx.MockTransport(ok)))  # type: ignore[arg-type]
        for name, make in factories.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        await client.get(url)
    for _ in range(MOCK_ROUNDS):
        for name, client in clients.items():
            start = time.process_time()
            for _ in range(MOCK_BLOCK):
                await client.get(url)
            rates[name].append(MOCK_BLOCK / (time.process_time() - start))
    for client in clients.values():
        await client.aclose()
    return rates


def bench_mock() -> None:
    factories = wrappers()
    url = "http://upstream.test/"
    clients = {
        name: httpx.Client(transport=make(httpx.MockTransport(ok)))  # type: ignore[arg-type]
        for name, make in factories.items()
    }
    sync = sync_blocks(clients, url)
    for client in clients.values():
        client.close()
    async_ = anyio.run(async_blocks, factories, url)
    median = statistics.median
    how = f"median of {MOCK_ROUNDS} interleaved blocks of {MOCK_BLOCK}"
    report(
        f"MockTransport, sync httpx.Client (requests per CPU second, {how})",
        sync,
        "req/s",
        median,
        paired=True,
    )
    report(
        f"MockTransport, httpx.AsyncClient on asyncio (requests per CPU second, {how})",
        async_,
        "req/s",
        median,
        paired=True,
    )


def bench_uvicorn(n: int = 600) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url)
        factories = wrappers()
        results: dict[str, list[float]] = {name: [] for name in factories}
        for _ in range(ROUNDS):
            for name, make in factories.items():
                rate = sync_round(make(httpx.HTTPTransport()), url, n, time.perf_counter)
                results[name].append(rate)
        report(
            "uvicorn on 127.0.0.1, sync httpx.Client (requests per wall second)", results, "req/s"
        )
    finally:
        server.terminate()
        server.wait(30)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve(port: int) -> None:
    import uvicorn

    async def app(scope: dict, receive: object, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def bench_hedging(n: int = 2000) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-tail", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/count")
        print(f"\nHedging, uvicorn upstream answering in 5 ms, 5% in 50 ms; {n} sequential GETs")
        runs = {
            "no hedging": ResilientTransport(retry=None),
            "hedging after 10 ms": ResilientTransport(retry=None, hedging=0.01),
            "hedging after 20 ms": ResilientTransport(retry=None, hedging=0.02),
        }
        for name, transport in runs.items():
            before = int(httpx.get(f"{base}/count").text)
            latencies = anyio.run(_timed_gets, transport, f"{base}/tail", n)
            sent = int(httpx.get(f"{base}/count").text) - before - 1
            q = statistics.quantiles(latencies, n=100)
            print(
                f"  {name:22s} p50 {q[49] * 1e3:5.1f} ms  p95 {q[94] * 1e3:5.1f} ms  "
                f"p99 {q[98] * 1e3:5.1f} ms  max {max(latencies) * 1e3:5.1f} ms  "
                f"extra requests {sent - n:4d} ({(sent - n) / n:.1%})"
            )
    finally:
        server.terminate()
        server.wait(30)


async def _timed_gets(transport: ResilientTransport, url: str, n: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(url)
        for _ in range(n):
            start = time.perf_counter()
            await client.get(url)
            latencies.append(time.perf_counter() - start)
    return latencies


def serve_tail(port: int) -> None:
    """An upstream whose answers take 5 ms, and 50 ms for a seeded 5% of them."""
    import asyncio
    import random

    import uvicorn

    draw = random.Random(15).random
    hits = [0]

    async def app(scope: dict, receive: object, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        if scope["path"] == "/count":
            body = str(hits[0]).encode()
        else:
            hits[0] += 1
            await asyncio.sleep(0.05 if draw() < 0.05 else 0.005)
            body = b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--serve-tail":
        serve_tail(int(sys.argv[2]))
    else:
        started = time.perf_counter()
        print(
            f"python {sys.version.split()[0]}, httpx {httpx.__version__}, "
            f"httpx-retries {'installed' if httpx_retries else 'not installed'}"
        )
        if sys.argv[1:] != ["hedging"]:
            bench_mock()
            if sys.argv[1:] != ["mock"]:
                bench_uvicorn()
        if sys.argv[1:] != ["mock"]:
            bench_hedging()
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
