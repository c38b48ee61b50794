"""The ceiling of one shared limit: decisions per second one Redis shard gives one policy.

Run: ``python3 benchmarks/bench_redis_shard.py [--procs 1,2,4,8] [--seconds 2] [--runs 2]``
(starts its own redis-server on a free port).

Every key of a policy lives in one hash slot, so however large the cluster, one hot limit is
served by one Redis process, and Redis runs scripts on one thread. Client processes
(``--procs``) hammer one never-limiting limiter through ``RedisStore`` for ``--seconds``:

- ``sync``: ``RedisStore.reserve`` in a loop (one thread per process);
- ``async x16``: ``await store.areserve`` from 16 concurrent asyncio tasks per process;
- ``pipelined x16``: 16 reserve ``EVALSHA``\\ s sent in one round trip (a redis-py pipeline),
  each still its own script: what sharing a round trip among concurrent decisions gives
  without changing the scripts;
- ``one script x16``: one reserve of 16 tokens counted as 16 decisions, an upper bound for
  coalescing concurrent decisions into one script call (a model: seawall does not do it);
- ``sync, refused``: ``reserve`` on an empty bucket (every answer is a refusal), what a flood
  of refused clients costs Redis without a local refusal cache.

For each: decisions per second, Redis CPU per decision (``INFO cpu`` of the server, all of
its work: sockets, parsing, the script), the script's own time (``INFO commandstats``), and
how busy the Redis process was (CPU seconds per wall second). ``ceiling`` is
``1 / Redis CPU per decision``: the decisions per second the shard gives once its one core
is saturated. On a machine whose cores the clients share with Redis, the measured rate stays
below that; the ceiling is what the figures say about a dedicated Redis core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from seawall.stores._base import LimiterSpec  # noqa: E402
from seawall.stores._redis.scripts import script  # noqa: E402
from seawall.stores._redis.store import RedisStore  # noqa: E402

OPEN = LimiterSpec("shard-open", 1e-9, 1e12)  # never limits
SHUT = LimiterSpec("shard-shut", 86400.0, 1.0)  # one token a day: every later call is refused
BATCH = 16


def captured(store: RedisStore, spec: LimiterSpec, tokens: int) -> tuple[str, list[Any]]:
    """The key and arguments ``store.reserve(spec, None, tokens, 0)`` sends (it runs once)."""
    sent: list[tuple[str, list[Any]]] = []
    real = store._run

    def capture(name: str, key: str, args: Any) -> list[str]:
        sent.append((key, list(args)))
        return real(name, key, args)

    store._run = capture  # type: ignore[method-assign]
    store.reserve(spec, None, tokens, 0.0)
    store._run = real  # type: ignore[method-assign]
    return sent[0]


def start(go: Any) -> None:
    """Warm and connected: wait for the others, let the parent read Redis's figures, go."""
    go.wait()
    go.wait()


def until(seconds: float, step: Callable[[], int]) -> int:
    """Call ``step`` (which returns decisions made) until ``seconds`` passed; the total."""
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        done += step()
    return done


def _reserving(url: str, spec: LimiterSpec, seconds: float, go: Any) -> int:
    store = RedisStore(url, timeout=1.0)

    def step() -> int:
        store.reserve(spec, None, 1, 0.0)
        return 1

    step()
    start(go)
    return until(seconds, step)


def mode_sync(url: str, seconds: float, go: Any) -> int:
    return _reserving(url, OPEN, seconds, go)


def mode_refused(url: str, seconds: float, go: Any) -> int:
    return _reserving(url, SHUT, seconds, go)


def mode_async(url: str, seconds: float, go: Any) -> int:
    import anyio

    async def main() -> int:
        store = RedisStore(url, timeout=1.0)
        await store.areserve(OPEN, None, 1, 0.0)
        start(go)  # blocks the loop on purpose: nothing else runs yet
        end = time.perf_counter() + seconds
        counts = [0] * BATCH

        async def task(i: int) -> None:
            while time.perf_counter() < end:
                await store.areserve(OPEN, None, 1, 0.0)
                counts[i] += 1

        async with anyio.create_task_group() as tg:
            for i in range(BATCH):
                tg.start_soon(task, i)
        await store.aclose()
        return sum(counts)

    return anyio.run(main)


def _raw(url: str, tokens: int) -> tuple[redis.Redis, str, str, list[Any]]:
    store = RedisStore(url, timeout=1.0)
    key, args = captured(store, OPEN, tokens)
    store.close()
    return redis.Redis.from_url(url), script("limiter_reserve").sha, key, args


def mode_pipelined(url: str, seconds: float, go: Any) -> int:
    client, sha, key, args = _raw(url, 1)

    def step() -> int:
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.evalsha(sha, 1, key, *args)
        pipe.execute()
        return BATCH

    step()
    start(go)
    return until(seconds, step)


def mode_one_script(url: str, seconds: float, go: Any) -> int:
    client, sha, key, args = _raw(url, BATCH)

    def step() -> int:
        client.evalsha(sha, 1, key, *args)
        return BATCH

    step()
    start(go)
    return until(seconds, step)


MODES: dict[str, Callable[[str, float, Any], int]] = {
    "sync": mode_sync,
    f"async x{BATCH}": mode_async,
    f"pipelined x{BATCH}": mode_pipelined,
    f"one script x{BATCH}": mode_one_script,
    "sync, refused": mode_refused,
}


def _child(mode: str, url: str, seconds: float, go: Any, out: Any) -> None:
    out.put(MODES[mode](url, seconds, go))


def redis_figures(client: redis.Redis) -> tuple[float, float, int]:
    """(server CPU seconds, microseconds spent in scripts, scripts run) so far."""
    cpu = client.info("cpu")
    stats = client.info("commandstats")
    scripts = [stats.get(k, {}) for k in ("cmdstat_evalsha", "cmdstat_eval")]
    return (
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        sum(float(s.get("usec", 0)) for s in scripts),
        sum(int(s.get("calls", 0)) for s in scripts),
    )


def measure(url: str, mode: str, procs: int, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_child, args=(mode, url, seconds, go, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    info = redis.Redis.from_url(url)
    go.wait()  # every worker is connected and warm
    cpu0, usec0, calls0 = redis_figures(info)
    t0 = time.perf_counter()
    go.wait()  # and now they start
    done = sum(out.get() for _ in workers)
    wall = time.perf_counter() - t0
    cpu1, usec1, calls1 = redis_figures(info)
    for w in workers:
        w.join()
    return {
        "rate": done / wall,
        "redis_us": (cpu1 - cpu0) / done * 1e6,
        "script_us": (usec1 - usec0) / done,
        "scripts": (calls1 - calls0) / done,
        "busy": (cpu1 - cpu0) / wall,
    }


def main() -> None:
    from _redis_server import RedisServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--modes", default="", help="comma-separated mode name substrings")
    opts = parser.parse_args()
    procs = [int(p) for p in opts.procs.split(",")]
    modes = [m for m in MODES if not opts.modes or any(w in m for w in opts.modes.split(","))]
    server = RedisServer()
    server.start()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for r in range(opts.runs):
            for mode in modes:
                for p in procs:
                    results.setdefault((mode, p), []).append(
                        measure(server.url, mode, p, opts.seconds)
                    )
            print(f"run {r + 1}/{opts.runs} done", file=sys.stderr, flush=True)
    finally:
        server.kill()
    print(f"one policy, one redis-server; {opts.seconds:g} s per case, {opts.runs} run(s)")
    print(
        f"{'mode':18} {'procs':>5} {'decisions/s':>19} {'redis us/dec':>12} {'script us':>9}"
        f" {'scripts/dec':>11} {'redis busy':>10} {'ceiling/s':>10}"
    )
    for (mode, p), rs in results.items():
        rates = [r["rate"] for r in rs]
        rate = f"{statistics.median(rates):,.0f} ({min(rates) / 1e3:.1f}-{max(rates) / 1e3:.1f}k)"
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(
            f"{mode:18} {p:>5} {rate:>19} {med['redis_us']:>12.1f} {med['script_us']:>9.1f}"
            f" {med['scripts']:>11.3f} {med['busy']:>10.2f} {1e6 / med['redis_us']:>10,.0f}"
        )


if __name__ == "__main__":
    main()
