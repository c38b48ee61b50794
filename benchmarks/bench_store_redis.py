"""RedisStore decisions per second and round trips per decision, next to limits' Redis storage.

Run: ``python3 benchmarks/bench_store_redis.py`` (starts its own redis-server on a free port).
Measures sync ``RedisStore.reserve`` and async ``areserve`` (1 process, and 8 processes for
sync), counts the commands Redis executed per decision from ``INFO commandstats``, and runs
limits' ``RedisStorage`` with its moving- and fixed-window limiters in the same run.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from seawall.stores._base import LimiterSpec
from seawall.stores._redis.store import RedisStore

N = 4000
PROCS = 8
SPEC = LimiterSpec("bench", 1e-6, 1e9)  # never limits: we measure the store, not the policy


def start_server() -> tuple[subprocess.Popen[bytes], str, tempfile.TemporaryDirectory[str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.TemporaryDirectory()
    args = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp.name]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(500):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url, tmp
        except redis.ConnectionError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def commands(url: str) -> tuple[int, int]:
    """(scripts run, all commands incl. those inside scripts) so far; INFO not counted."""
    stats = redis.Redis.from_url(url).info("commandstats")
    scripts = sum(
        int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval")
    )
    return scripts, sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def seawall_sync(url: str, n: int) -> None:
    store = RedisStore(url, timeout=1.0)
    for _ in range(n):
        store.reserve(SPEC, None, 1, 0.0)
    store.close()


def seawall_async(url: str, n: int) -> None:
    async def run() -> None:
        store = RedisStore(url, timeout=1.0)
        for _ in range(n):
            await store.areserve(SPEC, None, 1, 0.0)
        await store.aclose()

    anyio.run(run)


def limits_hit(strategy: str) -> Callable[[str, int], None]:
    def run(url: str, n: int) -> None:
        from limits import parse, storage, strategies

        limiter_cls = {
            "moving": strategies.MovingWindowRateLimiter,
            "fixed": strategies.FixedWindowRateLimiter,
        }[strategy]
        limiter = limiter_cls(storage.RedisStorage(url))
        item = parse("1000000000/second")
        for _ in range(n):
            limiter.hit(item, "bench")

    return run


def measure(url: str, fn: Callable[[str, int], None], procs: int) -> tuple[float, float, float]:
    redis.Redis.from_url(url).flushall()
    fn(url, 50)  # warm up: connect, load scripts
    before = commands(url)
    started = time.perf_counter()
    if procs == 1:
        fn(url, N)
    else:
        workers = [mp.Process(target=fn, args=(url, N // procs)) for _ in range(procs)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    elapsed = time.perf_counter() - started
    total = N if procs == 1 else (N // procs) * procs
    after = commands(url)
    return total / elapsed, (after[0] - before[0]) / total, (after[1] - before[1]) / total


def main() -> None:
    proc, url, tmp = start_server()
    cases: list[tuple[str, Callable[[str, int], None], int]] = [
        ("seawall RedisStore.reserve (sync)", seawall_sync, 1),
        ("seawall RedisStore.areserve (async)", seawall_async, 1),
        ("limits RedisStorage moving window hit", limits_hit("moving"), 1),
        ("limits RedisStorage fixed window hit", limits_hit("fixed"), 1),
        ("seawall RedisStore.reserve (sync)", seawall_sync, PROCS),
        ("seawall RedisStore.areserve (async)", seawall_async, PROCS),
        ("limits RedisStorage moving window hit", limits_hit("moving"), PROCS),
        ("limits RedisStorage fixed window hit", limits_hit("fixed"), PROCS),
    ]
    try:
        results = {}
        head = f"{'case':40} {'procs':>5} {'decisions/s':>12} {'scripts/dec':>12} {'cmds/dec':>9}"
        print(head)
        for label, fn, procs in cases:
            rate, scripts, cmds = measure(url, fn, procs)
            results[label, procs] = rate
            print(f"{label:40} {procs:>5} {rate:>12,.0f} {scripts:>12.3f} {cmds:>9.3f}")
        for procs in (1, PROCS):
            base = results["limits RedisStorage moving window hit", procs]
            ours = results["seawall RedisStore.reserve (sync)", procs]
            print(f"ratio seawall sync / limits moving window, {procs} proc: {ours / base:.2f}")
    finally:
        proc.kill()
        proc.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
