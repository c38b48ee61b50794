"""A Redis store's bulkhead leases: holder ids, renewal of long holds, lost answers cancelled.

Every acquisition sends a fresh holder id. A lease lasts ``BulkheadSpec.lease`` seconds (a few)
from the Redis server's now, so a holder that vanished frees its slot within one lease period.

* **Lost answers.** When an acquisition times out or its connection drops, the script may
  still run later (Redis runs what sits in its socket when it wakes from a stall). Its holder
  id is remembered here, and the next script call on that bulkhead that reaches Redis (the
  next acquisition, or the renewer) cancels it in the same round trip: its slot goes, and a
  tombstone refuses it should it arrive only later. A release whose answer was lost is
  cancelled the same way.
* **Renewal, off the request path.** A hold that lasts longer than a third of its lease is
  renewed by one thread per store (started by the first hold, never by a constructor), which
  also sends the cancellations that no acquisition carried. Short holds, the usual case,
  cost no renewal at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..._clock import Clock
from .._base import BulkheadSpec, StoreUnavailableError

__all__ = ["LeaseBook", "Touch"]

logger = logging.getLogger("seawall.stores")

_MAX_LOST = 1024  # per bulkhead; older lost ids end with their lease anyway


@dataclass(slots=True)
class _Bulkhead:
    spec: BulkheadSpec
    live: dict[str, float] = field(default_factory=dict)  # holder -> renewed at (monotonic)
    lost: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Touch:
    """One renewal round trip: the leases to renew and the lost holders to cancel."""

    key: str
    spec: BulkheadSpec
    renew: tuple[str, ...]
    cancel: tuple[str, ...]


class LeaseBook:
    """This process's leases in one store, and the thread that renews the long ones.

    ``send`` runs one :class:`Touch` against the store (raising
    :class:`StoreUnavailableError` when it cannot).
    """

    def __init__(self, clock: Clock, send: Callable[[Touch], None]) -> None:
        self._clock = clock
        self._send = send
        self._lock = threading.Lock()
        self._bulkheads: dict[str, _Bulkhead] = {}
        self._wake = threading.Event()  # set to end the renewer's current wait
        self._closing = False
        self._thread: threading.Thread | None = None

    def _entry(self, key: str, spec: BulkheadSpec) -> _Bulkhead:
        entry = self._bulkheads.get(key)
        if entry is None or entry.spec != spec:
            old = entry
            entry = _Bulkhead(spec)
            if old is not None:
                entry.live, entry.lost = old.live, old.lost
            self._bulkheads[key] = entry
        return entry

    def take_lost(self, key: str) -> list[str]:
        """The lost holders of ``key`` to cancel with the next call (handed over: see lose)."""
        with self._lock:
            entry = self._bulkheads.get(key)
            if entry is None or not entry.lost:
                return []
            lost, entry.lost = entry.lost, []
            return lost

    def lose(self, key: str, spec: BulkheadSpec, holders: list[str]) -> None:
        """Remember holders whose answer was lost (or whose cancellation did not get through)."""
        with self._lock:
            entry = self._entry(key, spec)
            entry.lost.extend(holders)
            del entry.lost[:-_MAX_LOST]
            self._start()

    def held(self, key: str, spec: BulkheadSpec, holder: str) -> None:
        """A lease was granted to ``holder``: renew it while it is held."""
        with self._lock:
            self._entry(key, spec).live[holder] = self._clock.monotonic()
            self._start()

    def released(self, key: str, holder: str) -> None:
        """``holder`` gave its lease back: stop renewing it."""
        with self._lock:
            entry = self._bulkheads.get(key)
            if entry is not None:
                entry.live.pop(holder, None)

    def due(self) -> list[Touch]:
        """The round trips a renewal pass makes now (lost ids are handed over to them)."""
        now = self._clock.monotonic()
        touches = []
        with self._lock:
            for key, entry in self._bulkheads.items():
                period = entry.spec.lease / 3
                renew = tuple(h for h, at in entry.live.items() if now - at >= period)
                if renew or entry.lost:
                    touches.append(Touch(key, entry.spec, renew, tuple(entry.lost)))
                    entry.lost = []
        return touches

    def renew_due(self) -> None:
        """One renewal pass: renew the long holds and cancel the lost ones, per bulkhead."""
        for touch in self.due():
            renewed_at = self._clock.monotonic()
            try:
                self._send(touch)
            except (StoreUnavailableError, OSError):
                # Try again next pass; a lease that runs out meanwhile is taken again then.
                self.lose(touch.key, touch.spec, list(touch.cancel))
                continue
            except Exception as exc:  # misconfigured (a refused password...): say so, go on
                logger.warning("renewing leases of %s failed: %s", touch.spec.name, exc)
                continue
            with self._lock:
                live = self._bulkheads[touch.key].live
                for holder in touch.renew:
                    if holder in live:
                        live[holder] = renewed_at

    def _period(self) -> float:
        with self._lock:
            leases = [e.spec.lease for e in self._bulkheads.values()]
        return min(leases, default=3.0) / 3

    def _start(self) -> None:
        # Called with the lock held.
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=self._run, name="seawall-redis-leases", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                # A fresh event per wait: a fake clock signals the timeout by setting it.
                wake = self._wake = threading.Event()
            self._clock.wait_for(wake, self._period())
            with self._lock:
                if self._closing:
                    return
            self.renew_due()

    def close(self) -> None:
        """Stop the renewer (held leases then end by themselves within a lease period).

        A hold taken after this starts it again.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            self._closing = True
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            self._closing = False
