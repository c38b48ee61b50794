"""seawall.config: SEAWALL_<SECTION>__<KEY> environment variables over the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall import ConfigError
from seawall.config import Settings, env_name, load_settings


def test_env_name_scheme() -> None:
    """A key's variable is SEAWALL_, the section, two underscores, the key, upper-cased."""
    assert env_name("circuit_breaker", "max_failures") == "SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES"


def test_env_overrides_the_file(tmp_path: Path) -> None:
    """A variable beats the file for its key; the file still sets the other keys."""
    path = tmp_path / "c.yml"
    path.write_text(
        "resilience:\n  circuit_breaker:\n    max_failures: 5\n    reset_timeout: 20\n",
        encoding="utf-8",
    )
    settings = load_settings(path, env={"SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES": "3"})
    assert settings.circuit_breaker.max_failures == 3
    assert settings.circuit_breaker.reset_timeout == 20.0
    assert settings.origin("circuit_breaker.max_failures") == (
        "environment variable SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES"
    )
    assert settings.origin("circuit_breaker.reset_timeout") == str(path)


@pytest.mark.parametrize(
    ("var", "text", "attribute", "expected"),
    [
        ("SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES", " 7 ", ("circuit_breaker", "max_failures"), 7),
        ("SEAWALL_HEARTBEAT__INTERVAL", "2.5", ("heartbeat", "interval"), 2.5),
        ("SEAWALL_RATE_LIMITER__DEFAULT_BURST", "null", ("rate_limiter", "default_burst"), None),
        ("SEAWALL_RATE_LIMITER__DEFAULT_BURST", "50", ("rate_limiter", "default_burst"), 50.0),
        ("SEAWALL_BULKHEAD__MAX_WAIT", "inf", ("bulkhead", "max_wait"), float("inf")),
        ("SEAWALL_BULKHEAD__MAX_QUEUE", "None", ("bulkhead", "max_queue"), None),
        ("SEAWALL_BULKHEAD__MAX_QUEUE", "0", ("bulkhead", "max_queue"), 0),
        ("SEAWALL_RETRY__JITTER", "off", ("retry", "jitter"), False),
        ("SEAWALL_RETRY__JITTER", "YES", ("retry", "jitter"), True),
        ("SEAWALL_SHUTDOWN__DEFAULT_TIMEOUT", "5", ("shutdown", "default_timeout"), 5.0),
        (
            "SEAWALL_STORE__URL",
            "file:///var/lib/app/seawall",
            ("store", "url"),
            "file:///var/lib/app/seawall",
        ),
        ("SEAWALL_STORE__DEGRADED", "allow", ("store", "degraded"), "allow"),
    ],
)
def test_env_values_are_parsed(
    var: str, text: str, attribute: tuple[str, str], expected: object
) -> None:
    """Each variable's text becomes the key's type: int, float, null, inf, bool, choice, URL."""
    settings = load_settings(env={var: text})
    assert getattr(getattr(settings, attribute[0]), attribute[1]) == expected


@pytest.mark.parametrize(
    ("var", "text", "complaint"),
    [  # the complaint follows the dotted key: SEAWALL_A__B names a.b
        ("SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES", "2.5", "must be an int"),
        ("SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES", "abc", "must be an int"),
        ("SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES", "0", "must be >= 1"),
        ("SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES", "null", "must be an int"),
        ("SEAWALL_CIRCUIT_BREAKER__RESET_TIMEOUT", "", "must be a number"),
        ("SEAWALL_CIRCUIT_BREAKER__RESET_TIMEOUT", "nan", "must be a number"),
        ("SEAWALL_WATCHDOG__TIMEOUT", "inf", "must be finite"),
        ("SEAWALL_RETRY__JITTER", "maybe", "must be one of true, yes, on, 1, false, no, off, 0"),
        ("SEAWALL_STORE__DEGRADED", "LOCAL", "must be one of 'local', 'allow', 'deny'"),
    ],
)
def test_bad_env_value_names_variable_key_and_value(var: str, text: str, complaint: str) -> None:
    """A bad variable raises ConfigError naming the variable, the dotted key and the text."""
    key = var.removeprefix("SEAWALL_").lower().replace("__", ".")
    with pytest.raises(ConfigError) as caught:
        load_settings(env={var: text})
    assert str(caught.value) == f"environment variable {var}: {key} {complaint}, got {text!r}"


def test_unknown_env_setting_suggests_the_closest() -> None:
    """A SEAWALL_X__Y variable that names no key is an error suggesting the closest one."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"SEAWALL_CIRCUIT_BREAKER__MAX_FAILURE": "3"})
    assert str(caught.value) == (
        "environment variable SEAWALL_CIRCUIT_BREAKER__MAX_FAILURE: unknown setting "
        "(value '3'); did you mean SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES?"
    )


def test_single_underscore_lookalike_is_an_error() -> None:
    """SEAWALL_WATCHDOG_TIMEOUT (one underscore) is an error naming the right variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"SEAWALL_WATCHDOG_TIMEOUT": "3"})
    assert str(caught.value) == (
        "environment variable SEAWALL_WATCHDOG_TIMEOUT: not read (value '3'); seawall's "
        "variables separate section and key with two underscores: SEAWALL_WATCHDOG__TIMEOUT"
    )


def test_unrelated_variables_are_ignored() -> None:
    """Variables that are not seawall settings, SEAWALL_ or not, change nothing."""
    env = {"SEAWALL_TEST_GO": "/tmp/go", "HOME": "/root", "seawall_watchdog__timeout": "x"}
    assert load_settings(env=env) == Settings()


def test_conflict_names_both_sources(tmp_path: Path) -> None:
    """A variable that breaks a two-key rule with a file value names the variable and the file."""
    path = tmp_path / "c.yml"
    path.write_text("resilience:\n  retry:\n    maximum: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"SEAWALL_RETRY__INITIAL": "3"})
    assert str(caught.value) == (
        f"{path}: resilience.retry.maximum must be >= retry.initial (3.0), got 1.0; "
        "retry.initial = 3.0 comes from environment variable SEAWALL_RETRY__INITIAL"
    )


def test_empty_seawall_config_means_no_file() -> None:
    """SEAWALL_CONFIG set to the empty string reads no file."""
    assert load_settings(env={"SEAWALL_CONFIG": ""}) == Settings()


def test_settings_name_their_file_and_variables(tmp_path: Path) -> None:
    """Settings.file is the file read and Settings.variables the variables that set a key."""
    path = tmp_path / "c.yml"
    path.write_text("resilience:\n", encoding="utf-8")
    env = {"SEAWALL_CONFIG": str(path), "SEAWALL_RETRY__JITTER": "no", "SEAWALL_TEST_GO": "x"}
    env["SEAWALL_BULKHEAD__MAX_WAIT"] = "1"
    settings = load_settings(env=env)
    assert (settings.file, settings.variables) == (
        str(path),
        ("SEAWALL_BULKHEAD__MAX_WAIT", "SEAWALL_RETRY__JITTER"),
    )
