"""Running an async cleanup callback in a task that no task group owns.

Theory of operation: anyio starts tasks only in task groups, and a task group does not exit
while one of its tasks still runs. A cleanup callback that ignores cancellation (a shielded
cancel scope, an ``except`` that swallows it) would therefore hold ``atrigger()`` past its total
budget, however early it was cancelled. So ``atrigger()`` runs each async callback as a
*detached* task on the running loop: asyncio's ``loop.create_task`` (a strong reference is kept
here, asyncio itself holds only weak ones) or trio's system nursery. The run waits for it as long
as the budget allows, then moves on and leaves it running.

A detached task still belongs to its loop. At loop close ``asyncio.run()`` cancels it natively,
which cuts through anyio shields, and does not wait beyond that; ``trio.run()`` cancels it too but
honours shields, so a callback that shields a wait that never ends keeps ``trio.run()`` from
returning. The signal path is not affected: it runs callbacks on its own loop in a daemon thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable
from typing import Any

import anyio

from .._log import logger

__all__ = ["Flight", "launch"]


# Detached asyncio tasks, kept alive until they end (the loop only holds weak references).
_RUNNING: set[Any] = set()


class Flight:
    """One async callback in a detached task: its cancel switch and its outcome."""

    __slots__ = ("abandoned", "done", "error", "name", "scope")

    def __init__(self, name: str) -> None:
        self.name = name
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.error: Exception | None = None
        self.abandoned = False


async def _fly(awaitable: Awaitable[object], flight: Flight) -> None:
    try:
        with flight.scope:
            await awaitable
    except Exception as exc:  # reported through the flight, or logged once abandoned
        flight.error = exc
    finally:
        flight.done.set()
    if flight.abandoned:
        logger.warning(
            "abandoned shutdown callback %r has now ended", flight.name, exc_info=flight.error
        )


def launch(awaitable: Awaitable[object], name: str) -> Flight:
    """Start awaiting ``awaitable`` in a detached task on the running loop (asyncio or trio)."""
    import asyncio

    flight = Flight(name)
    context = contextvars.copy_context()  # the callback sees the caller's context variables
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio  # not on asyncio, so on trio: anyio's only other backend

        trio.lowlevel.spawn_system_task(
            _fly, awaitable, flight, name=f"seawall-shutdown:{name}", context=context
        )
    else:
        task = loop.create_task(
            _fly(awaitable, flight), name=f"seawall-shutdown:{name}", context=context
        )
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
    return flight
