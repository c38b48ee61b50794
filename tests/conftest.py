"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from seawall import config
from seawall.testing import FakeClock

# A real redis-server for the Redis store tests (a missing binary is an error, not a skip).
pytest_plugins = ["_redis_server"]

# Hypothesis profiles. CI (``CI`` set, as ``.ci/run`` does) runs the same examples on every
# run: a bug is caught on every run or on none, never in 3 runs of 4. Local runs explore
# further and keep what they find in .hypothesis/ so a failure comes back first next time.
# A test's own max_examples still wins: it is that test's fixed budget.
settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=100, deadline=None, print_blob=True
)
settings.register_profile("dev", max_examples=500, deadline=None)
settings.load_profile(
    os.environ.get("SEAWALL_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

# When a hypothesis test fails, its pytest plugin writes a patch with libcst; older libcst
# (1.0.1 here) declares TypedDicts through mypy_extensions, which warns that this is
# deprecated. Under ``filterwarnings = error`` that warning became an INTERNALERROR that hid
# the falsifying example. Only that one message, raised from that one libcst module, passes.
_LIBCST_IMPORT_WARNING = (
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    ":libcst.metadata.type_inference_provider"
)


def pytest_configure(config: pytest.Config) -> None:
    """Let the patch writer's one import-time warning pass (see _LIBCST_IMPORT_WARNING)."""
    config.addinivalue_line("filterwarnings", _LIBCST_IMPORT_WARNING)


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
