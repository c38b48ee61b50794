"""seawall.config: reading YAML and TOML files, and the errors a bad file gives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _paths import EXAMPLES, SRC
from seawall import ConfigError
from seawall.config import Settings, load_settings

# The reference guide's "In kstlib.conf.yml" example, inside a file with other sections.
KSTLIB_CONF = """\
app:
  name: trading-bot
logging:
  level: INFO
resilience:
  circuit_breaker:
    max_failures: 5
    reset_timeout: 60
    half_open_max_calls: 3
  rate_limiter:
    default_rate: 10
    default_per: 1.0
  shutdown:
    default_timeout: 30
  heartbeat:
    interval: 10
  watchdog:
    timeout: 30
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_kstlib_conf_yml_from_the_guide_loads(tmp_path: Path) -> None:
    """The guide's kstlib.conf.yml loads as it is, other top-level sections ignored."""
    path = write(tmp_path, "kstlib.conf.yml", KSTLIB_CONF)
    settings = load_settings(path, env={})
    assert settings.circuit_breaker_kwargs() == {
        "max_failures": 5,
        "reset_timeout": 60.0,
        "half_open_max_calls": 3,
        "success_threshold": 1,
    }
    assert settings.rate_limiter_kwargs() == {"rate": 10.0, "per": 1.0, "burst": None}
    assert settings.shutdown_kwargs() == {"timeout": 30.0, "default_callback_timeout": 30.0}
    assert settings.heartbeat.interval == 10.0
    assert settings.watchdog.timeout == 30.0


def test_file_values_record_their_origin(tmp_path: Path) -> None:
    """A key set by the file names the file as its origin; other keys stay at 'default'."""
    path = write(tmp_path, "kstlib.conf.yml", KSTLIB_CONF)
    settings = load_settings(path, env={})
    assert settings.origin("circuit_breaker.half_open_max_calls") == str(path)
    assert settings.origin("retry.attempts") == "default"


def test_example_seawall_yml_loads() -> None:
    """The shipped examples/seawall.yml is valid and sets seawall's own keys."""
    path = EXAMPLES / "seawall.yml"
    settings = load_settings(path, env={})
    assert settings.store.url == "file:///var/lib/app/seawall"
    assert settings.store.degraded == "local"
    assert settings.bulkhead.max_concurrent == 20
    assert settings.circuit_breaker.max_failures == 5


def test_empty_resilience_section_gives_defaults(tmp_path: Path) -> None:
    """A 'resilience:' with nothing under it, or an empty section, leaves every default."""
    path = write(tmp_path, "c.yaml", "resilience:\n")
    assert load_settings(path, env={}) == Settings()
    path = write(tmp_path, "d.yaml", "resilience:\n  circuit_breaker:\n")
    assert load_settings(path, env={}) == Settings()


def test_pyproject_tool_seawall_table(tmp_path: Path) -> None:
    """[tool.seawall.<section>] in a pyproject.toml is read, with no resilience level."""
    path = write(
        tmp_path,
        "pyproject.toml",
        """\
        [project]
        name = "app"

        [tool.seawall.circuit_breaker]
        max_failures = 4

        [tool.seawall.bulkhead]
        max_wait = inf

        [tool.seawall.store]
        url = "redis://cache:6379/0"
        degraded = "deny"
        """,
    )
    settings = load_settings(path, env={})
    assert settings.circuit_breaker.max_failures == 4
    assert settings.bulkhead.max_wait == float("inf")
    assert settings.store.url == "redis://cache:6379/0"
    assert settings.store.degraded == "deny"


def test_other_toml_file_uses_resilience_table(tmp_path: Path) -> None:
    """A TOML file not named pyproject.toml keeps the keys under [resilience.<section>]."""
    path = write(tmp_path, "seawall.toml", "[resilience.retry]\nattempts = 5\njitter = false\n")
    settings = load_settings(path, env={})
    assert (settings.retry.attempts, settings.retry.jitter) == (5, False)


def test_explicit_path_beats_seawall_config(tmp_path: Path) -> None:
    """An explicit path is read and the file SEAWALL_CONFIG names is not."""
    explicit = write(tmp_path, "a.yml", "resilience:\n  watchdog:\n    timeout: 7\n")
    named = write(tmp_path, "b.yml", "resilience:\n  watchdog:\n    timeout: oops\n")
    settings = load_settings(explicit, env={"SEAWALL_CONFIG": str(named)})
    assert settings.watchdog.timeout == 7.0


def test_seawall_config_names_the_file(tmp_path: Path) -> None:
    """Without a path, the file SEAWALL_CONFIG names is read."""
    named = write(tmp_path, "b.yml", "resilience:\n  watchdog:\n    timeout: 9\n")
    settings = load_settings(env={"SEAWALL_CONFIG": str(named)})
    assert settings.watchdog.timeout == 9.0
    assert settings.origin("watchdog.timeout") == str(named)


def test_no_path_and_no_variable_reads_nothing() -> None:
    """Without a path or SEAWALL_CONFIG, load_settings returns the built-in defaults."""
    assert load_settings(env={}) == Settings()


def test_nothing_is_read_from_cwd_or_home(tmp_path: Path) -> None:
    """No file under the working or home directory is opened, though config files sit there."""
    for name in ("kstlib.conf.yml", "seawall.yml", "seawall.yaml", "pyproject.toml"):
        (tmp_path / name).write_text("resilience: [broken\n", encoding="utf-8")
    script = textwrap.dedent(
        """\
        import json, os, sys
        opened = []
        sys.addaudithook(lambda e, a: opened.append(str(a[0])) if e == "open" else None)
        from seawall.config import Settings, configure, current, load_settings
        env = {k: v for k, v in os.environ.items() if k != "SEAWALL_CONFIG"}
        same = load_settings(env=env) == Settings() and configure(env=env) == current()
        here = os.getcwd()
        print(json.dumps([same, [p for p in opened if p.startswith(here)]]))
        """
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [True, []]


# -- errors -------------------------------------------------------------------------------

BAD_VALUES = [
    ("circuit_breaker", "max_failures", "2.5", "must be an int, got 2.5 (float)"),
    ("circuit_breaker", "max_failures", '"abc"', "must be an int, got 'abc' (str)"),
    ("circuit_breaker", "max_failures", "0", "must be >= 1, got 0"),
    ("circuit_breaker", "max_failures", "true", "must be an int, got True (bool)"),
    ("circuit_breaker", "reset_timeout", "0", "must be > 0, got 0"),
    ("circuit_breaker", "reset_timeout", "-1.5", "must be > 0, got -1.5"),
    ("circuit_breaker", "reset_timeout", ".inf", "must be finite, got inf"),
    ("circuit_breaker", "reset_timeout", ".nan", "must be a number, got nan"),
    ("circuit_breaker", "reset_timeout", "60s", "must be a number, got '60s' (str)"),
    ("circuit_breaker", "half_open_max_calls", "null", "must be set (null is not allowed here), "
     "got None"),
    ("rate_limiter", "default_burst", "0.5", "must be >= 1, got 0.5"),
    ("rate_limiter", "default_rate", "1.0e-320", "must give a finite refill interval, got "
     "1e-320; rate_limiter.default_per = 1.0 comes from the built-in default"),
    ("bulkhead", "max_queue", "-1", "must be >= 0, got -1"),
    ("bulkhead", "max_wait", "-.inf", "must be finite, got -inf"),
    ("retry", "jitter", "2", "must be true or false, got 2 (int)"),
    ("retry", "multiplier", "0.5", "must be >= 1, got 0.5"),
    ("store", "degraded", "open", "must be one of 'local', 'allow', 'deny', got 'open'"),
    ("store", "url", "http://x", "must start with memory://, file://, redis://, rediss://, "
     "redis+cluster://, got 'http://x'"),
    ("store", "url", "redis://:6379", "must name a host, as redis://localhost:6379/0, "
     "got 'redis://:6379'"),
    ("store", "url", "redis://h:port", "must be a valid URL (the port must be a number from 0 "
     "to 65535), got 'redis://h:port'"),
    ("store", "timeout", "[1]", "must be a number, got [1] (list)"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "key", "text", "complaint"), BAD_VALUES)
def test_bad_value_names_file_key_and_value(
    tmp_path: Path, section: str, key: str, text: str, complaint: str
) -> None:
    """A bad value raises ConfigError naming the file, the full dotted key and the value."""
    path = write(tmp_path, "bad.yml", f"resilience:\n  {section}:\n    {key}: {text}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: resilience.{section}.{key} {complaint}"


def test_bad_value_in_pyproject_names_the_toml_key(tmp_path: Path) -> None:
    """In a pyproject.toml the key is named as tool.seawall.<section>.<key>."""
    path = write(tmp_path, "pyproject.toml", "[tool.seawall.watchdog]\ntimeout = -3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: tool.seawall.watchdog.timeout must be > 0, got -3"


def test_conflict_between_two_file_keys_names_both(tmp_path: Path) -> None:
    """retry.maximum below retry.initial is an error naming both keys and their sources."""
    path = write(tmp_path, "c.yml", "resilience:\n  retry:\n    initial: 2\n    maximum: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: resilience.retry.maximum must be >= retry.initial (2.0), got 1.0; "
        f"retry.initial = 2.0 comes from {path}"
    )


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    """A misspelt key is an error that names it, its value and the closest known key."""
    path = write(tmp_path, "k.yml", "resilience:\n  circuit_breaker:\n    max_failure: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: unknown key resilience.circuit_breaker.max_failure (value 3); "
        "did you mean 'resilience.circuit_breaker.max_failures'?"
    )


def test_unknown_section_suggests_the_closest(tmp_path: Path) -> None:
    """A misspelt section is an error suggesting the closest section."""
    path = write(tmp_path, "k.yml", "resilience:\n  circuit_braker:\n    max_failures: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: unknown key resilience.circuit_braker (value {{'max_failures': 3}}); "
        "did you mean 'resilience.circuit_breaker'?"
    )


def test_unknown_key_far_from_all_has_no_suggestion(tmp_path: Path) -> None:
    """An unknown key close to nothing is still an error, without a suggestion."""
    path = write(tmp_path, "k.yml", "resilience:\n  heartbeat:\n    colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: unknown key resilience.heartbeat.colour (value 'blue')"


def test_kstlib_force_exit_code_is_refused_with_reason(tmp_path: Path) -> None:
    """kstlib's shutdown.force_exit_code, read by nothing there, is refused with the reason."""
    path = write(tmp_path, "k.yml", "resilience:\n  shutdown:\n    force_exit_code: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: resilience.shutdown.force_exit_code is not a seawall key: "
        "GracefulShutdown exits with 128 + the signal number; remove it"
    )


def test_pyproject_resilience_level_is_refused(tmp_path: Path) -> None:
    """[tool.seawall.resilience.*] is an error explaining there is no resilience level."""
    path = write(tmp_path, "pyproject.toml", "[tool.seawall.resilience.watchdog]\ntimeout = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: tool.seawall.resilience is not read: [tool.seawall] has no resilience "
        "level, write [tool.seawall.circuit_breaker] and so on"
    )


def test_section_at_top_level_is_refused(tmp_path: Path) -> None:
    """A seawall section outside 'resilience:' is an error, not silently ignored."""
    path = write(tmp_path, "k.yml", "watchdog:\n  timeout: 3\nresilience: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: 'watchdog' is at the top level; seawall reads it under 'resilience:' "
        "(other top-level sections are ignored)"
    )


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("k.yml", "logging: {}\n", "no 'resilience' section, so nothing for seawall in it"),
        ("k.yml", "", "no 'resilience' section, so nothing for seawall in it"),
        ("pyproject.toml", "[project]\n", "no 'tool.seawall' section, so "
         "nothing for seawall in it"),
        ("k.yml", "- 1\n", "the document must be a mapping of keys, got [1] (list)"),
        ("k.yml", "resilience: 3\n", "resilience must be a mapping of keys, got 3 (int)"),
        ("k.yml", "resilience:\n  watchdog: 3\n",
         "resilience.watchdog must be a mapping of keys, got 3 (int)"),
        ("k.json", "{}", "unknown file type '.json'; use .yml, .yaml or .toml"),
    ],
)  # fmt: skip
def test_badly_shaped_file_names_the_file(
    tmp_path: Path, name: str, text: str, complaint: str
) -> None:
    """A file without the section, or with the wrong shape or type, is a ConfigError naming it."""
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: {complaint}"


def test_missing_file_named_by_variable_says_so(tmp_path: Path) -> None:
    """A SEAWALL_CONFIG naming a missing file is a ConfigError naming the file and variable."""
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"SEAWALL_CONFIG": str(path)})
    assert str(caught.value) == (
        f"{path} (named by SEAWALL_CONFIG): cannot be read: "
        f"[Errno 2] No such file or directory: '{path}'"
    )


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error is a ConfigError naming the file and the line."""
    path = write(tmp_path, "k.yml", "resilience:\n  watchdog: [1\n")
    with pytest.raises(ConfigError, match=r"not valid YAML") as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(f"{path}: not valid YAML: ")
    assert "line 3" in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A TOML syntax error is a ConfigError naming the file and the line."""
    path = write(tmp_path, "pyproject.toml", "[tool.seawall\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 14)"
    )


def test_missing_pyyaml_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyYAML, reading a YAML file raises ModuleNotFoundError naming seawall[yaml]."""
    path = write(tmp_path, "k.yml", "resilience: {}\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes "import yaml" fail
    with pytest.raises(ModuleNotFoundError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"reading {path} needs PyYAML: pip install 'seawall[yaml]'"
    assert caught.value.name == "yaml"


def test_toml_needs_no_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyproject.toml is read even when PyYAML is missing."""
    path = write(tmp_path, "pyproject.toml", "[tool.seawall.heartbeat]\ninterval = 2\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    assert load_settings(path, env={}).heartbeat.interval == 2.0


def test_duplicate_yaml_key_names_both_lines(tmp_path: Path) -> None:
    """A key given twice under resilience is an error naming the key and both lines."""
    text = (
        "resilience:\n  watchdog:\n    timeout: 3\n  heartbeat: {}\n  watchdog:\n    timeout: 4\n"
    )
    path = write(tmp_path, "k.yml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: resilience.watchdog is given twice, on lines 2 and 5"


def test_duplicate_nested_key_is_found(tmp_path: Path) -> None:
    """A key given twice inside one section is an error naming the full dotted key."""
    path = write(tmp_path, "k.yml", "resilience:\n  watchdog:\n    timeout: 3\n    timeout: 4\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: resilience.watchdog.timeout is given twice, on lines 3 and 4"
    )


def test_duplicates_outside_resilience_are_not_ours(tmp_path: Path) -> None:
    """Keys repeated in other top-level sections are left to their owners."""
    path = write(tmp_path, "k.yml", "app: {a: 1, a: 2}\nresilience:\n  watchdog: {timeout: 3}\n")
    assert load_settings(path, env={}).watchdog.timeout == 3.0


def test_non_string_keys_are_unknown(tmp_path: Path) -> None:
    """A non-string key under resilience is reported as an unknown key."""
    path = write(tmp_path, "k.yml", "resilience:\n  1: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: unknown key resilience.1 (value 3)"
