"""An app for tests/adaptive/test_adaptive_uvicorn.py: priority shedding at a held limit of 2.

``/slow`` waits until the file named by ``SEAWALL_TEST_GO`` exists; ``/stats`` (exempt) reports
the adaptive bulkhead's occupancy; ``/pay`` is critical and ``/batch`` sheddable.
"""

from __future__ import annotations

import os

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from seawall import AdaptiveBulkhead, AIMDLimit
from seawall.asgi import ResilienceMiddleware

GO = anyio.Path(os.environ["SEAWALL_TEST_GO"])
BULKHEAD = AdaptiveBulkhead(AIMDLimit(initial_limit=2, min_limit=2, max_limit=2), name="api")


async def slow(request: Request) -> Response:
    # The test releases the held requests from outside the process, through a file.
    while not await GO.exists():  # noqa: ASYNC110
        await anyio.sleep(0.01)
    return PlainTextResponse("slow")


async def fast(request: Request) -> Response:
    return PlainTextResponse("fast")


async def stats(request: Request) -> Response:
    s = BULKHEAD.stats
    return JSONResponse(
        {"in_flight": s.in_flight, "shed": [s.shed_sheddable, s.shed_default, s.shed_critical]}
    )


routes = [Route(p, fast) for p in ("/", "/pay", "/batch")]
routes += [Route("/slow", slow), Route("/stats", stats)]
app = ResilienceMiddleware(
    Starlette(routes=routes),
    max_concurrent=BULKHEAD,
    priority={"/pay": "critical", "/batch": "sheddable"},
    exempt=["/stats"],
    readiness_path="/readyz",
    liveness_path="/livez",
)
