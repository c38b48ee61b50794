"""Helpers for testing code that uses seawall.

``FakeClock`` replaces the system clock in any seawall primitive (``clock=FakeClock()``), so
tests decide when time passes instead of sleeping. Watchdogs are served by a monitor thread:
after ``clock.advance(...)``, ``settle_monitor(clock)`` returns once that thread has acted on
the new time, so a test never sleeps to wait for a callback. ``with retry_testing_mode():``
makes every ``Retry`` in the process skip its waits, for code under test that builds its own
``Retry`` without a ``clock=``.

For an application's own tests: ``with disable_gates():`` lets every request through every
``ResilienceMiddleware`` and ``RateLimit`` dependency in the process (rate limits, bulkhead,
breaker, timeout), and ``reset_gates()`` forgets what they counted (spent quotas, an open
breaker), so tests do not depend on each other's traffic. See ``docs/testing.md``.
"""

from __future__ import annotations

from ._fake_clock import FakeClock
from ._gates import disable_gates, reset_gates
from ._monitor import settle as settle_monitor
from ._retry import testing_mode as retry_testing_mode

__all__ = ["FakeClock", "disable_gates", "reset_gates", "retry_testing_mode", "settle_monitor"]
