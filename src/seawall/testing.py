"""Helpers for testing code that uses seawall.

``FakeClock`` replaces the system clock in any seawall primitive (``clock=FakeClock()``), so
tests decide when time passes instead of sleeping.
"""

from __future__ import annotations

from ._fake_clock import FakeClock

__all__ = ["FakeClock"]
