"""ResilientTransport against a real uvicorn server on 127.0.0.1 (sync, asyncio and trio)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests._uvicorn_thread import serve_in_thread

from _paths import EXAMPLES
from seawall import CircuitBreaker, Retry
from seawall.httpx import CircuitOpenTransportError, ResilientTransport

pytestmark = pytest.mark.slow

hits: Counter[str] = Counter()


async def flaky(request: Request) -> PlainTextResponse:
    """Fails with 503 ``fail`` times per key, then answers 200."""
    key = request.path_params["key"]
    hits[key] += 1
    if hits[key] <= int(request.query_params.get("fail", "0")):
        return PlainTextResponse("busy", status_code=503)
    return PlainTextResponse("ok")


async def status(request: Request) -> PlainTextResponse:
    """Answers with the status code in the path, counting hits per key."""
    key = request.path_params["key"]
    hits[key] += 1
    return PlainTextResponse("x", status_code=int(request.path_params["code"]))


app = Starlette(
    routes=[
        Route("/flaky/{key}", flaky, methods=["GET", "POST"]),
        Route("/status/{code:int}/{key}", status),
    ]
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A uvicorn server in a thread on a free port, stopped after the module."""
    with serve_in_thread(app) as url:
        yield url


def fast_retry(attempts: int = 3) -> Retry:
    """Real-time retries with waits of at most 20 ms."""
    return Retry(attempts=attempts, initial=0.01, maximum=0.02)


def test_sync_client_retries_until_success(base_url: str) -> None:
    """Two 503s then 200: the server sees exactly three requests."""
    with httpx.Client(transport=ResilientTransport(retry=fast_retry())) as client:
        response = client.get(f"{base_url}/flaky/sync?fail=2")
    assert (response.status_code, response.text) == (200, "ok")
    assert hits["sync"] == 3


def test_discarded_responses_return_their_connection(base_url: str) -> None:
    """With one pooled connection, retries only work if discarded responses are closed."""
    inner = httpx.HTTPTransport(limits=httpx.Limits(max_connections=1))
    transport = ResilientTransport(inner, retry=fast_retry(4))
    with httpx.Client(transport=transport, timeout=httpx.Timeout(10, pool=2)) as client:
        assert client.get(f"{base_url}/flaky/pool?fail=3").status_code == 200
    assert hits["pool"] == 4


def test_post_is_sent_once(base_url: str) -> None:
    """A POST answered with 503 is not retried."""
    with httpx.Client(transport=ResilientTransport(retry=fast_retry())) as client:
        assert client.post(f"{base_url}/flaky/post?fail=5").status_code == 503
    assert hits["post"] == 1


def test_breaker_opens_on_server_errors(base_url: str) -> None:
    """Two 500s open the origin's breaker; the third request never reaches the server."""
    transport = ResilientTransport(
        retry=None, breaker=lambda origin: CircuitBreaker(max_failures=2, reset_timeout=60)
    )
    with httpx.Client(transport=transport) as client:
        assert client.get(f"{base_url}/status/500/breaker").status_code == 500
        assert client.get(f"{base_url}/status/500/breaker").status_code == 500
        with pytest.raises(httpx.HTTPError) as caught:
            client.get(f"{base_url}/status/500/breaker")
    assert isinstance(caught.value, CircuitOpenTransportError)
    assert hits["breaker"] == 2


@pytest.mark.anyio
async def test_async_client_retries_on_both_backends(base_url: str, anyio_backend: str) -> None:
    """AsyncClient through the default async inner transport retries on asyncio and trio."""
    key = f"async-{anyio_backend}"
    async with httpx.AsyncClient(transport=ResilientTransport(retry=fast_retry())) as client:
        response = await client.get(f"{base_url}/flaky/{key}?fail=2")
    assert response.status_code == 200
    assert hits[key] == 3


EXAMPLE = EXAMPLES / "httpx_client.py"
EXPECTED = [
    "GET  after 2 failures -> 200 ok",
    "POST (never retried)  -> 503",
    "open circuit          -> CircuitOpenTransportError",
]


@pytest.mark.parametrize("against", ["simulated", "server"])
def test_example_client_runs(base_url: str, against: str) -> None:
    """examples/httpx_client.py prints the expected outcomes, simulated and against uvicorn."""
    args = [sys.executable, str(EXAMPLE)] + ([base_url] if against == "server" else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == EXPECTED
