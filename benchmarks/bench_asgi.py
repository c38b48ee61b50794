"""ResilienceMiddleware under uvicorn + wrk, as ratios to a bare Starlette app in the same run.

    python3 benchmarks/bench_asgi.py            # ~2.5 minutes: 2 rounds x 8 variants x 5 s
    python3 benchmarks/bench_asgi.py --duration 3 --rounds 1 --only seawall seawall-429

Each variant is served by one uvicorn worker in a subprocess on a free 127.0.0.1 port (this
file is also the app module: ``uvicorn bench_asgi:create --factory``), and loaded by ``wrk``
(Debian package ``wrk``) with one thread and 32 connections after a warm-up. Reported per
variant (medians over rounds): requests/s and its ratio to bare; the server's CPU per request
(user+system time of the uvicorn process from /proc, divided by requests) and its ratio to
bare. Every limiter is configured never to reject, except ``seawall-429``, which rejects
every request but the first (the cost of a 429 against a bare 200); ``seawall-nofields`` is
``seawall`` without the RateLimit response fields (their cost is mostly the server's header
serialisation). Peers run only if
installed (``pip install slowapi asgi-ratelimit``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = [
    "bare",
    "noop-asgi",
    "seawall",
    "seawall-nofields",
    "seawall-429",
    "seawall-file",
    "seawall-redis",
    "slowapi",
    "slowapi-asgi",
    "asgi-ratelimit",
]
NEVER = "1000000/second"
STORE_VARIANTS = ("seawall-file", "seawall-redis")


# -- the apps (imported by uvicorn in the child) ---------------------------------------------


def _base() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, world!")

    return Starlette(routes=[Route("/", hello)])


def create() -> Any:
    """The app for ``SEAWALL_BENCH_VARIANT`` (a uvicorn factory)."""
    variant = os.environ["SEAWALL_BENCH_VARIANT"]
    app = _base()
    if variant == "noop-asgi":

        class Noop:
            def __init__(self, app: Any) -> None:
                self.app = app

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                await self.app(scope, receive, send)

        app.add_middleware(Noop)
    elif variant.startswith("seawall"):
        from seawall.asgi import ResilienceMiddleware

        # The store variants keep the limit, the bulkhead and the breaker in a store that the
        # driver set up (a temporary directory, or a redis-server it started).
        store = os.environ.get("SEAWALL_BENCH_STORE") if variant in STORE_VARIANTS else None
        app.add_middleware(
            ResilienceMiddleware,
            rate_limit="1/hour" if variant == "seawall-429" else NEVER,
            max_concurrent=1000,
            breaker=True,
            headers=None if variant == "seawall-nofields" else "ietf",
            store=store or "memory://",
        )
    elif variant in ("slowapi", "slowapi-asgi"):
        from slowapi import Limiter, _rate_limit_exceeded_handler
        from slowapi.errors import RateLimitExceeded
        from slowapi.middleware import SlowAPIASGIMiddleware, SlowAPIMiddleware
        from slowapi.util import get_remote_address

        app.state.limiter = Limiter(key_func=get_remote_address, default_limits=[NEVER])
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
        middleware = SlowAPIMiddleware if variant == "slowapi" else SlowAPIASGIMiddleware
        app.add_middleware(middleware)
    elif variant == "asgi-ratelimit":
        from ratelimit import RateLimitMiddleware, Rule
        from ratelimit.backends.simple import MemoryBackend

        async def by_peer(scope: Any) -> tuple[str, str]:
            # asgi-ratelimit's own client_ip refuses loopback peers, so key by peer here.
            return scope["client"][0], "default"

        app.add_middleware(
            RateLimitMiddleware,
            authenticate=by_peer,
            backend=MemoryBackend(),
            config={r"^/": [Rule(second=1_000_000)]},
        )
    elif variant != "bare":
        raise ValueError(f"unknown variant {variant!r}")
    return app


# -- the driver ------------------------------------------------------------------------------


def _installed(variant: str) -> bool:
    module = {"slowapi": "slowapi", "slowapi-asgi": "slowapi", "asgi-ratelimit": "ratelimit"}
    name = module.get(variant)
    if name is None:
        return True
    try:
        __import__(name)
    except ImportError:
        return False
    return True


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


def _serve(variant: str, stores: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "SEAWALL_BENCH_VARIANT": variant}
    if variant in stores:
        env["SEAWALL_BENCH_STORE"] = stores[variant]
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bench_asgi:create",
            "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{variant}: uvicorn exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{variant}: uvicorn did not start")


def measure(variant: str, seconds: float, stores: dict[str, str]) -> tuple[float, float, int]:
    """Requests/s, server CPU µs per request, and non-2xx count for one variant."""
    process, url = _serve(variant, stores)
    try:
        _wrk(url, 1.0)  # warm-up
        cpu0 = _cpu_seconds(process.pid)
        rate, total, bad = _wrk(url, seconds)
        cpu = _cpu_seconds(process.pid) - cpu0
    finally:
        process.terminate()
        process.wait(timeout=30)
    return rate, cpu / total * 1e6, bad


@contextlib.contextmanager
def _stores(variants: list[str]) -> Iterator[dict[str, str]]:
    """Store URLs for the store variants: a temporary directory, a redis-server on a free port."""
    stores: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="seawall-bench-") as tmp:
        stores["seawall-file"] = Path(tmp, "state").as_uri()
        server = None
        if "seawall-redis" in variants:
            sys.path.insert(0, str(HERE.parent / "tests"))
            from _redis_server import RedisServer

            server = RedisServer()
            server.start()
            stores["seawall-redis"] = server.url
        try:
            yield stores
        finally:
            if server is not None:
                server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="variants to run (+ bare)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    wanted = set(args.only or VARIANTS) | {"bare"}
    variants = [v for v in VARIANTS if v in wanted and _installed(v)]
    results: dict[str, list[tuple[float, float, int]]] = {v: [] for v in variants}
    with _stores(variants) as stores:
        for _ in range(args.rounds):
            for variant in variants:  # interleaved, so drift hits every variant alike
                results[variant].append(measure(variant, args.duration, stores))
    bare_rate = statistics.median(r[0] for r in results["bare"])
    bare_cpu = statistics.median(r[1] for r in results["bare"])
    print(f"uvicorn 1 worker, wrk -t1 -c32, {args.rounds} x {args.duration:g} s, medians")
    print(f"{'variant':<16}{'req/s':>9}{'x bare':>8}{'CPU us/req':>12}{'x bare':>8}{'non-2xx':>9}")
    for variant in variants:
        rate = statistics.median(r[0] for r in results[variant])
        cpu = statistics.median(r[1] for r in results[variant])
        bad = max(r[2] for r in results[variant])
        print(
            f"{variant:<16}{rate:>9.0f}{rate / bare_rate:>8.2f}{cpu:>12.1f}"
            f"{cpu / bare_cpu:>8.2f}{bad:>9}"
        )


if __name__ == "__main__":
    main()
