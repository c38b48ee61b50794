"""The engine's inline first attempt answers as :meth:`Engine.attempt` does.

``Engine.send`` and ``Engine.asend`` run a request's first attempt inline (every request
pays for it); later attempts and hedges go through ``attempt`` / ``aattempt``. Each case
here sends one request both ways, on twin transports, and compares what the caller, the
breaker, the hold-back and the inner transport saw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from seawall import CircuitBreaker, CircuitPermit
from seawall.events import add_listener
from seawall.httpx import ResilientTransport
from seawall.testing import FakeClock

Answer = Callable[[httpx.Request], httpx.Response]


def answer(status: int, headers: dict[str, str] | None = None) -> Answer:
    return lambda request: httpx.Response(status, headers=headers)


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def crash(request: httpx.Request) -> httpx.Response:
    raise ValueError("a bug in the transport")


class Permits:
    """A breaker outside the ticket protocol: every permit is seen through admit()."""

    def __init__(self, clock: FakeClock) -> None:
        self.breaker = CircuitBreaker(max_failures=3, clock=clock)
        self.settled: list[str] = []

    def admit(self) -> Any:
        return _Noted(self.breaker.admit(), self.settled)


class _Noted:
    def __init__(self, permit: CircuitPermit, settled: list[str]) -> None:
        self.permit, self.settled = permit, settled

    def success(self) -> None:
        self.settled.append("success")
        self.permit.success()

    def failure(self) -> None:
        self.settled.append("failure")
        self.permit.failure()

    def settle(self, exc: BaseException | None) -> None:
        self.settled.append(f"settle {type(exc).__name__}")
        self.permit.settle(exc)


ANSWERS = {
    "200": answer(200),
    "404": answer(404),
    "500": answer(500),
    "503 Retry-After": answer(503, {"Retry-After": "7"}),
    "429 Retry-After": answer(429, {"Retry-After": "3"}),
    "200 RateLimit spent": answer(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "4"}),
    "refused": refuse,
    "crash": crash,
}
BREAKERS = ["standard", "forced open", "one failure opens", "permits", "none"]
# The client's timeout for each request sent in turn through one transport.
CLIENT_TIMEOUTS = [(None,), (5.0,), (60.0,), (5.0, 60.0), (5.0, None), (5.0, 5.0)]
# pace=, retry_statuses= (None: the default)
RULES: dict[str, tuple[bool, set[int] | None]] = {
    "pace": (True, None),
    "defaults": (False, None),
    "only 500 retried": (False, {500}),
}


def twins(
    handler: Answer, breaker: str, rules: str, clock: FakeClock
) -> tuple[ResilientTransport, Permits | None]:
    permits = Permits(clock) if breaker == "permits" else None
    spec: Any = {"standard": "default", "permits": permits, "none": None}.get(breaker)
    if breaker == "forced open":
        spec = CircuitBreaker(clock=clock)
        spec.force_open()
    elif breaker == "one failure opens":
        # Open after the first failure; half-open (a probe) for the next request, 60 s on.
        spec = CircuitBreaker(max_failures=1, reset_timeout=5.0, clock=clock)
    pace, retry_statuses = RULES[rules]
    transport = ResilientTransport(
        httpx.MockTransport(handler),
        retry=None,
        breaker=spec,
        pace=pace,
        retry_statuses="default" if retry_statuses is None else retry_statuses,
        clock=clock,
    )
    return transport, permits


def request(client_timeout: float | None) -> httpx.Request:
    extensions = (
        {} if client_timeout is None else {"timeout": httpx.Timeout(client_timeout).as_dict()}
    )
    return httpx.Request("GET", "http://a.test/", extensions=extensions)


def seen(
    transport: ResilientTransport,
    permits: Permits | None,
    sent: httpx.Request,
    outcome: object,
) -> tuple[object, ...]:
    origin = transport._host(sent).origin
    breaker: Any = origin.breaker
    stats = breaker.stats if isinstance(breaker, CircuitBreaker) else None
    return (
        outcome,
        stats,
        None if permits is None else (permits.settled, permits.breaker.stats),
        origin.held_until,
        sent.extensions.get("timeout"),
    )


def run_sync(
    handler: Answer, breaker: str, rules: str, timeouts: tuple[float | None, ...], inline: bool
) -> list[tuple[object, ...]]:
    clock = FakeClock()
    transport, permits = twins(handler, breaker, rules, clock)
    engine = transport._engine
    attempt = None if inline else engine.attempt
    outcomes = []
    for client_timeout in timeouts:
        sent = request(client_timeout)
        origin = transport._host(sent).origin
        try:
            outcome: object = engine.send(origin, sent, transport._settings, attempt).status_code
        except Exception as exc:
            outcome = type(exc)
        outcomes.append(seen(transport, permits, sent, outcome))
        clock.advance(60)  # past any hold-back: the next request starts fresh
    return outcomes


async def run_async(
    handler: Answer, breaker: str, rules: str, timeouts: tuple[float | None, ...], inline: bool
) -> list[tuple[object, ...]]:
    clock = FakeClock()
    transport, permits = twins(handler, breaker, rules, clock)
    engine = transport._engine
    attempt = None if inline else engine.aattempt
    outcomes = []
    for client_timeout in timeouts:
        sent = request(client_timeout)
        origin = transport._host(sent).origin
        try:
            response = await engine.asend(origin, sent, transport._settings, attempt)
            outcome: object = response.status_code
        except Exception as exc:
            outcome = type(exc)
        outcomes.append(seen(transport, permits, sent, outcome))
        clock.advance(60)
    return outcomes


@pytest.mark.parametrize("timeouts", CLIENT_TIMEOUTS)
@pytest.mark.parametrize("rules", list(RULES))
@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_inline_first_attempt_answers_as_attempt_does(
    name: str, breaker: str, rules: str, timeouts: tuple[float | None, ...]
) -> None:
    """Each request's inline first attempt leaves what attempt() leaves, request after request."""
    handler = ANSWERS[name]
    inline = run_sync(handler, breaker, rules, timeouts, inline=True)
    assert inline == run_sync(handler, breaker, rules, timeouts, inline=False)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("timeouts", CLIENT_TIMEOUTS)
@pytest.mark.parametrize("rules", list(RULES))
@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_inline_first_async_attempt_answers_as_aattempt_does(
    name: str, breaker: str, rules: str, timeouts: tuple[float | None, ...], backend: str
) -> None:
    """Each request's inline first async attempt leaves what aattempt() leaves, in turn."""
    handler = ANSWERS[name]
    inline = anyio.run(run_async, handler, breaker, rules, timeouts, True, backend=backend)
    assert inline == anyio.run(run_async, handler, breaker, rules, timeouts, False, backend=backend)


# A time window at its quorum from the third request: (seconds waited before, status) in turn,
# across buckets (3 s wide), with failures among the successes and a bucket left empty.
WINDOW_RUN = [(0, 200), (0, 200), (0, 200), (0.5, 200), (0.5, 500), (1, 200), (2, 200), (0, 200)]
WINDOW_RUN += [(3, 200), (0, 404), (0, 500), (0, 500), (7, 200), (0, 200), (29, 200), (0, 200)]


def window_twin(clock: FakeClock) -> tuple[ResilientTransport, CircuitBreaker]:
    """A transport whose upstream answers WINDOW_RUN's statuses in turn, and its breaker."""
    statuses = iter([status for _, status in WINDOW_RUN])
    breaker = CircuitBreaker(
        failure_rate_threshold=0.5, minimum_calls=3, window_duration=30, clock=clock
    )
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(next(statuses))),
        retry=None,
        breaker=breaker,
        clock=clock,
    )
    return transport, breaker


def window_seen(breaker: CircuitBreaker, outcome: object) -> tuple[object, ...]:
    stats = breaker.stats  # hands the successes counted without the lock to the core first
    state = breaker._state
    buckets = [tuple(bucket) for bucket in state.buckets]
    return outcome, stats, buckets, state.quorum_bucket, state.window_quorum


def window_run_sync(observed: bool, inline: bool) -> tuple[list[tuple[object, ...]], list[Any]]:
    clock = FakeClock()
    transport, breaker = window_twin(clock)
    engine = transport._engine
    outcomes, events = [], []
    with add_listener(events.append) if observed else contextlib.nullcontext():
        for wait, _ in WINDOW_RUN:
            clock.advance(wait)
            sent = request(None)
            origin = transport._host(sent).origin
            attempt = None if inline else engine.attempt
            try:
                outcome: object = engine.send(origin, sent, transport._settings, attempt)
                outcome = outcome.status_code  # type: ignore[attr-defined]
            except Exception as exc:
                outcome = type(exc)
            outcomes.append(window_seen(breaker, outcome))
    return outcomes, events


async def window_run_async(
    observed: bool, inline: bool
) -> tuple[list[tuple[object, ...]], list[Any]]:
    clock = FakeClock()
    transport, breaker = window_twin(clock)
    engine = transport._engine
    outcomes, events = [], []
    with add_listener(events.append) if observed else contextlib.nullcontext():
        for wait, _ in WINDOW_RUN:
            clock.advance(wait)
            sent = request(None)
            origin = transport._host(sent).origin
            attempt = None if inline else engine.aattempt
            try:
                response = await engine.asend(origin, sent, transport._settings, attempt)
                outcome: object = response.status_code
            except Exception as exc:
                outcome = type(exc)
            outcomes.append(window_seen(breaker, outcome))
    return outcomes, events


@pytest.mark.parametrize("observed", [False, True])
def test_a_success_counted_inline_counts_as_succeeded_does(observed: bool) -> None:
    """A time window's successes counted inline leave the breaker as _succeeded leaves it."""
    inline = window_run_sync(observed, inline=True)
    assert inline == window_run_sync(observed, inline=False)
    outcomes, _ = inline
    assert outcomes[-1][0] == 200
    assert [o[3] is not None for o in outcomes].count(True) >= 6  # the inline case was taken


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("observed", [False, True])
def test_an_async_success_counted_inline_counts_as_succeeded_does(
    observed: bool, backend: str
) -> None:
    """A time window's async successes counted inline leave the breaker as _succeeded does."""
    inline = anyio.run(window_run_async, observed, True, backend=backend)
    assert inline == anyio.run(window_run_async, observed, False, backend=backend)
    outcomes, _ = inline
    assert [o[3] is not None for o in outcomes].count(True) >= 6
