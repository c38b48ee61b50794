"""An httpx client with per-host resilience from seawall.

Each origin gets its own circuit breaker, rate limiter and bulkhead; idempotent requests are
retried with full-jitter backoff within a deadline; a shared retry budget stops retry storms.

Run it against a simulated flaky upstream (no network):

    python examples/httpx_client.py

or against a real server whose /flaky/{key}?fail=N route fails N times with 503:

    python examples/httpx_client.py http://127.0.0.1:8000
"""

from __future__ import annotations

import sys
from collections import Counter

import anyio
import httpx

from seawall import Bulkhead, CircuitBreaker, RateLimiter, Retry, RetryBudget
from seawall.httpx import ResilientTransport


def make_transport(inner: httpx.AsyncBaseTransport | None = None) -> ResilientTransport:
    """Per-host policies, created on first use of each origin."""
    return ResilientTransport(
        inner,
        retry=Retry(
            attempts=4,
            initial=0.01,
            maximum=0.5,
            deadline=5.0,
            budget=RetryBudget(ratio=0.2, minimum_per_second=5),
        ),
        breaker=lambda origin: CircuitBreaker(max_failures=3, reset_timeout=10, name=origin),
        limiter=lambda origin: RateLimiter(rate=50, per=1.0, burst=10),
        bulkhead=lambda origin: Bulkhead(max_concurrent=8, max_wait=1.0),
        max_retry_after=30,
    )


def simulated_upstream() -> httpx.MockTransport:
    """An upstream where /flaky/{key}?fail=N answers 503 N times per key, then 200."""
    seen: Counter[str] = Counter()

    def handle(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        seen[key] += 1
        if seen[key] <= int(request.url.params.get("fail", "0")):
            return httpx.Response(503, headers={"Retry-After": "0"})
        return httpx.Response(200, text="ok")

    return httpx.MockTransport(handle)


async def main(base_url: str | None) -> None:
    inner = None if base_url else simulated_upstream()
    base = base_url or "http://upstream.example"
    async with httpx.AsyncClient(transport=make_transport(inner), base_url=base) as client:
        response = await client.get("/flaky/example-get?fail=2")
        print(f"GET  after 2 failures -> {response.status_code} {response.text}")
        response = await client.post("/flaky/example-post?fail=1")
        print(f"POST (never retried)  -> {response.status_code}")
        try:
            for _ in range(5):
                await client.get("/flaky/example-down?fail=99")
        except httpx.HTTPError as exc:  # a rejection is an httpx.TransportError too
            print(f"open circuit          -> {type(exc).__name__}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else None)
