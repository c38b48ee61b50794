"""The ``--adaptive`` run's traffic: clients of three priorities, and a crowd that comes and goes.

* all along, clients that ask again :data:`THINK` seconds after each answer: :data:`CHECKOUT`
  checkout clients (``/checkout``, critical), :data:`BROWSING` browsing clients (``/quote``,
  default) and :data:`REPORTS` report jobs (``/report``, sheddable). They are well behaved:
  after a 503 they wait the ``Retry-After`` they were given. There are few enough of them
  for the upstream to serve them all without queueing much;
* during the ``overload`` phase a crowd arrives on top: new requests at a steady rate,
  :data:`CROWD_PAGES` page views (default) and :data:`CROWD_REPORTS` report requests
  (sheddable) a second. Each is a one-off request: the crowd keeps
  arriving at that rate whatever the answers (an open loop, as real visitors do), so the
  overload does not let up when requests are shed. In the ``recovered`` phase it thins out
  to :data:`AFTER_PAGES` page views and :data:`AFTER_REPORTS` report requests a second, a
  load the upstream can serve.

Outcomes are tallied as in :class:`~._traffic.Traffic`, grouped by the priority of the route.
"""

from __future__ import annotations

import anyio
import httpx
from anyio.abc import TaskGroup

from ..._clock import SYSTEM_CLOCK
from ._adaptive import ROUTES
from ._schedule import Phase
from ._service import CLIENT_HEADER
from ._traffic import Traffic, classify

__all__ = ["AdaptiveTraffic"]

CHECKOUT = 2
BROWSING = 5
REPORTS = 3
THINK = 0.1
CROWD_PAGES = 60
CROWD_REPORTS = 40
AFTER_PAGES = 12
AFTER_REPORTS = 8
_BY_PRIORITY = {priority: path for path, priority in ROUTES.items()}


class AdaptiveTraffic(Traffic):
    """Drives the ``--adaptive`` clients; ``by_group`` is keyed by priority."""

    async def run(self) -> None:
        """Run every client until the end of the schedule; returns when all have finished."""
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=64)
        async with (
            httpx.AsyncClient(timeout=10.0, limits=limits) as client,
            anyio.create_task_group() as tg,
        ):
            for priority, count in (
                ("critical", CHECKOUT),
                ("default", BROWSING),
                ("sheddable", REPORTS),
            ):
                for _ in range(count):
                    tg.start_soon(self._keep_asking, client, priority)
            tg.start_soon(self._crowd, client)

    async def _keep_asking(self, client: httpx.AsyncClient, priority: str) -> None:
        end = self._schedule.duration
        while not self._stopping and self._elapsed() < end:
            wait = max(await self._ask(client, priority), THINK)
            await SYSTEM_CLOCK.asleep(min(wait, max(0.0, end - self._elapsed())))

    async def _crowd(self, client: httpx.AsyncClient) -> None:
        overload, recovered = self._schedule.phase("overload"), self._schedule.phase("recovered")
        async with anyio.create_task_group() as tg:
            with self._waiting:  # stop() cancels it: no more arrivals; those sent finish
                await SYSTEM_CLOCK.asleep(max(0.0, overload.start - self._elapsed()))
                self._on_event(
                    f"crowd: {CROWD_PAGES + CROWD_REPORTS} new requests a second arrive, "
                    f"{CROWD_PAGES} page views (default) and {CROWD_REPORTS} report requests "
                    "(sheddable)"
                )
                await self._arrive(tg, client, overload, CROWD_PAGES, CROWD_REPORTS)
                self._on_event(
                    f"crowd: thins out to {AFTER_PAGES + AFTER_REPORTS} new requests a second, "
                    f"{AFTER_PAGES} page views and {AFTER_REPORTS} report requests"
                )
                await self._arrive(tg, client, recovered, AFTER_PAGES, AFTER_REPORTS)

    async def _arrive(
        self, tg: TaskGroup, client: httpx.AsyncClient, phase: Phase, pages: int, reports: int
    ) -> None:
        """Send ``pages`` default and ``reports`` sheddable requests a second during ``phase``."""
        rate = pages + reports
        for n in range(round((phase.end - phase.start) * rate)):
            # Arrival n at a fixed time from the phase's start: late wakes do not add up.
            await SYSTEM_CLOCK.asleep(max(0.0, phase.start + n / rate - self._elapsed()))
            # The reports spread evenly among the arrivals (``reports`` in each ``rate``).
            report = (n + 1) * reports // rate > n * reports // rate
            tg.start_soon(self._ask, client, "sheddable" if report else "default")

    async def _ask(self, client: httpx.AsyncClient, priority: str) -> float:
        """One request at ``priority``'s route; the ``Retry-After`` it got (0.0 without)."""
        self.sent += 1
        url = self._bases[0] + _BY_PRIORITY[priority]
        retry_after = 0.0
        try:
            response = await client.get(url, headers={CLIENT_HEADER: priority})
            outcome = classify(response)
            retry_after = float(response.headers.get("retry-after", 0.0))
        except (httpx.HTTPError, ValueError):  # no answer, or an unreadable one
            outcome = "error"
        self.seen[outcome] += 1
        self.by_group[priority, outcome] += 1
        return retry_after
