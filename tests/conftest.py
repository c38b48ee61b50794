"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

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
