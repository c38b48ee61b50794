"""Fallback: a value or a function's answer on chosen exceptions or results; in Pipeline."""

from __future__ import annotations

import anyio
import pytest

from seawall import CircuitBreaker, CircuitOpenError, Fallback, Pipeline, Retry
from seawall.testing import FakeClock


def fail(exc: Exception) -> int:
    raise exc


async def afail(exc: Exception) -> int:
    raise exc


def test_value_answers_a_chosen_exception() -> None:
    """Fallback(0, on=KeyError) turns a KeyError into 0 and lets a ValueError through."""
    fallback = Fallback(0, on=KeyError)
    assert fallback.call(fail, KeyError("k")) == 0
    with pytest.raises(ValueError, match="v"):
        fallback.call(fail, ValueError("v"))


def test_function_gets_the_exception() -> None:
    """function= receives the exception it answers."""
    fallback: Fallback[str] = Fallback(function=lambda exc: f"answered {exc!r}")
    assert fallback.call(fail, KeyError("k")) == "answered KeyError('k')"


def test_predicate_chooses_exceptions() -> None:
    """on= as a predicate: only the exceptions it accepts get the fallback."""
    fallback = Fallback(-1, on=lambda exc: "retryable" in str(exc))
    assert fallback.call(fail, RuntimeError("retryable")) == -1
    with pytest.raises(RuntimeError, match="fatal"):
        fallback.call(fail, RuntimeError("fatal"))


def test_on_result_replaces_a_rejected_result() -> None:
    """on_result= replaces a returned value it rejects; function= receives that value."""
    fallback: Fallback[int] = Fallback(function=lambda r: r * 10, on_result=lambda r: r < 0)
    assert fallback.call(lambda: -2) == -20
    assert fallback.call(lambda: 3) == 3


def test_decorator_on_sync_and_async_functions() -> None:
    """@Fallback(...) works on sync and async functions alike."""

    @Fallback("cached", on=ConnectionError)
    def fetch() -> str:
        raise ConnectionError

    @Fallback("cached", on=ConnectionError)
    async def afetch() -> str:
        raise ConnectionError

    assert fetch() == "cached"
    assert anyio.run(afetch) == "cached"


@pytest.mark.anyio
async def test_async_function_answer_is_awaited() -> None:
    """In acall an async function= is awaited."""

    async def answer(exc: Exception) -> str:
        await anyio.lowlevel.checkpoint()
        return "late"

    assert await Fallback(function=answer).acall(afail, OSError()) == "late"


@pytest.mark.anyio
async def test_cancellation_is_never_answered() -> None:
    """A cancelled call stays cancelled, even with on=BaseException-wide predicates."""
    fallback = Fallback("no", on=lambda exc: True)
    answered: list[str] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        answered.append(await fallback.acall(anyio.sleep_forever))  # type: ignore[arg-type]
    assert (scope.cancelled_caught, answered) == (True, [])


def test_bad_arguments_name_what_is_wrong() -> None:
    """Neither or both of value and function, and non-exception on=, raise TypeError."""
    with pytest.raises(TypeError, match="exactly one of a value or function="):
        Fallback()
    with pytest.raises(TypeError, match="exactly one of a value or function="):
        Fallback(1, function=lambda e: 2)
    with pytest.raises(TypeError, match="on must be Exception subclasses"):
        Fallback(1, on=KeyboardInterrupt)
    with pytest.raises(TypeError, match="on_result must be callable"):
        Fallback(1, on_result=3)  # type: ignore[arg-type]


def test_sync_call_refuses_an_async_function_answer() -> None:
    """call() with an async function= raises TypeError instead of returning a coroutine."""

    async def answer(exc: Exception) -> int:
        return 1

    with pytest.raises(TypeError, match="is async"):
        Fallback(function=answer).call(fail, OSError())


def test_pipeline_fallback_answers_an_open_circuit(clock: FakeClock) -> None:
    """Outermost in a Pipeline: after retries fail and the breaker opens, it answers."""
    breaker = CircuitBreaker(max_failures=2, reset_timeout=30, clock=clock)
    seen: list[type[BaseException]] = []

    def answer(exc: Exception) -> str:
        seen.append(type(exc))
        return "stale"

    pipeline = Pipeline(
        fallback=Fallback(function=answer),
        retry=Retry(attempts=2, wait=False, clock=clock, retry_on=OSError),
        breaker=breaker,
        clock=clock,
    )
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        raise OSError("down")

    assert pipeline.call(flaky) == "stale"  # two attempts, the breaker opens
    assert pipeline.call(flaky) == "stale"  # refused by the open breaker
    assert (len(calls), seen) == (2, [OSError, CircuitOpenError])


@pytest.mark.anyio
async def test_pipeline_fallback_async(clock: FakeClock) -> None:
    """Pipeline.acall: the fallback answers the error that escaped the retries."""
    pipeline = Pipeline(
        fallback=Fallback(0), retry=Retry(attempts=3, wait=False, clock=clock), clock=clock
    )
    assert await pipeline.acall(afail, OSError()) == 0


def test_pipeline_refuses_a_non_fallback() -> None:
    """Pipeline(fallback=...) must be a Fallback."""
    with pytest.raises(TypeError, match="fallback must be a Fallback or None"):
        Pipeline(fallback=lambda exc: 0)  # type: ignore[arg-type]
