"""The demo's display: a status block redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

import httpx

from seawall._demo._display import Display, Snapshot
from seawall._demo._schedule import build_schedule
from seawall._demo._traffic import classify

SCHEDULE = build_schedule(10)
SNAP = Snapshot(
    elapsed=2.5,
    sent=12,
    seen={"fresh": 7, "rate_limited": 5},
    retries=3,
    breakers={"app breaker": "CLOSED", "upstream breaker": "OPEN"},
)
COUNTS = "sent 12  served 7  degraded 0  429 5  shed 503 0  open 503 0  504 0  errors 0  retries 3"
STATES = "app breaker: CLOSED  upstream breaker: OPEN"


def test_plain_mode_prints_one_status_line_per_update() -> None:
    """Without a terminal each update is one timestamped line, with no escape codes."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=False)
    display.update(SNAP)
    display.event(3.0, "something happened")
    assert out.getvalue() == f"[  2.50s] {COUNTS}  {STATES}\n[  3.00s] something happened\n"


def test_live_mode_redraws_the_block_under_events() -> None:
    """On a terminal an event erases the 3-line block, prints, and draws the block again."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True)
    display.update(SNAP)
    block = f"[########----------------------]   2.5/10 s  phase: slow\n  {COUNTS}\n  {STATES}\n"
    assert out.getvalue() == block
    display.event(2.6, "breaker tripped")
    assert out.getvalue() == block + "\x1b[3F\x1b[J[  2.60s] breaker tripped\n" + block


def test_after_finish_events_print_below_the_last_block() -> None:
    """finish() leaves the block on screen; later events are printed after it, not over it."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True)
    display.update(SNAP)
    display.finish()
    before = out.getvalue()
    display.event(9.0, "done")
    assert out.getvalue() == before + "[  9.00s] done\n"


def test_classify_reads_each_kind_of_answer() -> None:
    """Responses map to outcomes by status, the degraded flag and the problem type."""
    shed = b'{"type":"https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"}'
    cases = [
        (httpx.Response(200, json={"degraded": False}), "fresh"),
        (httpx.Response(200, json={"degraded": True}), "degraded"),
        (httpx.Response(429), "rate_limited"),
        (httpx.Response(503, content=shed), "overloaded"),
        (httpx.Response(503, content=b'{"type":"about:blank"}'), "circuit_open"),
        (httpx.Response(504), "timeout"),
        (httpx.Response(500), "error"),
    ]
    assert [classify(response) for response, _ in cases] == [want for _, want in cases]


def test_notes_from_other_threads_print_on_the_next_update() -> None:
    """A queued note is printed as an event line before the status, at the update's time."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=False)
    display.note("store file:///x is not answering")
    assert out.getvalue() == ""
    display.update(SNAP)
    assert out.getvalue() == (
        f"[  2.50s] store file:///x is not answering\n[  2.50s] {COUNTS}  {STATES}\n"
    )


def test_degraded_decisions_show_only_when_there_are_some() -> None:
    """The status line gains a store-degraded count once a policy decided without its store."""
    out = io.StringIO()
    Display(out, SCHEDULE, live=False).update(
        Snapshot(2.5, 12, SNAP.seen, 3, SNAP.breakers, degraded_decisions=4)
    )
    assert out.getvalue() == f"[  2.50s] {COUNTS}  store-degraded 4  {STATES}\n"
