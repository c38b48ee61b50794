"""The watchdog's pure timer: when it fires, how a ping or a fresh state file re-arms it.

The driver tests (``test_watchdog.py``) run real monitor threads; these pin the decisions
themselves, exactly, so the mutation run (``tox -e mutation``) can check them in milliseconds.
"""

from __future__ import annotations

from seawall._core.watchdog import WatchdogTimer


def test_the_timer_fires_at_the_timeout_not_before() -> None:
    """Pinged at 1 with timeout 2: nothing at 2.999, fires at exactly 3 with 2.0 s idle."""
    timer = WatchdogTimer(timeout=2.0)
    assert timer.ping(1.0) is False
    assert (timer.check(2.999), timer.fired) == (None, False)
    assert (timer.check(3.0), timer.fired) == (2.0, True)


def test_a_fired_timer_fires_once_and_has_no_deadline() -> None:
    """After firing, later checks return None and deadline() is None until a ping."""
    timer = WatchdogTimer(timeout=2.0)
    assert timer.check(5.0) == 5.0
    assert (timer.check(9.0), timer.deadline()) == (None, None)


def test_a_ping_rearms_a_fired_timer_and_says_so() -> None:
    """ping() returns True only when it re-arms a fired timer, and moves the deadline."""
    timer = WatchdogTimer(timeout=2.0)
    timer.check(5.0)
    assert (timer.ping(6.0), timer.fired, timer.deadline()) == (True, False, 8.0)
    assert timer.ping(7.0) is False


def test_a_dead_watched_thing_fires_at_once() -> None:
    """check(dead=True) fires before the timeout, with the idle time so far."""
    timer = WatchdogTimer(timeout=10.0, last_ping=4.0)
    assert timer.check(5.0, dead=True) == 1.0


def test_a_fresh_state_file_rearms_and_a_stale_one_does_not() -> None:
    """observe() records the stamp; it re-arms only when now - stamp is under the timeout."""
    timer = WatchdogTimer(timeout=2.0)
    timer.check(5.0)
    timer.observe(1.0, 3.0)  # exactly the timeout old: stale
    assert (timer.last_ping, timer.fired) == (1.0, True)
    timer.observe(1.5, 3.0)  # 1.5 s old: fresh
    assert (timer.last_ping, timer.fired, timer.deadline()) == (1.5, False, 3.5)
