"""The demo's display: a status block redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re

import httpx
import pytest

from seawall._cli.demo._display import Display, Snapshot, pack
from seawall._cli.demo._schedule import build_schedule
from seawall._cli.demo._traffic import classify, group_of

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
    """On a wide terminal an event erases the 3-line block, prints, and draws the block again."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True, width=200)
    display.update(SNAP)
    block = f"[########----------------------]   2.5/10 s  phase: slow\n  {COUNTS}\n  {STATES}\n"
    assert out.getvalue() == block
    display.event(2.6, "breaker tripped")
    assert out.getvalue() == block + "\x1b[3F\x1b[J[  2.60s] breaker tripped\n" + block


def test_after_finish_events_print_below_the_last_block() -> None:
    """finish() leaves the block on screen; later events are printed after it, not over it."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True, width=200)
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


ESCAPE = re.compile(r"\x1b\[(\d*)([A-Za-z])")


class Terminal:
    """A terminal screen of ``width`` columns, enough of one to replay the demo's output.

    Printing past the last column wraps onto a new row (xterm's deferred wrap: a line that
    fills the row exactly does not take a second one); ``ESC[nF`` moves to the start of the
    row n up, ``ESC[J`` erases from the cursor to the end of the screen.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[str] = [""]
        self.row = 0
        self._col = 0

    def feed(self, text: str) -> None:
        at = 0
        for match in ESCAPE.finditer(text):
            self._print(text[at : match.start()])
            count, command = int(match[1] or 1), match[2]
            if command == "F":
                self.row = max(0, self.row - count)
                self._col = 0
            elif command == "J":
                del self.rows[self.row + 1 :]
                self.rows[self.row] = self.rows[self.row][: self._col]
            at = match.end()
        self._print(text[at:])

    def _print(self, text: str) -> None:
        for char in text:
            if char == "\n":
                self._next_row()
            else:
                if self._col == self.width:  # deferred wrap: only when one more char comes
                    self._next_row()
                self.rows[self.row] += char
                self._col += 1

    def _next_row(self) -> None:
        self.row += 1
        self._col = 0
        if self.row == len(self.rows):
            self.rows.append("")

    def screen(self) -> list[str]:
        """The rows printed so far (the cursor's empty last row left out)."""
        return self.rows[:-1] if self.rows[-1] == "" else self.rows


BUSY = Snapshot(
    elapsed=17.25,
    sent=123_456,
    seen={
        "fresh": 45_678,
        "degraded": 1_234,
        "rate_limited": 67_890,
        "overloaded": 2_345,
        "circuit_open": 3_456,
        "timeout": 4_567,
        "error": 0,
    },
    retries=98_765,
    breakers={"app breaker": "HALF_OPEN", "upstream breaker": "HALF_OPEN"},
    degraded_decisions=4_321,
)
LONG_EVENT = (
    "breaker demo-upstream: CLOSED -> OPEN (tripped) after four failed calls in a row, "
    "while the flash crowd was still waiting for slots and the greedy client kept asking"
)


@pytest.mark.parametrize("width", [80, 100, 200])
def test_every_live_line_fits_the_terminal(width: int) -> None:
    """Each line of the block and of a long event is shorter than the terminal's width."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True, width=width)
    display.update(BUSY)
    display.event(17.3, LONG_EVENT)
    lines = ESCAPE.sub("", out.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= width - 1


@pytest.mark.parametrize("width", [80, 100, 200])
def test_each_redraw_moves_up_exactly_the_lines_it_printed(width: int) -> None:
    """Every erase moves the cursor up by the number of lines the previous draw printed."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True, width=width)
    printed: list[int] = []
    for n in range(5):
        before = len(out.getvalue())
        display.update(
            Snapshot(
                BUSY.elapsed + n,
                BUSY.sent + n,
                BUSY.seen,
                BUSY.retries,
                BUSY.breakers,
                BUSY.degraded_decisions,
            )
        )
        written = out.getvalue()[before:]
        moves = [int(m[1]) for m in ESCAPE.finditer(written) if m[2] == "F"]
        assert moves == ([] if n == 0 else [printed[-1]])
        printed.append(ESCAPE.sub("", written).count("\n"))
    assert printed[0] == len(display.block(BUSY))


@pytest.mark.parametrize("width", [80, 100, 200])
def test_redraws_leave_no_stale_rows_on_a_real_width_screen(width: int) -> None:
    """Replayed on a screen that wide, redraws and events leave the events and one block."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=True, width=width)
    for n in range(10):
        if n in (3, 7):
            display.event(BUSY.elapsed, LONG_EVENT)
        display.update(BUSY)
    terminal = Terminal(width)
    terminal.feed(out.getvalue())
    alone = io.StringIO()
    Display(alone, SCHEDULE, live=True, width=width).event(BUSY.elapsed, LONG_EVENT)
    event_rows = alone.getvalue().splitlines()
    assert terminal.screen() == [*event_rows, *event_rows, *display.block(BUSY)]


def test_counts_reflow_onto_more_lines_on_a_narrow_terminal() -> None:
    """At 80 columns the counts take two lines, split between parts, never inside one."""
    out = io.StringIO()
    Display(out, SCHEDULE, live=True, width=80).update(BUSY)
    assert out.getvalue().splitlines()[1:] == [
        "  sent 123456  served 45678  degraded 1234  429 67890  shed 503 2345",
        "  open 503 3456  504 4567  errors 0  retries 98765  store-degraded 4321",
        "  app breaker: HALF_OPEN  upstream breaker: HALF_OPEN",
    ]


def test_pack_joins_parts_and_cuts_a_part_too_long_for_any_line() -> None:
    """pack() fills lines up to the limit and cuts an overlong part with '...'."""
    assert pack(["aaaa", "bbbb", "cccc", "d" * 20], 14) == [
        "  aaaa  bbbb",
        "  cccc",
        "  ddddddddd...",
    ]


def test_progress_bar_narrows_on_a_narrow_terminal() -> None:
    """Below the bar's full width the progress line keeps its numbers and shrinks the bar."""
    out = io.StringIO()
    Display(out, SCHEDULE, live=True, width=45).update(SNAP)
    assert out.getvalue().splitlines()[0] == "[####--------------]   2.5/10 s  phase: slow"


def test_a_phase_opens_with_what_it_shows_and_closes_with_its_counts() -> None:
    """begin_phase prints the phase's description; the next one recaps what finished, by outcome."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=False)
    healthy, slow = SCHEDULE.phases[0], SCHEDULE.phases[1]
    start = Snapshot(0.0, 0, {}, 0, {}, groups={})
    end = Snapshot(
        1.0,
        30,
        {},
        0,
        {},
        groups={("steady", "fresh"): 10, ("greedy", "fresh"): 2, ("greedy", "rate_limited"): 18},
    )
    display.begin_phase(healthy, start)
    display.begin_phase(slow, end)
    assert out.getvalue().splitlines() == [
        f"[  0.00s] phase healthy: {healthy.description}",
        "[  1.00s] end of healthy: 30 requests finished: served 12, 429 18 "
        "(all 429s went to the greedy client, which asks over its limit on purpose)",
        f"[  1.00s] phase slow: {slow.description}",
    ]


def test_a_recap_counts_only_the_phase_and_says_how_many_429s_were_the_greedy_clients() -> None:
    """A recap subtracts the counts at the phase's start and names the greedy client's share."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=False)
    slow = SCHEDULE.phases[1]
    display.begin_phase(slow, Snapshot(1.0, 0, {}, 0, {}, groups={("greedy", "rate_limited"): 5}))
    out.truncate(0)
    out.seek(0)
    display.end_phase(
        Snapshot(
            3.5,
            0,
            {},
            0,
            {},
            groups={
                ("greedy", "rate_limited"): 9,
                ("crowd", "rate_limited"): 1,
                ("crowd", "overloaded"): 16,
                ("crowd", "fresh"): 8,
            },
        )
    )
    display.end_phase(Snapshot(4.0, 0, {}, 0, {}))  # no phase in progress: nothing
    assert out.getvalue() == (
        "[  3.50s] end of slow: 29 requests finished: served 8, 429 5, shed 503 16 "
        "(4 of the 429s went to the greedy client, which asks over its limit on purpose)\n"
    )


def test_only_the_first_recap_explains_the_greedy_clients_429s() -> None:
    """The reason for the greedy client's 429s is given once; later recaps just count them."""
    out = io.StringIO()
    display = Display(out, SCHEDULE, live=False)
    healthy, slow, burst = SCHEDULE.phases[:3]
    tallies = [{("greedy", "rate_limited"): n} for n in (0, 3, 7)]
    for n, phase in enumerate((healthy, slow, burst)):
        display.begin_phase(phase, Snapshot(float(n), 0, {}, 0, {}, groups=tallies[n]))
    recaps = [line for line in out.getvalue().splitlines() if "end of" in line]
    assert recaps == [
        "[  1.00s] end of healthy: 3 requests finished: 429 3 "
        "(all 429s went to the greedy client, which asks over its limit on purpose)",
        "[  2.00s] end of slow: 4 requests finished: 429 4 (all 429s went to the greedy client)",
    ]


def test_phase_texts_quote_the_services_real_settings() -> None:
    """The phase descriptions state the limits the service really applies."""
    from seawall._cli.demo import _service, _traffic
    from seawall._cli.demo._schedule import REQUEST_TIMEOUT, SLOW_LATENCY, STALL_LATENCY

    text = {p.name: p.description for p in SCHEDULE.phases}
    assert (
        f"limit of {_service.PER_CLIENT_LIMIT.split('/')[0]} requests a second" in text["healthy"]
    )
    assert f"{_traffic.STEADY_CLIENTS} steady clients" in text["healthy"]
    assert f"({SLOW_LATENCY:g} s a quote)" in text["slow"]
    assert f"{_traffic.CROWD} clients" in text["slow"]
    assert f"{_service.MAX_CONCURRENT} requests fit the bulkhead" in text["slow"]
    assert f"({_service.MAX_BLOCK:g} s at most)" in text["429"]
    assert f"({STALL_LATENCY:g} s)" in text["stalled"]
    assert f"{REQUEST_TIMEOUT:g} s request timeout" in text["stalled"]


def test_clients_are_grouped_by_name() -> None:
    """client-N are steady, greedy is greedy, crowd-N are the flash crowd."""
    assert [group_of(n) for n in ("client-3", "greedy", "crowd-17")] == [
        "steady",
        "greedy",
        "crowd",
    ]
