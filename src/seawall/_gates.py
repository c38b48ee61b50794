"""The process-wide off switch of seawall's request gates, and what a test may reset.

An application's own tests rarely want its rate limits, load shedding or breaker in the way:
``with disable_gates():`` makes every :class:`~seawall.asgi.ResilienceMiddleware` and every
``RateLimit`` dependency in the process let requests straight through, and
:func:`reset_gates` forgets what they counted (spent quotas, an open breaker), so one test's
traffic never decides the next one's answers. ``seawall.testing`` exports both.

The switch costs the request path one test of a module-level list (mutated in place, never
rebound, so importers test it without an attribute lookup), as :data:`seawall._events.ACTIVE`
does. The registry holds weak references: a discarded app is never kept alive by it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Protocol

__all__ = ["OFF", "Resettable", "disable_gates", "register", "reset_gates"]

#: Non-empty while gates are disabled (one entry per active ``disable_gates`` block).
OFF: list[bool] = []

_lock = threading.Lock()


class Resettable(Protocol):
    """Something that holds gate state and can forget it."""

    def reset(self) -> None:
        """Forget the counted state (spent quotas, breaker failures)."""


_registry: weakref.WeakSet[Resettable] = weakref.WeakSet()


def register(gate: Resettable) -> None:
    """Let :func:`reset_gates` reach ``gate`` (held weakly)."""
    with _lock:
        _registry.add(gate)


@contextlib.contextmanager
def disable_gates() -> Iterator[None]:
    """Within this block every middleware and dependency gate lets requests through.

    Process-wide, for every thread and event loop; blocks nest.
    """
    with _lock:
        OFF.append(True)
    try:
        yield
    finally:
        with _lock:
            OFF.pop()


def reset_gates() -> int:
    """Reset every live middleware and ``RateLimit`` dependency; return how many were reset."""
    with _lock:
        gates = list(_registry)
    for gate in gates:
        gate.reset()
    return len(gates)
