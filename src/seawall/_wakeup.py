"""Waking a waiter from any thread.

One policy object serves sync callers in threads and async callers on an event loop at once,
so a slot freed by a thread may have to wake a task, and the other way round. A
:class:`Waiter` hides the difference: ``wake()`` is safe from any thread and never blocks.
anyio has no non-blocking cross-thread call, so the async side uses each backend's own
thread-safe scheduling hook, chosen once when the waiter is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio

__all__ = ["AsyncWaiter", "SyncWaiter", "Waiter"]


class SyncWaiter:
    """A thread blocked on a ``threading.Event``."""

    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False

    def wake(self) -> None:
        self.event.set()


class AsyncWaiter:
    """A task blocked on an ``anyio.Event``, wakeable from any thread."""

    __slots__ = ("_call_soon", "_thread", "event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False
        self._thread = threading.get_ident()
        self._call_soon = _threadsafe_scheduler()

    def wake(self) -> None:
        if threading.get_ident() == self._thread:
            self.event.set()
        else:
            self._call_soon(self.event.set)


Waiter = SyncWaiter | AsyncWaiter


def _threadsafe_scheduler() -> Callable[[Callable[[], object]], object]:
    import asyncio

    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        # Not on asyncio, so on trio (the only other anyio backend).
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
