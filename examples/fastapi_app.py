"""A FastAPI service behind seawall.asgi.

Run it::

    uvicorn examples.fastapi_app:app --port 8000

and try ``curl -i localhost:8000/items/1`` (see the ``RateLimit`` fields), ``/login`` more than
five times a minute (429 with ``Retry-After``), ``/readyz``, and ``curl -X POST
localhost:8000/-/drain`` (readiness turns 503, as a Kubernetes preStop hook would do).
Ctrl-C or SIGTERM: uvicorn drains, then the shutdown callbacks run by priority.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from seawall import GracefulShutdown
from seawall.asgi import RateLimit, ResilienceMiddleware, limit, seawall_lifespan

#: What the shutdown callbacks did, in order (a real app would close pools and flush).
closed: list[str] = []

shutdown = GracefulShutdown(timeout=20)
shutdown.register("stop-consumers", lambda: closed.append("stop-consumers"), priority=10)
shutdown.register("close-database", lambda: closed.append("close-database"), priority=20)

lifespan = seawall_lifespan(shutdown=shutdown, drain_timeout=20)

app = FastAPI(lifespan=lifespan)
app.add_middleware(
    ResilienceMiddleware,
    rate_limit="100/minute",  # per client address, for every route without its own limit
    max_concurrent=64,  # load shedding: 503 + Retry-After above 64 requests in flight
    breaker={"max_failures": 5, "reset_timeout": 30},  # 503 fast while the app keeps failing
    request_timeout=30,  # 504 if no response has started after 30 s
    lifespan=lifespan,  # counts requests for the drain; refuses new ones at shutdown
    readiness_path="/readyz",
    liveness_path="/livez",
    drain_path="/-/drain",
)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    """Limited by the default 100/minute per client."""
    return {"item_id": item_id}


@app.get("/search")
@limit("10/minute")
async def search(q: str = "") -> dict[str, str]:
    """Its own limit, applied by the middleware before FastAPI parses anything."""
    return {"q": q}


@app.post("/login", dependencies=[Depends(RateLimit("5/minute"))])
async def login() -> dict[str, bool]:
    """A dependency limit, in addition to the default: 5 per minute per client."""
    return {"ok": True}
