"""Fixtures of the store tests: the async Redis tests run with each async client."""

from __future__ import annotations

import pytest

#: The async clients a Redis store can use (``RedisStore(async_client=...)``).
ASYNC_CLIENTS = ["glide", "redis-py"]


@pytest.fixture(params=ASYNC_CLIENTS)
def async_client(request: pytest.FixtureRequest) -> str:
    """Run a Redis test once with valkey-glide and once with redis-py as the async client."""
    return str(request.param)
