"""ResilienceMiddleware under uvicorn + wrk, as ratios to a bare Starlette app in the same rounds.

    python3 benchmarks/bench_asgi.py                  # ~5 minutes: 7 rounds x 17 variants x 2 s
    python3 benchmarks/bench_asgi.py --rounds 3 --only seawall seawall-429

Each variant is served by one uvicorn worker in a subprocess on a free 127.0.0.1 port (this
file is also the app module: ``uvicorn bench_asgi:create --factory``); every variant's server
runs for the whole run, and each is loaded by ``wrk`` (``apt-get install -y wrk``) with one
thread and 32 connections, one second to warm up, then in short blocks (``--duration``).
Rounds are interleaved (every variant once, then again), so drift on a shared machine hits
every variant alike; each ratio is the median over rounds of the ratio to bare in the same
round.

Variants: ``bare`` (Starlette, one route); seawall with a per-client limit that never refuses
(``-limit``), that limit plus a bulkhead and a breaker (no suffix), and a limit that refuses
every request but the first (``-429``: what a refusal costs against a bare 200), each in
memory, in a file store (``seawall-file...``) and in Redis (``seawall-redis...``);
``seawall-limit-noheaders`` and ``seawall-noheaders``, without the RateLimit fields on granted
responses (asgi-ratelimit and slowapi send none by default); ``floor-send`` and
``floor-fields``, the least any pure-ASGI middleware that sees the response costs (a ``send``
wrapper noting the status; the same adding two fixed header fields); asgi-ratelimit with its memory
and Redis backends; slowapi if installed. The file store lives in a temporary directory;
Redis is a ``redis-server`` this script starts on a free port.

Columns: requests/s and its ratio to bare; the uvicorn process's CPU per request (user+system
from /proc) and its ratio to bare; for Redis variants, Redis's own CPU per request
(``used_cpu_sys`` + ``used_cpu_user`` of ``INFO cpu``), the commands Redis ran per request
(``INFO commandstats``, a script's own commands included, INFO's left out) and the round trips
per request (the commands clients sent, counted with ``MONITOR`` during one more second of
load after the timed blocks, since MONITOR slows Redis); ``total x bare`` adds Redis's CPU to
the server's. uvicorn uses uvloop and httptools when installed (``pip install
'uvicorn[standard]'``, what production runs); the header line says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEAWALL = [
    f"seawall{store}{kind}" for store in ("", "-file", "-redis") for kind in ("-limit", "", "-429")
]
# Without the RateLimit fields on granted responses: like for like with asgi-ratelimit and
# slowapi, which send none by default.
QUIET = ["seawall-limit-noheaders", "seawall-noheaders"]
# The floor for any pure-ASGI middleware that sees the response: one that only wraps `send`
# to note the status, and one that also adds two fixed header fields.
FLOORS = ["floor-send", "floor-fields"]
# The floor for a middleware that asks Redis on every request, as seawall's shared gates do:
# `floor-fields` plus one coalesced script call (every request queued while a call is out
# rides the next one; a script that only echoes one answer per member). No policy, no
# parsing, no lease: what redis-py and the loop alone cost.
REDIS_FLOORS = ["floor-redis"]
VARIANTS = [
    "bare",
    *SEAWALL,
    *QUIET,
    *FLOORS,
    *REDIS_FLOORS,
    "asgi-ratelimit",
    "asgi-ratelimit-redis",
    "slowapi",
]
NEVER = "1000000/second"
FIELDS = [(b"ratelimit-policy", b'"default";q=1000;w=1'), (b"ratelimit", b'"default";r=999;t=1')]
PEERS = {"slowapi": "slowapi", "asgi-ratelimit": "ratelimit", "asgi-ratelimit-redis": "ratelimit"}


# -- the apps (imported by uvicorn in the child) ---------------------------------------------


def _base() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, world!")

    return Starlette(routes=[Route("/", hello)])


def _seawall(app: Any, variant: str, store: str) -> None:
    from seawall.asgi import ResilienceMiddleware

    quiet = variant.endswith("-noheaders")
    kind = variant.removesuffix("-noheaders")
    full = not kind.endswith("-limit")
    app.add_middleware(
        ResilienceMiddleware,
        rate_limit="1/hour" if kind.endswith("-429") else NEVER,
        max_concurrent=1000 if full else None,
        breaker=full,
        headers=None if quiet else "ietf",
        store=store,
        store_prefix=variant,  # one Redis, one directory: each variant keeps its own keys
    )


class _Floor:
    """A pure-ASGI middleware that wraps ``send`` to note the status (and may add fields)."""

    def __init__(self, app: Any, fields: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.fields = fields

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        noted = [0]

        async def observed(message: Any) -> None:
            if message["type"] == "http.response.start":
                noted[0] = message["status"]
                if self.fields:
                    message = {**message, "headers": [*message["headers"], *self.fields]}
            await send(message)

        await self.app(scope, receive, observed)


class _RedisFloor:
    """``floor-fields`` after one coalesced Redis script call per request (see REDIS_FLOORS)."""

    SCRIPT = "return ARGV"

    def __init__(self, app: Any, url: str, fields: list[tuple[bytes, bytes]]) -> None:
        from redis.asyncio import Redis

        self.app = _Floor(app, fields)
        self.redis = Redis.from_url(url)
        self.sha: str | None = None
        self.queue: list[Any] = []  # futures of the requests the next call carries
        self.out = False
        self.leader: Any = None  # the task sending calls, kept from the garbage collector

    async def _lead(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue, []
                if self.sha is None:
                    self.sha = await self.redis.script_load(self.SCRIPT)
                answers = await self.redis.evalsha(self.sha, 0, *(["1"] * len(batch)))
                for future, answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
                await asyncio.sleep(0)  # let the answered run, as the followers of a flight do
        finally:
            self.out = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        future = asyncio.get_running_loop().create_future()
        self.queue.append(future)
        if not self.out:
            self.out = True
            self.leader = asyncio.get_running_loop().create_task(self._lead())
        await future
        await self.app(scope, receive, send)


def _asgi_ratelimit(app: Any, redis_url: str | None) -> None:
    from ratelimit import RateLimitMiddleware, Rule
    from ratelimit.backends.simple import MemoryBackend

    async def by_peer(scope: Any) -> tuple[str, str]:
        # asgi-ratelimit's own client_ip refuses loopback peers, so key by peer here.
        return scope["client"][0], "default"

    backend: Any = MemoryBackend()
    if redis_url is not None:
        from ratelimit.backends.redis import RedisBackend
        from redis.asyncio import StrictRedis

        backend = RedisBackend(StrictRedis.from_url(redis_url))
    app.add_middleware(
        RateLimitMiddleware,
        authenticate=by_peer,
        backend=backend,
        config={r"^/": [Rule(second=1_000_000)]},
    )


def create() -> Any:
    """The app for ``SEAWALL_BENCH_VARIANT`` (a uvicorn factory)."""
    variant = os.environ["SEAWALL_BENCH_VARIANT"]
    store = os.environ.get("SEAWALL_BENCH_STORE", "memory://")
    app = _base()
    if variant.startswith("seawall"):
        _seawall(app, variant, store)
    elif variant.startswith("asgi-ratelimit"):
        _asgi_ratelimit(app, store if variant.endswith("-redis") else None)
    elif variant == "slowapi":
        from slowapi import Limiter, _rate_limit_exceeded_handler
        from slowapi.errors import RateLimitExceeded
        from slowapi.middleware import SlowAPIASGIMiddleware
        from slowapi.util import get_remote_address

        app.state.limiter = Limiter(key_func=get_remote_address, default_limits=[NEVER])
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
        app.add_middleware(SlowAPIASGIMiddleware)
    elif variant in FLOORS:
        app.add_middleware(_Floor, fields=FIELDS if variant == "floor-fields" else [])
    elif variant in REDIS_FLOORS:
        app.add_middleware(_RedisFloor, url=store, fields=FIELDS)
    elif variant != "bare":
        raise ValueError(f"unknown variant {variant!r}")
    return app


# -- the driver ------------------------------------------------------------------------------


def _installed(variant: str) -> bool:
    module = PEERS.get(variant)
    return module is None or importlib.util.find_spec(module) is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, seconds: float) -> tuple[float, int, int]:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{max(1, round(seconds))}s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, total, int(bad.group(1)) if bad else 0


def _store_of(variant: str, stores: dict[str, str]) -> str | None:
    if "-file" in variant:
        return stores["file"]
    if variant.endswith("-redis") or "-redis-" in variant or variant in REDIS_FLOORS:
        return stores["redis"]
    return None


def _serve(variant: str, store: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "SEAWALL_BENCH_VARIANT": variant}
    if store is not None:
        env["SEAWALL_BENCH_STORE"] = store
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bench_asgi:create",
            "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{variant}: uvicorn exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{variant}: uvicorn did not start")


class RedisMeter:
    """Redis's CPU seconds and command count (INFO), and the round trips clients make (MONITOR).

    INFO's command counts include the commands a script runs inside Redis; MONITOR tells
    those (``[0 lua]``) from the ones clients send, so round trips are counted there, in a
    window of their own (MONITOR slows Redis down, so never while CPU is measured).
    """

    MARK = "seawall-bench-mark"

    def __init__(self, url: str) -> None:
        import redis

        self._url = url
        self._client = redis.Redis.from_url(url)

    def read(self) -> tuple[float, int]:
        cpu = self._client.info("cpu")
        stats = self._client.info("commandstats")
        calls = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls

    def round_trips(self, url: str, seconds: float) -> float:
        """Commands clients sent per request while ``wrk`` loaded ``url`` for ``seconds``."""
        import redis

        requests: list[int] = []

        def load() -> None:
            try:
                requests.append(_wrk(url, seconds)[1])
            finally:
                self._client.echo(self.MARK)  # ends the count below, whatever happened

        sent = 0
        with redis.Redis.from_url(self._url).monitor() as monitor:
            loader = threading.Thread(target=load)
            loader.start()
            while True:
                line = monitor.connection.read_response()
                text = line.decode("latin-1") if isinstance(line, bytes) else str(line)
                if self.MARK in text:
                    break
                # '<time> [0 127.0.0.1:5000] "EVALSHA" ...' from a client, '[0 lua]' from a script
                sent += "lua]" not in text.split('"', 1)[0]
            loader.join()
        if not requests:
            raise RuntimeError(f"wrk failed on {url}")
        return sent / requests[0]


@dataclass
class Sample:
    rate: float
    cpu_us: float
    redis_us: float
    commands: float  # every command Redis ran, scripts' inside included
    trips: float  # commands clients sent
    bad: int


@dataclass
class Served:
    """One variant's uvicorn, up for the whole run."""

    variant: str
    process: subprocess.Popen[bytes]
    url: str
    uses_redis: bool


def measure(served: Served, seconds: float, meter: Any) -> Sample:
    """One block of load on one variant: throughput, CPU per request (server, Redis)."""
    cpu0 = _cpu_seconds(served.process.pid)
    redis0 = meter.read() if served.uses_redis else (0.0, 0)
    rate, total, bad = _wrk(served.url, seconds)
    redis1 = meter.read() if served.uses_redis else (0.0, 0)
    cpu = _cpu_seconds(served.process.pid) - cpu0
    redis_cpu, calls = redis1[0] - redis0[0], redis1[1] - redis0[1]
    return Sample(rate, cpu / total * 1e6, redis_cpu / total * 1e6, calls / total, 0.0, bad)


@contextlib.contextmanager
def _servers(variants: list[str], stores: dict[str, str]) -> Iterator[list[Served]]:
    """Every variant served at once (idle ones cost nothing), stopped at the end."""
    served: list[Served] = []
    try:
        for variant in variants:
            store = _store_of(variant, stores)
            process, url = _serve(variant, store)
            uses_redis = store is not None and store == stores.get("redis")
            served.append(Served(variant, process, url, uses_redis))
        yield served
    finally:
        for one in served:
            one.process.terminate()
        for one in served:
            one.process.wait(timeout=30)


@contextlib.contextmanager
def _stores(variants: list[str]) -> Iterator[tuple[dict[str, str], Any]]:
    """Store URLs (a temporary directory, a redis-server on a free port) and a Redis meter."""
    stores: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="seawall-bench-") as tmp:
        stores["file"] = Path(tmp, "state").as_uri()
        server = meter = None
        if any(_store_of(v, {"file": "f", "redis": "r"}) == "r" for v in variants):
            sys.path.insert(0, str(HERE.parent / "tests"))
            from _redis_server import RedisServer

            server = RedisServer()
            server.start()
            stores["redis"] = server.url
            meter = RedisMeter(server.url)
        try:
            yield stores, meter
        finally:
            if server is not None:
                server.close()


def _stack() -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop}, {http}"


def report(results: dict[str, list[Sample]], rounds: int, duration: float) -> None:
    """Print medians; each ratio is the median of the ratios to bare in the same round."""

    def med(variant: str, field: str) -> float:
        return statistics.median(getattr(s, field) for s in results[variant])

    def med_ratio(variant: str, ratio: Callable[[Sample, Sample], float]) -> float:
        pairs = zip(results[variant], results["bare"], strict=True)
        return statistics.median(ratio(s, b) for s, b in pairs)

    print(
        f"uvicorn 1 worker ({_stack()}), wrk -t1 -c32, {rounds} interleaved rounds of "
        f"{duration:g} s blocks, medians of per-round ratios to bare"
    )
    print(
        f"{'variant':<22}{'req/s':>8}{'x bare':>8}{'CPU us/req':>11}{'x bare':>8}"
        f"{'Redis us':>9}{'total x':>8}{'trips':>7}{'cmds':>7}{'non-2xx':>9}"
    )
    for variant in results:
        bad = max(s.bad for s in results[variant])
        print(
            f"{variant:<22}{med(variant, 'rate'):>8.0f}"
            f"{med_ratio(variant, lambda s, b: s.rate / b.rate):>8.2f}"
            f"{med(variant, 'cpu_us'):>11.1f}"
            f"{med_ratio(variant, lambda s, b: s.cpu_us / b.cpu_us):>8.2f}"
            f"{med(variant, 'redis_us'):>9.1f}"
            f"{med_ratio(variant, lambda s, b: (s.cpu_us + s.redis_us) / b.cpu_us):>8.2f}"
            f"{med(variant, 'trips'):>7.2f}{med(variant, 'commands'):>7.2f}{bad:>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="variants to run (+ bare)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    wanted = set(args.only or VARIANTS) | {"bare"}
    variants = [v for v in VARIANTS if v in wanted and _installed(v)]
    results: dict[str, list[Sample]] = {v: [] for v in variants}
    with _stores(variants) as (stores, meter), _servers(variants, stores) as served:
        for one in served:
            _wrk(one.url, 1.0)  # warm-up
        for _ in range(args.rounds):
            for one in served:  # interleaved, so drift hits every variant alike
                results[one.variant].append(measure(one, args.duration, meter))
        for one in served:  # MONITOR slows Redis: counted apart, after the timed blocks
            if one.uses_redis:
                trips = meter.round_trips(one.url, 1.0)
                for sample in results[one.variant]:
                    sample.trips = trips
    report(results, args.rounds, args.duration)


if __name__ == "__main__":
    main()
