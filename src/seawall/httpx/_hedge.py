"""Hedging: when an attempt has not answered after a delay, send another one beside it.

Theory of operation. The first attempt starts at once. Whenever ``delay`` passes with no
outcome, or an attempt ends with an outcome that is not acceptable (an error, or a status the
transport would retry), one more attempt starts, up to ``1 + extra`` attempts in all. The
first acceptable response wins: the attempts still running are cancelled (async) or
abandoned (sync), and every other response is closed, those that arrive later included.
When every attempt ends without an acceptable outcome, the last one to end is the result
(so the retry layer around hedging sees it as one attempt).

Each attempt is a full attempt of the engine: it passes the hold-back, the limiter and the
breaker, and counts with the breaker. The first attempt runs under the request's bulkhead
slot; each extra attempt takes a slot of its own (no queueing: a full bulkhead means no
hedge) and gives it back when it ends. A cancelled attempt is neutral for the breaker.

Sync requests run every attempt in a daemon worker thread (Python cannot cancel a thread): an
abandoned attempt runs to its end, and then its response is closed and its slot released.
Waits use the transport's clock, so a :class:`~seawall.testing.FakeClock` drives them.
"""

from __future__ import annotations

import threading

import anyio
import httpx

from .._clock import Clock
from .._errors import BulkheadFullError
from ._engine import Engine, Origin, SlotLease
from ._standard import Settings

__all__ = ["ahedged", "hedged"]

Outcome = httpx.Response | Exception


class _Race:
    """The bookkeeping of one hedged call (shared by the sync and async drivers)."""

    __slots__ = ("chosen", "extra", "last", "launched", "outcomes", "seen", "skipped")

    def __init__(self, extra: int) -> None:
        self.extra = extra
        self.launched = 0
        self.skipped = 0  # hedges that found the bulkhead full and never ran
        self.seen = 0
        self.outcomes: list[Outcome] = []
        self.last: Outcome | None = None
        self.chosen: Outcome | None = None

    def can_launch(self) -> bool:
        return self.launched <= self.extra

    def next_step(self, engine: Engine) -> str:
        """``"done"``, ``"launch"`` or ``"wait"``, after looking at the new outcomes."""
        while self.seen < len(self.outcomes):
            outcome = self.last = self.outcomes[self.seen]
            self.seen += 1
            if engine.acceptable(outcome):
                self.chosen = outcome
                return "done"
            if self.can_launch():
                return "launch"
        ended = self.seen + self.skipped == self.launched
        if self.last is not None and ended and not self.can_launch():
            self.chosen = self.last  # every attempt has ended, none acceptably
            return "done"
        return "wait"

    def losers(self) -> list[httpx.Response]:
        return [o for o in self.outcomes if isinstance(o, httpx.Response) and o is not self.chosen]

    def result(self) -> httpx.Response:
        chosen = self.chosen
        if isinstance(chosen, Exception):
            raise chosen
        assert chosen is not None
        return chosen


async def ahedged(
    engine: Engine,
    origin: Origin,
    request: httpx.Request,
    settings: Settings,
    deadline_at: float | None,
) -> httpx.Response:
    """One hedged attempt group (asyncio or trio)."""
    assert settings.hedge_delay is not None
    clock: Clock = engine.clock
    race = _Race(settings.max_hedged)
    changed = [anyio.Event()]

    async def one(first: bool) -> None:
        bulkhead = None if first else origin.bulkhead
        if bulkhead is not None:
            try:
                await bulkhead.acquire_async(timeout=0.0)
            except BulkheadFullError:
                race.skipped += 1  # no slot, no hedge (the bulkhead counted the refusal)
                changed[0].set()
                return
        try:
            outcome: Outcome = await engine.aattempt(origin, request, settings, deadline_at)
        except Exception as exc:
            outcome = exc
        finally:
            if bulkhead is not None:
                with anyio.CancelScope(shield=True):
                    await bulkhead.arelease()
        race.outcomes.append(outcome)
        changed[0].set()

    async with anyio.create_task_group() as tg:
        while True:
            step = "launch" if race.launched == 0 else race.next_step(engine)
            if step == "done":
                tg.cancel_scope.cancel()
                break
            if step == "launch":
                tg.start_soon(one, race.launched == 0)
                race.launched += 1
                continue
            changed[0] = anyio.Event()
            delay = settings.hedge_delay if race.can_launch() else None
            if not await clock.await_event(changed[0], delay) and race.can_launch():
                tg.start_soon(one, False)
                race.launched += 1
    with anyio.CancelScope(shield=True):
        for response in race.losers():
            await response.aclose()
    return race.result()


def hedged(
    engine: Engine,
    origin: Origin,
    request: httpx.Request,
    settings: Settings,
    deadline_at: float | None,
    lease: SlotLease,
) -> httpx.Response:
    """One hedged attempt group (sync: each attempt in a worker thread).

    The first attempt uses the request's bulkhead slot; if it is abandoned still running,
    ``lease.kept`` is set and its thread releases that slot when it ends.
    """
    assert settings.hedge_delay is not None
    clock: Clock = engine.clock
    race = _Race(settings.max_hedged)
    lock = threading.Lock()
    changed = threading.Event()
    state = {"finished": False, "first_running": True}

    def one(first: bool) -> None:
        bulkhead = None if first else origin.bulkhead
        if bulkhead is not None:
            try:
                bulkhead.acquire(timeout=0.0)
            except BulkheadFullError:
                with lock:
                    race.skipped += 1  # no slot, no hedge (the bulkhead counted the refusal)
                    changed.set()
                return
        try:
            outcome: Outcome = engine.attempt(origin, request, settings, deadline_at)
        except Exception as exc:
            outcome = exc
        finally:
            if bulkhead is not None:
                bulkhead.release()
        with lock:
            late = state["finished"]
            if first:
                state["first_running"] = False
            if not late:
                race.outcomes.append(outcome)
                changed.set()
        if late:
            if first and lease.kept and origin.bulkhead is not None:
                origin.bulkhead.release()  # the request's slot, handed over at its end
            if isinstance(outcome, httpx.Response):
                outcome.close()  # the race is over: nobody will read it

    def launch() -> None:
        first = race.launched == 0
        race.launched += 1
        threading.Thread(target=one, args=(first,), name="seawall-hedge", daemon=True).start()

    launch()
    while True:
        with lock:
            step = race.next_step(engine)
            if step == "done":
                state["finished"] = True
                lease.kept = state["first_running"]

                break
            changed.clear()
            seen = (len(race.outcomes), race.skipped)
        if step == "launch":
            launch()
            continue
        clock.wait_for(changed, settings.hedge_delay if race.can_launch() else None)
        with lock:
            # Nothing new after the wait: the delay passed (a fake clock sets the event too).
            quiet = seen == (len(race.outcomes), race.skipped)
        if quiet and race.can_launch():
            launch()
    for response in race.losers():
        response.close()
    return race.result()
