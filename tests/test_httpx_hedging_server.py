"""Hedging and attempt timeouts against a real uvicorn server with a slow first answer."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests._uvicorn_thread import serve_in_thread

from seawall import CircuitBreaker, Retry
from seawall.httpx import ResilientTransport

pytestmark = pytest.mark.slow

hits: Counter[str] = Counter()
gave_up: dict[str, threading.Event] = {}


async def tail(request: Request) -> PlainTextResponse:
    """The first request per key answers after 2 s unless its client leaves; later ones at once."""
    key = request.path_params["key"]
    hits[key] += 1
    if hits[key] > 1:
        return PlainTextResponse("fast")
    left = gave_up.setdefault(key, threading.Event())
    for _ in range(200):
        if await request.is_disconnected():
            left.set()
            return PlainTextResponse("gone")
        await asyncio.sleep(0.01)
    return PlainTextResponse("slow")


app = Starlette(routes=[Route("/tail/{key}", tail)])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A uvicorn server in a thread on a free port, stopped after the module."""
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.anyio
async def test_async_hedge_answers_and_the_slow_request_is_abandoned(
    base_url: str, anyio_backend: str
) -> None:
    """The hedge after 50 ms answers 'fast'; the server sees the first client leave."""
    key = f"async-{anyio_backend}"
    transport = ResilientTransport(retry=None, hedging=0.05)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{base_url}/tail/{key}")
    assert (response.status_code, response.text) == (200, "fast")
    assert hits[key] == 2
    assert gave_up[key].wait(10), "the server never saw the cancelled attempt's client leave"


def test_sync_hedge_answers_first(base_url: str) -> None:
    """Sync client: the hedge after 50 ms answers 'fast' while the first waits on the server."""
    transport = ResilientTransport(retry=None, hedging=0.05)
    with httpx.Client(transport=transport) as client:
        response = client.get(f"{base_url}/tail/sync")
    assert (response.status_code, response.text) == (200, "fast")
    assert hits["sync"] == 2


@pytest.mark.anyio
async def test_async_attempt_timeout_uses_httpx_timeouts(base_url: str, anyio_backend: str) -> None:
    """httpx's own transport gets the 0.1 s attempt timeout: a ReadTimeout, then the retry."""
    key = f"timeout-{anyio_backend}"
    transport = ResilientTransport(retry=Retry(attempts=2, wait=False), attempt_timeout=0.1)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{base_url}/tail/{key}")
    breaker = transport.policies(base_url).breaker
    assert isinstance(breaker, CircuitBreaker)
    assert (response.text, hits[key], breaker.stats.failed_calls) == ("fast", 2, 1)


def test_sync_attempt_timeout_uses_httpx_timeouts(base_url: str) -> None:
    """Sync: the 0.1 s attempt timeout reaches httpx.HTTPTransport, so a slow answer is retried."""
    transport = ResilientTransport(retry=Retry(attempts=2, wait=False), attempt_timeout=0.1)
    with httpx.Client(transport=transport) as client:
        response = client.get(f"{base_url}/tail/sync-timeout")
    breaker = transport.policies(base_url).breaker
    assert isinstance(breaker, CircuitBreaker)
    assert (response.text, hits["sync-timeout"], breaker.stats.failed_calls) == ("fast", 2, 1)
