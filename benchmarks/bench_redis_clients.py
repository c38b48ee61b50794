"""Which Redis client the store should use: one limiter decision through each, on each loop.

Run: ``python3 benchmarks/bench_redis_clients.py [--runs 3] [--n 3000] [--cases glide,seawall]``
(starts its own redis-server on a free port; needs ``pip install coredis valkey-glide``, a
client that is missing is reported and skipped).

A decision is one ``EVALSHA`` of the limiter's reserve script with exactly the key and
arguments ``RedisStore.reserve`` sends (captured from the store itself, so the benchmark
follows the store when its arguments change). Each client runs it with 1 and with 16
concurrent tasks (threads for the sync client); the table gives decisions per second, client
CPU per decision (``time.process_time``: every thread of this process, so a client's own
I/O threads and anyio's worker threads are counted) and Redis CPU per decision (``INFO cpu``
of the server). Ratios are against the baseline case measured in the same run (redis-py's
asyncio client); the ``seawall`` rows run the store itself with each async client
(``RedisStore(async_client=...)``); with ``--runs`` > 1 the case order rotates
each run and the table shows the median and the spread (min-max) of the ratios. Before the
runs it checks, on both loops, what the store would need of valkey-glide besides speed
(``glide_check``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import redis
import redis.asyncio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from seawall.stores._base import LimiterSpec  # noqa: E402
from seawall.stores._redis.scripts import script  # noqa: E402
from seawall.stores._redis.store import RedisStore  # noqa: E402

SPEC = LimiterSpec("bench", 1e-9, 1e12)  # never limits: we measure the client, not the policy
CONCURRENCY = (1, 16)
BASELINE = "redis.asyncio"
Decide = Callable[[], Awaitable[object]]


class Meter:
    """Wall time, this process's CPU and redis-server's CPU between ``start`` and ``stop``."""

    def __init__(self, info: redis.Redis) -> None:
        self._info = info

    def _redis_cpu(self) -> float:
        cpu = self._info.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def start(self) -> None:
        self.redis0 = self._redis_cpu()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        self.redis = self._redis_cpu() - self.redis0


class Target:
    """The server, the script and the exact (key, args) of one ``RedisStore.reserve``."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.n = n
        s = script("limiter_reserve")
        self.sha, self.text = s.sha, s.text
        store = RedisStore(self.url, timeout=1.0)
        sent: list[tuple[str, list[str | bytes]]] = []
        real = store._run

        def capture(name: str, key: str, args: Any) -> list[str]:
            sent.append((key, list(args)))
            return real(name, key, args)

        store._run = capture  # type: ignore[method-assign]
        store.reserve(SPEC, None, 1, 0.0)  # also loads the script (NOSCRIPT -> EVAL)
        store.close()
        self.key, args = sent[0]
        self.args = [a.encode() if isinstance(a, str) else a for a in args]
        self.info = redis.Redis(port=port)
        assert self.info.script_exists(self.sha) == [True]


async def drive(decide: Decide, target: Target, conc: int, meter: Meter) -> None:
    """Run ``target.n`` decisions as ``conc`` tasks, each awaiting its decisions in turn."""

    async def task(count: int) -> None:
        for _ in range(count):
            await decide()

    await decide()  # warm: connect, first reply
    meter.start()
    async with anyio.create_task_group() as tg:
        for _ in range(conc):
            tg.start_soon(task, target.n // conc)
    meter.stop()


async def case_redis_asyncio(t: Target, conc: int, meter: Meter) -> None:
    client = redis.asyncio.Redis(port=t.port, max_connections=conc + 1)
    await drive(lambda: client.evalsha(t.sha, 1, t.key, *t.args), t, conc, meter)
    await client.aclose()


async def case_glide(t: Target, conc: int, meter: Meter) -> None:
    import glide

    config = glide.GlideClientConfiguration(
        [glide.NodeAddress("127.0.0.1", t.port)], request_timeout=1000
    )
    client = await glide.GlideClient.create(config)
    command: list[str | bytes] = ["EVALSHA", t.sha, "1", t.key, *t.args]
    await drive(lambda: client.custom_command(command), t, conc, meter)
    await client.close()


async def case_coredis(t: Target, conc: int, meter: Meter) -> None:
    import coredis

    # Its best case: every task descends from the one that entered the client.
    async with coredis.Redis(host="127.0.0.1", port=t.port) as client:
        await drive(lambda: client.evalsha(t.sha, [t.key], t.args), t, conc, meter)


async def case_to_thread(t: Target, conc: int, meter: Meter) -> None:
    client = redis.Redis(port=t.port, max_connections=conc + 1)

    def once() -> object:
        return client.evalsha(t.sha, 1, t.key, *t.args)

    await drive(lambda: anyio.to_thread.run_sync(once), t, conc, meter)
    client.close()


def store_async(client: str) -> Callable[[Target, int, Meter], Awaitable[None]]:
    """The store's ``areserve`` with ``RedisStore(async_client=client)``."""

    async def case(t: Target, conc: int, meter: Meter) -> None:
        store = RedisStore(t.url, timeout=1.0, async_client=client)
        await drive(lambda: store.areserve(SPEC, None, 1, 0.0), t, conc, meter)
        await store.aclose()
        store.close()

    return case


def threads(once: Callable[[], object], t: Target, conc: int, meter: Meter) -> None:
    """``t.n`` calls of ``once`` from ``conc`` threads started before the clock starts."""
    go = threading.Barrier(conc + 1)

    def work() -> None:
        go.wait()
        for _ in range(t.n // conc):
            once()

    workers = [threading.Thread(target=work) for _ in range(conc)]
    for w in workers:
        w.start()
    once()
    meter.start()
    go.wait()
    for w in workers:
        w.join()
    meter.stop()


def case_sync_threads(t: Target, conc: int, meter: Meter) -> None:
    client = redis.Redis(port=t.port, max_connections=conc + 1)
    threads(lambda: client.evalsha(t.sha, 1, t.key, *t.args), t, conc, meter)
    client.close()


def case_store_sync(t: Target, conc: int, meter: Meter) -> None:
    store = RedisStore(t.url, timeout=1.0)
    threads(lambda: store.reserve(SPEC, None, 1, 0.0), t, conc, meter)
    store.close()


# (label, loop or "threads", case). Labels name the client; "seawall" rows run the store.
CASES: list[tuple[str, str, Callable[..., Any]]] = [
    ("redis.asyncio", "asyncio", case_redis_asyncio),
    ("valkey-glide", "asyncio", case_glide),
    ("coredis (in its block)", "asyncio", case_coredis),
    ("redis-py sync, to_thread", "asyncio", case_to_thread),
    ("seawall areserve, glide", "asyncio", store_async("glide")),
    ("seawall areserve, redis-py", "asyncio", store_async("redis-py")),
    ("valkey-glide", "trio", case_glide),
    ("coredis (in its block)", "trio", case_coredis),
    ("redis-py sync, to_thread", "trio", case_to_thread),
    ("seawall areserve, glide", "trio", store_async("glide")),
    ("seawall areserve, redis-py", "trio", store_async("redis-py")),
    ("redis-py sync", "threads", case_sync_threads),
    ("seawall reserve", "threads", case_store_sync),
]


def available(label: str) -> str | None:
    """None when the client of ``label`` imports, else the error (printed, case skipped)."""
    module = {"valkey-glide": "glide", "coredis (in its block)": "coredis"}.get(label)
    module = "glide" if label.endswith(", glide") else module
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def glide_check(server: Any) -> str:
    """What a store needs of valkey-glide besides speed, checked on the running loop.

    A client opened by one task must serve tasks that do not descend from it (a server's
    request tasks), and a frozen Redis (SIGSTOP) must cost one ``request_timeout``.
    """
    import signal

    import glide

    opened: list[Any] = []

    async def open_client() -> None:
        config = glide.GlideClientConfiguration(
            [glide.NodeAddress("127.0.0.1", server.port)], request_timeout=100
        )
        opened.append(await glide.GlideClient.create(config))

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_client)  # this task ends before the client is used
    client = opened[0]
    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(client.custom_command, ["INCR", "glide-check"])
    shared = int(await client.custom_command(["GETDEL", "glide-check"]))
    server.proc.send_signal(signal.SIGSTOP)
    started = time.perf_counter()
    try:
        await client.custom_command(["PING"])
        frozen = "answered while frozen?"
    except glide.GlideError as exc:
        frozen = f"{type(exc).__name__} after {time.perf_counter() - started:.3f} s"
    finally:
        server.proc.send_signal(signal.SIGCONT)
    await client.close()
    return f"8 tasks not descending from the opener: {shared}/8 done; frozen Redis: {frozen}"


def run_once(t: Target, cases: list[tuple[str, str, Callable[..., Any]]]) -> dict[Any, Meter]:
    out: dict[Any, Meter] = {}
    for label, loop, case in cases:
        for conc in CONCURRENCY:
            meter = Meter(t.info)
            if loop == "threads":
                case(t, conc, meter)
            else:
                anyio.run(case, t, conc, meter, backend=loop)
            out[label, loop, conc] = meter
    return out


def spread(values: list[float]) -> str:
    mid = statistics.median(values)
    return (
        f"{mid:5.2f}" if len(values) == 1 else f"{mid:5.2f} ({min(values):.2f}-{max(values):.2f})"
    )


def main() -> None:
    from _redis_server import RedisServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=3000, help="decisions per case")
    parser.add_argument("--cases", default="", help="comma-separated label substrings")
    opts = parser.parse_args()
    cases = [c for c in CASES if not opts.cases or any(w in c[0] for w in opts.cases.split(","))]
    if not any(c[0] == BASELINE for c in cases):
        cases.insert(0, CASES[0])
    for label in sorted({c[0] for c in cases}):
        error = available(label)
        if error is not None:
            print(f"skipped {label}: {error}")
            cases = [c for c in cases if c[0] != label]

    server = RedisServer()
    server.start()
    try:
        t = Target(server.port, opts.n)
        if any(c[0] == "valkey-glide" for c in cases):
            for loop in ("asyncio", "trio"):
                print(f"valkey-glide on {loop}: {anyio.run(glide_check, server, backend=loop)}")
        runs = []
        for r in range(opts.runs):
            k = r % len(cases)  # rotate, so no case always runs first or last
            runs.append(run_once(t, cases[k:] + cases[:k]))
            print(f"run {r + 1}/{opts.runs} done", file=sys.stderr, flush=True)
    finally:
        server.kill()
    print(f"{opts.n} decisions per case, {opts.runs} run(s); ratios against {BASELINE}")
    print(
        f"{'client':26} {'loop':8} {'tasks':>5} {'dec/s':>8} {'cpu us':>7} {'redis us':>8}"
        f"  {'dec/s ratio':>17}  {'cpu ratio':>17}"
    )
    for label, loop, _ in CASES:
        for conc in CONCURRENCY:
            if (label, loop, conc) not in runs[0]:
                continue
            ms = [run[label, loop, conc] for run in runs]
            base = [run[BASELINE, "asyncio", conc] for run in runs]
            rates = [opts.n / m.wall for m in ms]
            rate_r = [(opts.n / m.wall) / (opts.n / b.wall) for m, b in zip(ms, base, strict=True)]
            cpu_r = [m.cpu / b.cpu for m, b in zip(ms, base, strict=True)]
            cpu = statistics.median(m.cpu for m in ms) / opts.n * 1e6
            rcpu = statistics.median(m.redis for m in ms) / opts.n * 1e6
            print(
                f"{label:26} {loop:8} {conc:>5} {statistics.median(rates):>8,.0f} {cpu:>7.0f}"
                f" {rcpu:>8.1f}  {spread(rate_r):>17}  {spread(cpu_r):>17}"
            )


if __name__ == "__main__":
    main()
