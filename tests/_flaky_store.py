"""A MemoryStore that can be switched off, to drive degraded mode without real failures.

The real failures (a lock held by another process, a killed redis-server) are exercised by the
file and Redis store tests; this one makes the policy layer's reaction exactly repeatable.
"""

from __future__ import annotations

import inspect
from typing import Any

from seawall.stores import MemoryStore, StoreUnavailableError

__all__ = ["FlakyStore"]

_OPERATIONS = [
    *("reserve", "areserve", "cancel", "acancel", "block", "ablock", "peek"),
    *("admit", "aadmit", "record", "arecord", "force", "view"),
    *("try_hold", "atry_hold", "holders"),
]


class FlakyStore(MemoryStore):
    """Raises :class:`StoreUnavailableError` from every operation while ``down`` is True."""

    down = False
    calls = 0


def _wrap(name: str) -> None:
    base = getattr(MemoryStore, name)
    if inspect.iscoroutinefunction(base):

        async def operation(self: FlakyStore, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StoreUnavailableError(f"{name}: store is down")
            return await base(self, *args, **kwargs)

    else:

        def operation(self: FlakyStore, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            self.calls += 1
            if self.down:
                raise StoreUnavailableError(f"{name}: store is down")
            return base(self, *args, **kwargs)

    setattr(FlakyStore, name, operation)


for _name in _OPERATIONS:
    _wrap(_name)
