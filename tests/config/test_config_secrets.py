"""A password in a store URL never leaves seawall.config: not in errors, reprs or CLI output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seawall import ConfigError
from seawall._cli.main import main
from seawall.config import Settings, StoreSettings, load_settings

SECRET = "s3cret-pw"
URL = f"redis://:{SECRET}@cache:6379/0"
HIDDEN = "redis://:***@cache:6379/0"


def test_config_table_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`seawall config` shows store.url with its password as ***."""
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    monkeypatch.setenv("SEAWALL_STORE__URL", URL)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("store.url"))
    assert (row.split(), SECRET in out) == (
        ["store.url", HIDDEN, "environment", "variable", "SEAWALL_STORE__URL"],
        False,
    )


def test_config_json_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`seawall config --json` shows store.url with its password as ***."""
    monkeypatch.delenv("SEAWALL_CONFIG", raising=False)
    monkeypatch.setenv("SEAWALL_STORE__URL", URL)
    assert main(["config", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"]["store.url"]["value"] == HIDDEN


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SEAWALL_STORE__URL": f"redis://:{SECRET}@cache:port/0"},
            "environment variable SEAWALL_STORE__URL: store.url must be a valid URL (the port "
            "must be a number from 0 to 65535), got 'redis://:***@cache:port/0'",
        ),
        (
            # A "/" in an unescaped password ends the host early: urlsplit then reads part of
            # the password as the port.
            {"SEAWALL_STORE__URL": "redis://:pass/word@cache:6379"},
            "environment variable SEAWALL_STORE__URL: store.url must be a valid URL (the port "
            "must be a number from 0 to 65535), got 'redis://***@cache:6379'",
        ),
        (
            {"SEAWALL_STORE__URI": URL},
            "environment variable SEAWALL_STORE__URI: unknown setting (value "
            f"'{HIDDEN}'); did you mean SEAWALL_STORE__URL?",
        ),
        (
            {"SEAWALL_STORE_URL": URL},
            f"environment variable SEAWALL_STORE_URL: not read (value '{HIDDEN}'); seawall's "
            "variables separate section and key with two underscores: SEAWALL_STORE__URL",
        ),
    ],
)
def test_variable_errors_hide_the_password(env: dict[str, str], message: str) -> None:
    """A ConfigError about a variable holding a URL shows the password as ***."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (
            f"    url: redis://:{SECRET}@cache:port/0\n",
            "resilience.store.url must be a valid URL (the port must be a number from 0 to "
            "65535), got 'redis://:***@cache:port/0'",
        ),
        (
            f"    uri: {URL}\n",
            f"unknown key resilience.store.uri (value '{HIDDEN}'); did you mean "
            "'resilience.store.url'?",
        ),
        (
            f"    url: redis://:{SECRET}@cache: 6379\n",
            "not valid YAML: mapping values are not allowed here (at line 3, column 34)",
        ),
    ],
)
def test_file_errors_hide_the_password(tmp_path: Path, store: str, message: str) -> None:
    """A ConfigError about a file line holding a URL never quotes the password."""
    path = tmp_path / "s.yml"
    path.write_text("resilience:\n  store:\n" + store, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: {message}"


def test_settings_repr_hides_the_password() -> None:
    """repr() of StoreSettings, and of Settings holding it, shows the password as ***."""
    store = StoreSettings(url=URL)
    assert repr(store) == f"StoreSettings(url='{HIDDEN}', timeout=0.1, degraded='local')"
    assert SECRET not in repr(Settings(store=store))
