"""One rule for "is this callable async?", shared by every decorator."""

from __future__ import annotations

import functools

import pytest

from seawall import Pipeline, Timeout
from seawall._callables import is_async_callable


async def afn(x: int) -> int:
    return x


def fn(x: int) -> int:
    return x


class AsyncHandler:
    async def __call__(self, x: int) -> int:
        return x * 2


class SyncHandler:
    def __call__(self, x: int) -> int:
        return x * 3


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (afn, True),
        (functools.partial(afn, 1), True),
        (functools.partial(functools.partial(afn), 1), True),
        (AsyncHandler(), True),
        (fn, False),
        (functools.partial(fn, 1), False),
        (SyncHandler(), False),
        (lambda: None, False),
    ],
)
def test_is_async_callable(candidate: object, expected: bool) -> None:
    """Async functions, partials of them and async __call__ objects count as async."""
    assert is_async_callable(candidate) is expected


@pytest.mark.anyio
async def test_timeout_decorates_an_async_call_object_on_the_async_path() -> None:
    """Timeout(...)(obj) with an async __call__ gives an awaitable wrapper."""
    wrapped = Timeout(5)(AsyncHandler())
    assert await wrapped(21) == 42


@pytest.mark.anyio
async def test_pipeline_decorates_an_async_call_object_on_the_async_path() -> None:
    """Pipeline()(obj) with an async __call__ gives an awaitable wrapper."""
    wrapped = Pipeline()(AsyncHandler())
    assert await wrapped(4) == 8
