"""Policies take their left-out options from seawall.config; explicit arguments still win."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import GracefulShutdown, Heartbeat, Watchdog, config, rate_limiter
from seawall.testing import FakeClock


@pytest.fixture
def configured() -> Iterator[None]:
    """Install settings from the environment for one test, then restore the previous ones."""
    previous = config.current()
    config.configure(
        env={
            "SEAWALL_WATCHDOG__TIMEOUT": "7",
            "SEAWALL_HEARTBEAT__INTERVAL": "3",
            "SEAWALL_SHUTDOWN__TIMEOUT": "12",
            "SEAWALL_SHUTDOWN__DEFAULT_TIMEOUT": "2",
            "SEAWALL_RATE_LIMITER__DEFAULT_RATE": "2",
            "SEAWALL_RATE_LIMITER__DEFAULT_PER": "60",
        }
    )
    yield
    config.configure(previous)


@pytest.mark.usefixtures("configured")
def test_watchdog_and_heartbeat_defaults(tmp_path: Path) -> None:
    """watchdog.timeout and heartbeat.interval are the defaults; arguments still win."""
    assert Watchdog().timeout == 7.0
    assert Watchdog(timeout=1.5).timeout == 1.5
    assert Heartbeat(tmp_path / "hb.json").interval == 3.0
    assert Heartbeat(tmp_path / "hb.json", interval=1).interval == 1.0


@pytest.mark.usefixtures("configured")
def test_shutdown_defaults() -> None:
    """shutdown.timeout and shutdown.default_timeout are the defaults; None stays None."""
    configured = GracefulShutdown()
    assert (configured._timeout, configured._default_timeout) == (12.0, 2.0)
    explicit = GracefulShutdown(timeout=5, default_callback_timeout=None)
    assert (explicit._timeout, explicit._default_timeout) == (5.0, None)


@pytest.mark.usefixtures("configured")
def test_rate_limiter_decorator_defaults() -> None:
    """rate_limiter.default_rate/default_per shape a decorated function's limiter."""
    clock = FakeClock()

    @rate_limiter(clock=clock, blocking=False)
    def ping() -> str:
        return "pong"

    limiter = ping.limiter  # type: ignore[attr-defined]
    assert (limiter.rate, limiter.per, limiter.burst) == (2.0, 60.0, 2.0)
