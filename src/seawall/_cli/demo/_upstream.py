"""The demo's upstream: a quote service that misbehaves on the schedule.

``GET /quote`` answers by the phase in force when the request arrives: 200 at once when
healthy, 200 after :data:`SLOW_LATENCY` when slow, 503 in the 5xx burst, 429 with
``Retry-After: 1`` in the 429 phase, and 200 only after :data:`STALL_LATENCY` when stalled
(by then the caller has given up). It counts what it answered, by phase and status.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..._clock import SYSTEM_CLOCK
from ._schedule import SLOW_LATENCY, STALL_LATENCY, Schedule

__all__ = ["Upstream"]


class Upstream:
    """The misbehaving quote service; ``app`` is its ASGI app."""

    def __init__(self, schedule: Schedule, elapsed: Callable[[], float], *, seed: int) -> None:
        self._schedule = schedule
        self._elapsed = elapsed
        self._random = random.Random(seed)
        self.answered: Counter[int] = Counter()
        self.app = Starlette(routes=[Route("/quote", self._quote)])

    async def _quote(self, request: Request) -> Response:
        phase = self._schedule.phase_at(self._elapsed()).name
        if phase == "5xx":
            return self._answer(Response("upstream failure", status_code=503))
        if phase == "429":
            return self._answer(
                Response("slow down", status_code=429, headers={"Retry-After": "1"})
            )
        if phase in ("slow", "stalled"):
            await SYSTEM_CLOCK.asleep(SLOW_LATENCY if phase == "slow" else STALL_LATENCY)
        price = round(100 + self._random.uniform(-5, 5), 2)
        return self._answer(JSONResponse({"symbol": "SEA", "price": price}))

    def _answer(self, response: Response) -> Response:
        self.answered[response.status_code] += 1
        return response
