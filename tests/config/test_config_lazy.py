"""SEAWALL_CONFIG and SEAWALL_* variables apply without a call, loaded once at first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _paths import PROCS
from seawall import (
    CircuitBreaker,
    CircuitState,
    ConfigError,
    GracefulShutdown,
    Heartbeat,
    Watchdog,
    config,
)
from seawall.config import Settings, WatchdogSettings
from seawall.testing import FakeClock

# Files that a tool reading its configuration implicitly would pick up from the working
# directory; seawall must read none of them.
DECOYS = {
    "resilience.yml": "resilience:\n  watchdog:\n    timeout: 1\n",
    "seawall.yml": "resilience:\n  watchdog:\n    timeout: 2\n",
    "kstlib.conf.yml": "resilience:\n  watchdog:\n    timeout: 3\n",
    "pyproject.toml": "[tool.seawall.watchdog]\ntimeout = 4\n",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SEAWALL_* variable and no settings loaded yet; both come back after the test."""
    for var in list(os.environ):
        if var.startswith("SEAWALL_"):
            monkeypatch.delenv(var)
    monkeypatch.setattr(config, "_installed", None)
    return monkeypatch


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_nothing_set_means_built_in_defaults(environ: pytest.MonkeyPatch) -> None:
    """With no SEAWALL_* variable and no configure() call, current() is the built-in defaults."""
    settings = config.current()
    assert (settings, settings.file, settings.variables) == (Settings(), None, ())


def test_seawall_config_alone_shapes_a_breaker(
    environ: pytest.MonkeyPatch, tmp_path: Path, clock: FakeClock
) -> None:
    """With only SEAWALL_CONFIG set, CircuitBreaker() opens after the file's 2 failures."""
    conf = write(tmp_path / "r.yml", "resilience:\n  circuit_breaker:\n    max_failures: 2\n")
    environ.setenv("SEAWALL_CONFIG", str(conf))
    breaker = CircuitBreaker(clock=clock)
    breaker.admit().failure()
    states = [breaker.state]
    breaker.admit().failure()
    states.append(breaker.state)
    assert states == [CircuitState.CLOSED, CircuitState.OPEN]


def test_variables_alone_set_defaults(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With only SEAWALL_<SECTION>__<KEY> variables set, policies take their values."""
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "5")
    environ.setenv("SEAWALL_HEARTBEAT__INTERVAL", "2.5")
    environ.setenv("SEAWALL_SHUTDOWN__TIMEOUT", "12")
    assert Watchdog().timeout == 5.0
    assert Heartbeat(tmp_path / "hb.json").interval == 2.5
    assert GracefulShutdown().timeout == 12.0


def test_precedence_defaults_file_env_arguments(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each layer beats the one below: defaults < file < environment < arguments."""
    conf = write(
        tmp_path / "r.yml",
        "resilience:\n  heartbeat:\n    interval: 3\n  watchdog:\n    timeout: 7\n",
    )
    environ.setenv("SEAWALL_CONFIG", str(conf))
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "8")
    assert GracefulShutdown().timeout == 30.0  # built-in default
    assert Heartbeat(tmp_path / "hb.json").interval == 3.0  # file
    assert Watchdog().timeout == 8.0  # environment over file
    assert Watchdog(timeout=1).timeout == 1.0  # argument over environment


def test_loaded_once(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """After the first policy, edits to the file and the environment change nothing."""
    conf = write(tmp_path / "r.yml", "resilience:\n  watchdog:\n    timeout: 7\n")
    environ.setenv("SEAWALL_CONFIG", str(conf))
    first = Watchdog().timeout
    write(conf, "resilience:\n  watchdog:\n    timeout: 9\n")
    environ.setenv("SEAWALL_HEARTBEAT__INTERVAL", "4")
    assert (first, Watchdog().timeout, Heartbeat(tmp_path / "hb").interval) == (7.0, 7.0, 10.0)


def test_configure_replaces_what_was_loaded(environ: pytest.MonkeyPatch) -> None:
    """configure() after the first load installs its settings over the environment's."""
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "5")
    loaded = Watchdog().timeout
    config.configure(Settings(watchdog=WatchdogSettings(timeout=2)))
    configured = Watchdog().timeout
    config.configure(Settings())
    assert (loaded, configured, Watchdog().timeout) == (5.0, 2.0, 30.0)


def test_configure_first_means_the_environment_is_never_read(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings installed before the first policy win, so a broken SEAWALL_CONFIG is not read."""
    environ.setenv("SEAWALL_CONFIG", str(tmp_path / "missing.yml"))
    config.configure(Settings(watchdog=WatchdogSettings(timeout=2)))
    assert Watchdog().timeout == 2.0


def test_bad_file_value_raises_at_first_policy(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bad value in the named file raises ConfigError naming file, key and value."""
    conf = write(tmp_path / "r.yml", "resilience:\n  circuit_breaker:\n    max_failures: two\n")
    environ.setenv("SEAWALL_CONFIG", str(conf))
    with pytest.raises(ConfigError) as caught:
        CircuitBreaker()
    assert str(caught.value) == (
        f"{conf}: resilience.circuit_breaker.max_failures must be an int, got 'two' (str)"
    )


def test_bad_variable_raises_at_first_policy(environ: pytest.MonkeyPatch) -> None:
    """A bad SEAWALL_* value raises ConfigError naming the variable, key and text."""
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "soon")
    with pytest.raises(ConfigError) as caught:
        Watchdog()
    assert str(caught.value) == (
        "environment variable SEAWALL_WATCHDOG__TIMEOUT: watchdog.timeout must be a number, "
        "got 'soon'"
    )


def test_failed_load_is_not_kept(environ: pytest.MonkeyPatch) -> None:
    """A load that failed is tried again by the next policy, which sees the fixed value."""
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "soon")
    with pytest.raises(ConfigError):
        Watchdog()
    environ.setenv("SEAWALL_WATCHDOG__TIMEOUT", "6")
    assert Watchdog().timeout == 6.0


def test_working_directory_is_never_read(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Config files in the working directory are ignored when SEAWALL_CONFIG is not set."""
    for name, text in DECOYS.items():
        write(tmp_path / name, text)
    environ.chdir(tmp_path)
    assert (Watchdog().timeout, config.current().file) == (30.0, None)


def test_import_reads_nothing(tmp_path: Path) -> None:
    """`import seawall` with a missing SEAWALL_CONFIG file succeeds; the first policy raises."""
    missing = tmp_path / "missing.yml"
    script = (
        "import seawall, seawall.config\n"
        "print('imported', seawall.config._installed)\n"
        "try:\n    seawall.Watchdog()\n"
        "except seawall.ConfigError as exc:\n    print(exc)\n"
    )
    env = {**_clean_env(), "SEAWALL_CONFIG": str(missing)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == [
        "imported None",
        f"{missing} (named by SEAWALL_CONFIG): cannot be read: [Errno 2] No such file or "
        f"directory: '{missing}'",
    ]


def test_cli_and_app_agree(tmp_path: Path) -> None:
    """`seawall config --json` and an app's policies, same environment, report the same values."""
    conf = write(
        tmp_path / "resilience.yml",
        "resilience:\n  circuit_breaker:\n    max_failures: 3\n    half_open_max_calls: 2\n"
        "  rate_limiter:\n    default_rate: 4\n  shutdown:\n    default_timeout: 9\n"
        "  watchdog:\n    timeout: 7\n",
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name, text in DECOYS.items():
        write(cwd / name, text)
    env = {
        **_clean_env(),
        "SEAWALL_CONFIG": str(conf),
        "SEAWALL_WATCHDOG__TIMEOUT": "8",
        "SEAWALL_RATE_LIMITER__DEFAULT_PER": "60",
    }
    cli = _run_json([sys.executable, "-m", "seawall", "config", "--json"], env, cwd)
    app = _run_json([sys.executable, str(PROCS / "config_app.py"), str(tmp_path)], env, cwd)
    shown = {key: cli["settings"][key]["value"] for key in app["values"]}
    assert app["values"] == {
        "circuit_breaker.max_failures": 3,
        "circuit_breaker.reset_timeout": 60.0,
        "circuit_breaker.half_open_max_calls": 2,
        "circuit_breaker.success_threshold": 1,
        "rate_limiter.default_rate": 4.0,
        "rate_limiter.default_per": 60.0,
        "shutdown.timeout": 30.0,
        "shutdown.default_timeout": 9.0,
        "heartbeat.interval": 10.0,
        "watchdog.timeout": 8.0,
    }
    assert shown == app["values"]
    assert (cli["file"], cli["variables"]) == (app["file"], app["variables"])
    assert cli["variables"] == ["SEAWALL_RATE_LIMITER__DEFAULT_PER", "SEAWALL_WATCHDOG__TIMEOUT"]
    assert cli["file"] == str(conf)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}


def _run_json(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    document = json.loads(done.stdout)
    assert isinstance(document, dict)
    return document
