"""Several uvicorn worker processes enforcing ONE rate limit through a shared file store.

Each worker process builds its own ``RateLimiter``; with ``name=`` and ``store="file:///..."``
they all decide on the same record, so the limit holds for the whole host, not per worker.

Run the self-contained demo (starts 2 workers on a free port, sends requests on fresh
connections, prints how many passed, stops the server)::

    python examples/multi_worker.py --requests 12

or serve it yourself and use curl::

    python examples/multi_worker.py serve --port 8000 --workers 4 --store-dir /tmp/seawall-demo
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from seawall import RateLimiter

HERE = Path(__file__).resolve()
STORE_DIR = Path(
    os.environ.get("SEAWALL_EXAMPLE_STORE", Path(tempfile.gettempdir()) / "seawall-demo")
)
BURST = 5

# Built at import time in every worker. The constructor does no I/O: the store directory is
# created and locked on the first decision. degraded="deny": if the store cannot answer in
# time, refuse rather than let each worker enforce the limit on its own.
limiter = RateLimiter(
    rate=BURST,
    per=3600,
    burst=BURST,
    name="api",
    store=STORE_DIR.as_uri(),
    degraded="deny",
)


async def api(request: Request) -> JSONResponse:
    """Limited for the whole host: BURST requests pass, whichever worker serves them."""
    if not await limiter.acquire_async(timeout=0):  # never waits: False when no token now
        return JSONResponse({"error": "rate limited"}, status_code=429)
    return JSONResponse({"ok": True, "worker": os.getpid()})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/api", api), Route("/health", health)])


def serve(port: int, workers: int) -> None:
    """Run uvicorn with ``workers`` processes; each imports this module and builds its limiter."""
    import uvicorn

    uvicorn.run(
        "multi_worker:app",
        app_dir=str(HERE.parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not come up in time")


def demo(requests: int, workers: int) -> int:
    """Start the server in a child process, count the statuses, stop it; returns its status."""
    import httpx

    port = free_port()
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "SEAWALL_EXAMPLE_STORE": store}
        args = [sys.executable, str(HERE), "serve", "--port", str(port), "--workers", str(workers)]
        server = subprocess.Popen(args, env=env)
        try:
            wait_until_up(f"http://127.0.0.1:{port}", time.monotonic() + 60)
            statuses: Counter[int] = Counter()
            pids = set()
            for _ in range(requests):
                # A fresh connection each time, so the kernel may hand it to any worker.
                response = httpx.get(f"http://127.0.0.1:{port}/api", timeout=10)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    pids.add(response.json()["worker"])
            for status in sorted(statuses):
                print(f"{status}: {statuses[status]}")
            print(f"(served by {len(pids)} of {workers} workers)", file=sys.stderr)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=30)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["demo", "serve"], default="demo")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store-dir", type=Path, help="serve: the shared state directory")
    args = parser.parse_args()
    if args.command == "serve":
        if args.store_dir is not None:
            os.environ["SEAWALL_EXAMPLE_STORE"] = str(args.store_dir.resolve())
        serve(args.port, args.workers)
    else:
        demo(args.requests, args.workers)


if __name__ == "__main__":
    main()
