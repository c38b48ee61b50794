"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

from seawall.testing import FakeClock


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend, named explicitly."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at monotonic 0."""
    return FakeClock()
