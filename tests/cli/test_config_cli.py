"""``seawall config``: check a configuration and print every key with its origin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _paths import ROOT
from seawall._cli.config import _text, rows
from seawall._cli.main import main
from seawall.config import Settings, load_settings


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(
        "resilience:\n  circuit_breaker:\n    max_failures: 3\n  bulkhead:\n    max_wait: .inf\n",
        encoding="utf-8",
    )
    return path


def test_table_shows_value_and_origin(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table lists each key with its value and whether file, variable or default set it."""
    monkeypatch.setenv("SEAWALL_RETRY__JITTER", "false")
    assert main(["config", str(conf)]) == 0
    lines = capsys.readouterr().out.splitlines()[3:30]  # after the file and variables lines
    assert lines[0].split() == ["KEY", "VALUE", "FROM"]
    assert lines[1].split() == ["circuit_breaker.max_failures", "3", str(conf)]
    assert lines[2].split() == ["circuit_breaker.reset_timeout", "60.0", "default"]
    assert lines[12].split() == ["bulkhead.max_wait", "inf", str(conf)]
    assert lines[18].split() == ["retry.jitter", "false", "environment", "variable",
                                 "SEAWALL_RETRY__JITTER"]  # fmt: skip
    assert lines[19].split() == ["retry.deadline", "null", "default"]


def test_table_ends_with_keys_no_constructor_reads(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set keys that only the *_kwargs() helpers pass on are named in a note after the table."""
    monkeypatch.setenv("SEAWALL_RETRY__JITTER", "false")
    monkeypatch.setenv("SEAWALL_WATCHDOG__TIMEOUT", "4")
    assert main(["config", str(conf)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (len(lines), lines[-2]) == (43, "")
    assert lines[-1] == (
        "note: no constructor reads bulkhead.max_wait, retry.jitter on its own; pass them with "
        "settings.bulkhead_kwargs(), retry_kwargs() or (keyed_)rate_limiter_kwargs()"
    )


def test_table_has_no_note_when_every_set_key_is_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When every key set is one a constructor reads, the table is the last thing printed."""
    monkeypatch.setenv("SEAWALL_WATCHDOG__TIMEOUT", "4")
    monkeypatch.setenv("SEAWALL_CONFIG", "")
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (len(lines), lines[-1].split()) == (41, ["adaptive.smoothing", "0.4", "default"])


def test_table_says_which_file_and_variables(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table starts with the file SEAWALL_CONFIG named and the variables that set a key."""
    monkeypatch.setenv("SEAWALL_CONFIG", str(conf))
    monkeypatch.setenv("SEAWALL_WATCHDOG__TIMEOUT", "4")
    monkeypatch.setenv("SEAWALL_RETRY__JITTER", "false")
    assert main(["config"]) == 0
    assert capsys.readouterr().out.splitlines()[:3] == [
        f"file: {conf} (named by SEAWALL_CONFIG)",
        "variables: SEAWALL_RETRY__JITTER, SEAWALL_WATCHDOG__TIMEOUT",
        "",
    ]


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        (None, "file: none (SEAWALL_CONFIG is not set)"),
        ("", "file: none (SEAWALL_CONFIG is empty)"),
    ],
)
def test_table_says_no_file_was_read(
    named: str | None,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without FILE and without a file named by SEAWALL_CONFIG, the first line says why none."""
    if named is not None:
        monkeypatch.setenv("SEAWALL_CONFIG", named)
    else:
        monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    assert main(["config"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [expected, "variables: none"]


def test_file_argument_other_than_seawall_config_is_pointed_out(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checking FILE while SEAWALL_CONFIG names another file says which one the app reads."""
    other = tmp_path / "other.yml"
    monkeypatch.setenv("SEAWALL_CONFIG", str(other))
    assert main(["config", str(conf)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"file: {conf} (given as FILE; SEAWALL_CONFIG names {other})"


def test_json_output(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the file, the variables and one object per dotted key, inf as 'inf'."""
    monkeypatch.setenv("SEAWALL_CONFIG", str(conf))
    monkeypatch.setenv("SEAWALL_RETRY__JITTER", "off")
    assert main(["config", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["file", "variables", "settings"]
    assert (document["file"], document["variables"]) == (str(conf), ["SEAWALL_RETRY__JITTER"])
    settings = document["settings"]
    assert len(settings) == 37
    assert settings["circuit_breaker.max_failures"] == {"value": 3, "from": str(conf)}
    assert settings["bulkhead.max_wait"] == {"value": "inf", "from": str(conf)}
    assert settings["store.url"] == {"value": "memory://", "from": "default"}


def test_invalid_configuration_exits_2_with_the_error(
    conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits with status 2 and prints the ConfigError on stderr only."""
    monkeypatch.setenv("SEAWALL_WATCHDOG__TIMEOUT", "soon")
    assert main(["config", str(conf)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "seawall config: environment variable SEAWALL_WATCHDOG__TIMEOUT: watchdog.timeout "
        "must be a number, got 'soon'\n"
    )


def test_docs_table_lists_every_key_with_its_default() -> None:
    """docs/configuration.md has a table row for each key, showing its built-in default."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [f"| `{key}` | `{_text(value)}` |" for key, value, _ in rows(Settings())]
    missing = [row for row in missing if row not in text]
    assert missing == []


def test_example_file_sets_every_key() -> None:
    """examples/seawall.yml names every key, so it can serve as a complete template."""
    settings = load_settings(ROOT / "examples" / "seawall.yml", env={})
    assert [key for key, _, origin in rows(settings) if origin == "default"] == []
