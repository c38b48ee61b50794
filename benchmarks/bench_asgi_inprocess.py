"""ResilienceMiddleware's own cost per request, in process, and how it grows with the routes.

    python3 benchmarks/bench_asgi_inprocess.py            # ~1 minute
    python3 benchmarks/bench_asgi_inprocess.py --rounds 5 --requests 2000

No server and no sockets: each request is one call of the ASGI app with a fresh scope, a
receive that answers an empty body and a send that drops the messages, on one asyncio loop.
This isolates what the middleware adds (``bench_asgi.py`` measures the same under uvicorn and
wrk). Time is the process's CPU time (a loaded machine's waits are not counted), variants
are measured in interleaved rounds, and each keeps its fastest round.

Two tables: the middleware's overhead over the same app without it (memory store: a limit
that never refuses; plus bulkhead and breaker; a limit that refuses every request but the
first), and the overhead with one route limited among 1, 50 and 500 routes, the request going
to the last route registered (the worst case for a router that asks every route in turn).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

NEVER = "1000000/second"
GATES: dict[str, dict[str, Any]] = {
    "limit": {"rate_limit": NEVER},
    "limit+bulkhead+breaker": {"rate_limit": NEVER, "max_concurrent": 1000, "breaker": True},
    "refusing (429)": {"rate_limit": "1/hour", "max_concurrent": 1000, "breaker": True},
}


def _app(routes: int, options: dict[str, Any] | None) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from seawall.asgi import ResilienceMiddleware

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, world!")

    table = [Route(f"/r{i}", hello) for i in range(routes - 1)] + [Route("/", hello)]
    app = Starlette(routes=table)
    if options is not None:
        app.add_middleware(ResilienceMiddleware, **options)
    return app


def _scope() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def _per_request(app: Any, requests: int) -> float:
    """Seconds per request over ``requests`` calls (after 100 to warm up)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    for _ in range(100):
        await app(_scope(), receive, send)
    start = time.process_time()
    for _ in range(requests):
        await app(_scope(), receive, send)
    return (time.process_time() - start) / requests


def fastest(apps: dict[str, Any], rounds: int, requests: int) -> dict[str, float]:
    """Each app's fastest round, in µs per request; rounds interleave the apps."""
    best = dict.fromkeys(apps, float("inf"))
    for _ in range(rounds):
        for name, app in apps.items():
            best[name] = min(best[name], asyncio.run(_per_request(app, requests)) * 1e6)
    return best


def _lookup_us(app: Any, rounds: int) -> float:
    """The middleware's route lookup alone for a request to '/', fastest of ``rounds``, in µs."""
    from seawall.asgi import ResilienceMiddleware

    layer = app.middleware_stack  # built by the requests already sent
    while not isinstance(layer, ResilienceMiddleware):
        layer = layer.app
    scope, n, best = {**_scope(), "app": app}, 20_000, float("inf")
    lookup, default = layer.route_limits.lookup, layer.default_limits
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            lookup(scope, layer.app, default)
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()

    apps = {"bare": _app(1, None)} | {name: _app(1, o) for name, o in GATES.items()}
    best = fastest(apps, args.rounds, args.requests)
    print(f"in process, asyncio, fastest of {args.rounds} rounds x {args.requests} requests")
    print(f"{'memory store':<26}{'us/request':>11}{'overhead us':>13}{'x bare':>8}")
    for name, us in best.items():
        print(f"{name:<26}{us:>11.1f}{us - best['bare']:>13.1f}{us / best['bare']:>8.2f}")

    print(
        f"\n{'routes (one limited)':<26}{'bare us':>11}{'seawall us':>12}{'overhead us':>13}"
        f"{'lookup us':>11}"
    )
    for routes in (1, 50, 500):
        # The limited route is the first one registered ('/' when it is the only one).
        first = "/" if routes == 1 else "/r0"
        limited = {"rate_limit": NEVER, "route_limits": {first: NEVER}}
        pair = {"bare": _app(routes, None), "seawall": _app(routes, limited)}
        got = fastest(pair, args.rounds, args.requests // 2)
        bare, seawall = got["bare"], got["seawall"]
        lookup = _lookup_us(pair["seawall"], args.rounds)
        print(f"{routes:<26}{bare:>11.1f}{seawall:>12.1f}{seawall - bare:>13.1f}{lookup:>11.2f}")


if __name__ == "__main__":
    main()
