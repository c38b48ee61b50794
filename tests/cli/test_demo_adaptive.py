"""`seawall demo --adaptive`: a limit learned from latency, shedding by priority, for real."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import anyio
import pytest

from _demo_runs import interrupt_demo, summary
from _paths import ROOT
from seawall._cli.demo import summary_lines
from seawall._cli.demo._adaptive import (
    BULKHEAD_NAME,
    INITIAL_LIMIT,
    PRIORITY,
    QUOTE_TIME,
    ROUTES,
    UPSTREAM_WORKERS,
    AdaptiveWatch,
)
from seawall._cli.demo._display import AdaptiveStatus, Display, Snapshot
from seawall._cli.demo._run import DemoResult, run
from seawall._cli.demo._schedule import build_adaptive_schedule
from seawall._cli.demo._traffic import OUTCOMES
from seawall._cli.main import main
from seawall.events import AdaptiveBulkheadChanged, Rejected

PRIORITIES = ("critical", "default", "sheddable")
#: The summary rows of an --adaptive run, in order.
ROWS = [
    "requests sent",
    "served",
    "503 shed (adaptive limit)",
    "504 timeout",
    "errors",
    "critical shed",
    "default shed",
    "sheddable shed",
    "lowest limit",
    "highest limit",
    "upstream responses",
    "shutdown callbacks run",
]
STATUS = re.compile(
    r"^\[ *([\d.]+)s\] sent (\d+)  served (\d+)  shed 503 (\d+)  504 (\d+)  errors (\d+)  "
    r"limit (\d+|-)  in flight (\d+)  "
    r"shed critical (\d+)  shed default (\d+)  shed sheddable (\d+)$",
    re.MULTILINE,
)


def check_summary(text: str) -> dict[str, int]:
    """Assert what every complete --adaptive run must show, and return the summary rows."""
    rows = summary(text)
    assert list(rows) == ROWS
    outcomes = ("served", "503 shed (adaptive limit)", "504 timeout", "errors")
    assert sum(rows[r] for r in outcomes) == rows["requests sent"]
    assert sum(rows[f"{p} shed"] for p in PRIORITIES) == rows["503 shed (adaptive limit)"]
    assert rows["errors"] == 0
    assert rows["sheddable shed"] > 0  # the overload phase always sheds batch work
    assert rows["sheddable shed"] >= rows["default shed"] >= rows["critical shed"]
    assert rows["lowest limit"] < INITIAL_LIMIT <= rows["highest limit"]
    assert rows["shutdown callbacks run"] == 2
    seen = ", ".join(f"{p} {rows[f'{p} shed']}" for p in PRIORITIES)
    assert f"shed 503s the clients got, by priority: {seen}\n" in text
    assert f"adaptive limit: {INITIAL_LIMIT} at the start, " in text
    assert text.endswith("every request accounted for, service and clients agree: yes\n")
    return rows


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def adaptive_run(request: pytest.FixtureRequest) -> tuple[DemoResult, str]:
    """One 5 s --adaptive run in this process, per backend; its result and its whole output."""
    out = io.StringIO()

    async def go() -> DemoResult:
        return await run(out, duration=5, store=None, seed=1, live=False, adaptive=True)

    result = anyio.run(go, backend=request.param)
    return result, out.getvalue() + "\n".join(summary_lines(result)) + "\n"


@pytest.mark.slow
def test_adaptive_run_accounts_for_every_request(adaptive_run: tuple[DemoResult, str]) -> None:
    """Each request lands in one outcome; the service's tallies and events equal the clients'."""
    result, _ = adaptive_run
    assert set(result.seen) == set(OUTCOMES)
    assert sum(result.seen.values()) == result.sent
    assert result.seen["error"] == 0
    assert {k: v for k, v in result.seen.items() if v} == {
        k: v for k, v in result.served.items() if v
    }
    assert result.adaptive is not None
    assert dict(result.adaptive.shed) == {p: n for p, n in result.shed_seen.items() if n}
    assert sum(result.shed_seen.values()) == result.seen["overloaded"]
    assert result.consistent


@pytest.mark.slow
def test_adaptive_run_sheds_by_priority_and_moves_the_limit(
    adaptive_run: tuple[DemoResult, str],
) -> None:
    """Overload sheds batch work first and pulls the limit below its start; it ends idle."""
    result, text = adaptive_run
    status = result.adaptive
    assert status is not None
    shed = [status.shed.get(p, 0) for p in PRIORITIES]
    assert shed[2] > 0
    assert shed[2] >= shed[1] >= shed[0]
    assert status.first == INITIAL_LIMIT  # the first event comes before any window closes
    assert status.lowest is not None
    assert status.lowest < INITIAL_LIMIT
    assert status.in_flight == 0
    assert set(result.upstream) == {200}  # the upstream never fails: it only slows down
    if not result.seen["timeout"]:  # (a request timed out may still get its quote, unused)
        assert result.upstream[200] == result.seen["fresh"]
    assert result.shutdown_ran == ["close-upstream-client", "report"]
    assert result.transitions == []
    assert result.final_states == {}
    check_summary(text)


@pytest.mark.slow
def test_adaptive_phases_are_opened_and_recapped_with_the_limit(
    adaptive_run: tuple[DemoResult, str],
) -> None:
    """Each phase opens, then recaps its sheds by priority and how far the limit moved."""
    _, text = adaptive_run
    told = re.findall(r"^\[ *[\d.]+s\] (phase \w+|end of \w+):", text, re.MULTILINE)
    names = ["steady", "overload", "recovered"]
    assert told == [line for name in names for line in (f"phase {name}", f"end of {name}")]
    overload = re.search(r"end of overload: .*$", text, re.MULTILINE)
    assert overload is not None
    assert re.search(
        r"\(shed by priority: critical \d+ of \d+, default \d+ of \d+, sheddable [1-9]\d* of \d+\)"
        r"; the adaptive limit went from \d+ to \d+$",
        overload[0],
    )
    assert re.search(rf"end of steady: .*; the adaptive limit went from {INITIAL_LIMIT} to", text)
    assert "\x1b[" not in text


@pytest.mark.slow
def test_every_second_shows_the_limit_in_flight_and_sheds_by_priority(
    adaptive_run: tuple[DemoResult, str],
) -> None:
    """Each second's status line has the limit, in-flight and sheds; the last equals the summary."""
    _, text = adaptive_run
    lines = STATUS.findall(text)
    assert len(lines) >= 6  # 5 s, one a second, plus the last one
    last = lines[-1]
    rows = summary(text)
    assert [int(n) for n in last[1:6]] == [
        rows["requests sent"],
        rows["served"],
        rows["503 shed (adaptive limit)"],
        rows["504 timeout"],
        rows["errors"],
    ]
    assert [int(n) for n in last[8:]] == [rows[f"{p} shed"] for p in PRIORITIES]
    for column in (1, 2, 3, 8, 9, 10):  # running totals never go down
        totals = [int(line[column]) for line in lines]
        assert totals == sorted(totals)


@pytest.mark.slow
def test_docs_adaptive_summary_has_the_rows_a_run_prints(
    adaptive_run: tuple[DemoResult, str],
) -> None:
    """docs/cli.md's --adaptive summary example has exactly the lines a real run's has."""
    result, _ = adaptive_run
    page = (ROOT / "docs" / "cli.md").read_text("utf-8")
    section = page.split("### `seawall demo --adaptive`\n", 1)[1]
    shown = section.split("```text\n== summary ==\n", 1)[1].split("```", 1)[0]
    real = "\n".join(summary_lines(result)[2:]) + "\n"
    assert re.sub(r"\d+", "N", shown) == re.sub(r"\d+", "N", real)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m seawall demo --adaptive *args`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "seawall", "demo", "--adaptive", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_adaptive_command_exits_zero_from_a_real_process() -> None:
    """`python -m seawall demo --adaptive --duration 5` exits 0 with a consistent summary."""
    done = run_command("--duration", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "seawall demo --adaptive: 5 s, adaptive concurrency limit in one process\n"
    )
    check_summary(done.stdout)


@pytest.mark.slow
def test_ctrl_c_during_the_overload_still_shuts_down_and_sums_up() -> None:
    """Ctrl-C while the crowd is in: arrivals stop, requests finish, the books balance, 130."""
    run = interrupt_demo(["demo", "--adaptive", "--duration", "40"], "crowd: ", "its crowd arrived")
    assert run.returncode == 130
    assert re.fullmatch(r"seawall demo: interrupted after \d+\.\d s of traffic\n", run.err)
    rows = summary(run.out)
    outcomes = ("served", "503 shed (adaptive limit)", "504 timeout", "errors")
    assert sum(rows[r] for r in outcomes) == rows["requests sent"]
    assert rows["errors"] == 0
    assert rows["shutdown callbacks run"] == 2
    assert "crowd: thins out" not in run.out  # no arrivals after Ctrl-C: the overload never ended
    assert "service and clients agree: yes" in run.out


@pytest.mark.parametrize("workers", ["2", "3"])
def test_adaptive_with_workers_is_refused(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--adaptive --workers N (N > 1) exits 2 with one line naming both options, running nothing."""
    assert main(["demo", "--adaptive", "--workers", workers]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "seawall demo: --adaptive runs the service in one process (each process learns its "
        f"own limit): it cannot be used with --workers {workers}\n"
    )


def test_adaptive_with_a_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--adaptive --store URL exits 2 without echoing the URL (it may carry a password)."""
    assert main(["demo", "--adaptive", "--store", "redis://:secret@localhost:6379/0"]) == 2
    assert capsys.readouterr().err == (
        "seawall demo: --adaptive keeps its state in the process: it cannot be used with --store\n"
    )


def test_the_watch_reads_only_its_bulkheads_events() -> None:
    """AdaptiveWatch keeps the last limit and in-flight, the range, and sheds by priority."""
    watch = AdaptiveWatch("demo-adaptive")
    assert watch.status() == AdaptiveStatus(None, 0, {}, None, None, None)
    for limit, in_flight in ((20, 1), (17, 9), (12, 12), (15, 3)):
        watch(AdaptiveBulkheadChanged("demo-adaptive", limit, in_flight))
    watch(AdaptiveBulkheadChanged("other", 1, 99))
    for reason in ("shed_sheddable", "shed_sheddable", "shed_default"):
        watch(Rejected("bulkhead", "demo-adaptive", reason, 1.0))
    watch(Rejected("bulkhead", "other", "shed_critical", 1.0))
    watch(Rejected("limiter", "demo-adaptive", "rate_limited", 1.0))
    assert watch.status() == AdaptiveStatus(
        15, 3, {"sheddable": 2, "default": 1}, lowest=12, highest=20, first=20
    )


SNAP = Snapshot(
    elapsed=4.0,
    sent=300,
    seen={"fresh": 200, "overloaded": 100},
    retries=0,
    breakers={},
    adaptive=AdaptiveStatus(13, 11, {"default": 9, "sheddable": 91}, 12, 21, 20),
)
LINE = (
    "sent 300  served 200  shed 503 100  504 0  errors 0  "
    "limit 13  in flight 11  shed critical 0  shed default 9  shed sheddable 91"
)


def test_plain_status_line_of_an_adaptive_run() -> None:
    """Without a terminal, an --adaptive status line gives its outcomes, limit and sheds."""
    out = io.StringIO()
    Display(out, build_adaptive_schedule(10), live=False).update(SNAP)
    assert out.getvalue() == f"[  4.00s] {LINE}\n"


def test_live_block_of_an_adaptive_run() -> None:
    """On a terminal the block has the progress bar, the outcomes, then the limit and sheds."""
    out = io.StringIO()
    Display(out, build_adaptive_schedule(10), live=True, width=200).update(SNAP)
    outcomes, limit = LINE.split("  limit")
    assert out.getvalue() == (
        "[############------------------]   4.0/10 s  phase: overload\n"
        f"  {outcomes}\n  limit{limit}\n"
    )


def test_a_recap_gives_sheds_by_priority_and_the_limits_move() -> None:
    """An --adaptive recap counts sheds of each priority among its requests, and the limit."""
    out = io.StringIO()
    display = Display(out, build_adaptive_schedule(10), live=False)
    steady, overload = build_adaptive_schedule(10).phases[:2]
    start = AdaptiveStatus(None, 0, {})
    display.begin_phase(steady, Snapshot(0.0, 0, {}, 0, {}, adaptive=start))
    groups = {("critical", "fresh"): 5, ("default", "fresh"): 30, ("sheddable", "fresh"): 10}
    middle = AdaptiveStatus(21, 4, {}, 20, 21, 20)
    display.begin_phase(overload, Snapshot(2.5, 0, {}, 0, {}, groups=groups, adaptive=middle))
    groups = {
        **groups,
        ("critical", "fresh"): 9,
        ("default", "overloaded"): 7,
        ("sheddable", "overloaded"): 80,
    }
    end = AdaptiveStatus(13, 10, {"default": 7, "sheddable": 80}, 12, 21, 20)
    display.end_phase(Snapshot(7.0, 0, {}, 0, {}, groups=groups, adaptive=end))
    recaps = [line for line in out.getvalue().splitlines() if "end of" in line]
    assert recaps == [
        "[  2.50s] end of steady: 45 requests finished: served 45; "
        "the adaptive limit went from 20 to 21",
        "[  7.00s] end of overload: 91 requests finished: served 4, shed 503 87 "
        "(shed by priority: critical 0 of 4, default 7 of 7, sheddable 80 of 80); "
        "the adaptive limit went from 21 to 13",
    ]


def test_adaptive_schedule_tiles_the_run() -> None:
    """steady (a quarter, at least 2 s), overload, recovered (30%) cover the run exactly."""
    for duration, steady in ((5.0, 2.0), (10.0, 2.5), (24.0, 6.0), (55.0, 13.75)):
        phases = build_adaptive_schedule(duration).phases
        assert [(p.name, p.start, p.end) for p in phases] == [
            ("steady", 0.0, steady),
            ("overload", steady, pytest.approx(0.7 * duration)),
            ("recovered", pytest.approx(0.7 * duration), duration),
        ]
    with pytest.raises(ValueError, match="duration must be between 5 and 55 seconds"):
        build_adaptive_schedule(4.0)


def test_adaptive_phase_texts_quote_the_real_settings() -> None:
    """The phase descriptions state the upstream, clients, crowd and shares the run really has."""
    from seawall._cli.demo import _adaptive_traffic as traffic
    from seawall._cli.demo._adaptive import CRITICAL_SHARE, SHEDDABLE_SHARE

    text = {p.name: p.description for p in build_adaptive_schedule(10).phases}
    capacity = round(UPSTREAM_WORKERS / QUOTE_TIME)
    assert (
        f"({UPSTREAM_WORKERS} workers, {QUOTE_TIME:g} s a quote: {capacity} quotes"
        in (text["steady"])
    )
    assert (
        f"{traffic.CHECKOUT} checkout clients (critical), {traffic.BROWSING} browsing"
        in (text["steady"])
    )
    assert (
        f"{traffic.REPORTS} report jobs (sheddable) ask again {traffic.THINK:g} s"
        in (text["steady"])
    )
    assert f"starts at {INITIAL_LIMIT}" in text["steady"]
    rate = traffic.CROWD_PAGES + traffic.CROWD_REPORTS
    assert (
        f"{rate} new requests a second ({traffic.CROWD_PAGES} page views, default; "
        f"{traffic.CROWD_REPORTS} report requests, sheddable) for an upstream that serves "
        f"{capacity}"
    ) in text["overload"]
    after = traffic.AFTER_PAGES + traffic.AFTER_REPORTS
    assert (
        f"thins out to {after} new requests a second ({traffic.AFTER_PAGES} page views, "
        f"{traffic.AFTER_REPORTS} report requests)"
    ) in text["recovered"]
    assert f"from {SHEDDABLE_SHARE:.0%} of the limit" in text["overload"]
    assert f"only past {CRITICAL_SHARE:.0%}" in text["overload"]
    assert ROUTES == {"/checkout": "critical", "/quote": "default", "/report": "sheddable"}
    assert {p: v for p, v in ROUTES.items() if v != "default"} == PRIORITY
    assert BULKHEAD_NAME == "demo-adaptive"
