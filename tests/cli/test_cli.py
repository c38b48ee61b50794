"""The `seawall` command line as a whole: help a person can read, and one shape for every error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seawall._cli.main import main

COMMANDS = [
    [],
    ["demo"],
    ["heartbeat"],
    ["heartbeat", "check"],
    ["config"],
    ["status"],
    ["reset"],
]


def help_text(command: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What `seawall COMMAND --help` prints (exit status 0 checked)."""
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "seawall")
def test_help_has_no_markup(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """No command's help shows reST or Sphinx markup (double backquotes, :class:, ...)."""
    text = help_text(command, capsys)
    for markup in ("``", ":class:", ":func:", ":data:", ":meth:"):
        assert markup not in text, markup


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "seawall")
def test_help_has_a_description_and_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command's help has a paragraph under the usage and an example of a real call."""
    text = help_text(command, capsys)
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith(f"usage: {' '.join(['seawall', *command])} ")
    assert not paragraphs[1].startswith(("positional arguments:", "options:"))
    assert len(paragraphs[1]) >= 60  # a sentence or more, not a label
    example = f"\n  seawall {command[0]}" if command else "\n  seawall demo"
    assert "\nexample" in text
    assert example in text.replace("\n  $ seawall", "\n  seawall")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "seawall")
def test_help_fits_80_columns(command: list[str]) -> None:
    """At 80 columns no line of any command's help is wider than the terminal."""
    done = subprocess.run(
        [sys.executable, "-m", "seawall", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def see(prog: str) -> str:
    return f" (see '{prog} --help')\n"


USAGE_ERRORS = [
    (["bogus"], "seawall: argument COMMAND: invalid choice: 'bogus' (choose from "
     "'demo', 'heartbeat', 'config', 'status', 'reset')" + see("seawall")),
    ([], "seawall: the following arguments are required: COMMAND" + see("seawall")),
    (["demo", "--duration", "soon"], "seawall demo: argument --duration/S: "),
    (["demo", "--workers", "two"], "seawall demo: argument --workers: invalid int value: "
     "'two'" + see("seawall demo")),
    (["heartbeat"], "seawall heartbeat: the following arguments are required: ACTION"
     + see("seawall heartbeat")),
    (["heartbeat", "check"], "seawall heartbeat check: the following arguments are required: "
     "FILE" + see("seawall heartbeat check")),
    (["config", "a.yml", "b.yml"], "seawall config: unrecognized arguments: b.yml"
     + see("seawall config")),
    (["status", "--bogus"], "seawall status: unrecognized arguments: --bogus"
     + see("seawall status")),
    (["reset"], "seawall reset: the following arguments are required: NAME"
     + see("seawall reset")),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), USAGE_ERRORS, ids=lambda v: str(v)[:40])
def test_usage_errors_are_one_line_prefixed_with_the_command(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A usage error is one stderr line, `seawall <command>: ...`, and exit status 2."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    if expected.endswith("\n"):
        assert captured.err == expected
    else:
        assert captured.err.startswith(expected.replace("/S", ""))
        assert captured.err.count("\n") == 1


def test_errors_of_every_command_share_the_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command's own errors (not argparse's) start with `seawall <command>: `."""
    monkeypatch.delenv("SEAWALL_STORE", raising=False)
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    calls = {
        "seawall demo: ": ["demo", "--duration", "1"],
        "seawall heartbeat check: ": ["heartbeat", "check", str(tmp_path / "none")],
        "seawall config: ": ["config", str(tmp_path / "none.yml")],
        "seawall status: ": ["status"],
        "seawall reset: ": ["reset", "x", "--store", f"file://{tmp_path}/none"],
    }
    for prefix, argv in calls.items():
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(prefix), captured.err
        assert captured.err.count("\n") == 1, captured.err
