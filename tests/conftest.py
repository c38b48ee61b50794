"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seawall import config
from seawall.testing import FakeClock

# A real redis-server for the Redis store tests (a missing binary is an error, not a skip).
pytest_plugins = ["_redis_server"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend, named explicitly."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at monotonic 0."""
    return FakeClock()


@pytest.fixture(autouse=True)
def _process_settings() -> Iterator[None]:
    """Give every test back the process-wide settings it started with.

    seawall.config loads them lazily, from the environment, at the first policy built; a test
    that sets ``SEAWALL_*`` variables or calls ``configure()`` must not leave them to the
    tests that run after it.
    """
    saved = config._installed
    yield
    config._installed = saved
