"""The demo's traffic: simulated clients calling the protected service, and what they saw.

* ``client-1`` .. ``client-5`` ask for a quote, then think for a moment (under their limit);
* ``greedy`` asks far faster than its per-client limit allows, two requests at a time
  (it collects 429s);
* a flash crowd of 24 one-off clients arrives at once when the upstream turns slow, so more
  requests are in flight than the bulkhead has slots (the rest are shed with 503).

Requests go to the service's instances in turn (one, or one per worker process). Every request
ends in exactly one :data:`OUTCOMES` bucket, decided from the response alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence

import anyio
import httpx

from ..._clock import SYSTEM_CLOCK
from ._schedule import Schedule
from ._service import CLIENT_HEADER

__all__ = ["GROUPS", "OUTCOMES", "Traffic", "classify", "group_of"]

OUTCOMES = ("fresh", "degraded", "rate_limited", "overloaded", "circuit_open", "timeout", "error")

STEADY_CLIENTS = 5
STEADY_THINK = 0.25
GREEDY_LOOPS = 2
GREEDY_THINK = 0.05
CROWD = 24

_REDUCED_CAPACITY = "temporary-reduced-capacity"
GROUPS = ("steady", "greedy", "crowd")


def group_of(client: str) -> str:
    """The group a simulated client belongs to (``client-3`` is steady, ``crowd-7`` crowd)."""
    prefix = client.split("-", 1)[0]
    return "steady" if prefix == "client" else prefix


def classify(response: httpx.Response) -> str:
    """The outcome bucket of one response from the protected service."""
    status = response.status_code
    if status == 200:
        return "degraded" if response.json().get("degraded") else "fresh"
    if status == 429:
        return "rate_limited"
    if status == 503:
        kind = str(json.loads(response.content).get("type", ""))
        return "overloaded" if kind.endswith(_REDUCED_CAPACITY) else "circuit_open"
    if status == 504:
        return "timeout"
    return "error"


class Traffic:
    """Drives the clients until the schedule ends; ``seen`` tallies the outcomes."""

    def __init__(
        self,
        base_urls: Sequence[str],
        schedule: Schedule,
        elapsed: Callable[[], float],
        on_event: Callable[[str], None],
    ) -> None:
        self._bases = list(base_urls)
        self._urls = [f"{url}/quote" for url in base_urls]
        self._schedule = schedule
        self._elapsed = elapsed
        self._on_event = on_event
        self.seen: Counter[str] = Counter()
        self.by_group: Counter[tuple[str, str]] = Counter()
        """Outcomes by client group: ``("steady" | "greedy" | "crowd", outcome)``."""
        self.sent = 0
        self._stopping = False
        self._waiting = anyio.CancelScope()

    def stop(self) -> None:
        """End the run early: each client finishes the request it has in flight, then stops.

        (Cancelling requests in flight would leave the service counting answers that no
        client saw, and the run's books would no longer balance.)
        """
        self._stopping = True
        self._waiting.cancel()  # a flash crowd still waiting for its moment never comes

    async def run(self) -> None:
        """Run every client until the end of the schedule; returns when all have finished."""
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with (
            httpx.AsyncClient(timeout=10.0, limits=limits) as client,
            anyio.create_task_group() as tg,
        ):
            for n in range(1, STEADY_CLIENTS + 1):
                tg.start_soon(self._loop, client, f"client-{n}", STEADY_THINK)
            for _ in range(GREEDY_LOOPS):
                tg.start_soon(self._loop, client, "greedy", GREEDY_THINK)
            tg.start_soon(self._flash_crowd, client)

    async def _loop(self, client: httpx.AsyncClient, name: str, think: float) -> None:
        while not self._stopping and self._elapsed() < self._schedule.duration:
            await self._request(client, name)
            await SYSTEM_CLOCK.asleep(think)

    async def _flash_crowd(self, client: httpx.AsyncClient) -> None:
        with self._waiting:
            delay = self._schedule.phase("slow").start - self._elapsed()
            await SYSTEM_CLOCK.asleep(max(0.0, delay))
        if self._stopping:
            return
        self._on_event(f"flash crowd: {CROWD} new clients arrive at once")
        async with anyio.create_task_group() as tg:
            for n in range(1, CROWD + 1):
                tg.start_soon(self._request, client, f"crowd-{n}")

    async def _request(self, client: httpx.AsyncClient, name: str) -> None:
        url = self._urls[self.sent % len(self._urls)]
        self.sent += 1
        try:
            response = await client.get(url, headers={CLIENT_HEADER: name})
            outcome = classify(response)
        except (httpx.HTTPError, ValueError):  # no answer, or an unreadable one
            outcome = "error"
        self.seen[outcome] += 1
        self.by_group[group_of(name), outcome] += 1
