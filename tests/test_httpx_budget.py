"""A retry budget kept in a store, asked by the async transport: never on the event loop.

Durations are real (a socket timeout cannot run on the fake clock): the store call waits the
store timeout while Redis is frozen (SIGSTOP), and a 10 ms ticker shows whether the loop
went on meanwhile.
"""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from _redis_server import RedisServer
from seawall import Retry, RetryBudget
from seawall.httpx import ResilientTransport
from seawall.stores import RedisStore

pytestmark = pytest.mark.slow

# A store call made on the loop lags a 10 ms ticker by the whole store timeout (0.25 s);
# without one the ticker was at most 17 ms late on this loaded 2-core machine (the figures
# of tests/stores/test_store_timeouts.py, whose bounds these are).
STALL_TIMEOUT = 0.25
MAX_LAG = 0.12


@pytest.mark.anyio
async def test_a_store_backed_retry_budget_is_asked_off_the_event_loop(
    redis_server: RedisServer,
) -> None:
    """A retry decided by a budget in a frozen Redis lets a ticker task keep ticking."""
    store = RedisStore(redis_server.url, timeout=STALL_TIMEOUT)
    budget = RetryBudget(store=store, name="httpx-budget")
    statuses = iter([503, 200, 503, 200])
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(next(statuses))),
        retry=Retry(attempts=2, wait=False, budget=budget),
    )
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    async with httpx.AsyncClient(transport=transport, base_url="http://upstream.test") as client:
        assert (await client.get("/")).status_code == 200  # connected, scripts loaded
        redis_server.pause()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                await anyio.sleep(0.02)  # the ticker is waiting before the request starts
                assert (await client.get("/")).status_code == 200  # retried: degraded "local"
                await anyio.sleep(0.05)  # the ticker wakes (late, if the loop was held)
                tg.cancel_scope.cancel()
        finally:
            redis_server.resume()
    assert budget.degraded_decisions == 1  # the retry did wait for the frozen store
    assert max(lags) < MAX_LAG
    await store.aclose()
