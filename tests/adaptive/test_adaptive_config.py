"""max_concurrent: auto and the adaptive knobs from a configuration file and the environment."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from seawall import AdaptiveBulkhead, ConfigError, Gradient2Limit, VegasLimit, config
from seawall.asgi import ResilienceMiddleware
from seawall.config import AdaptiveSettings, Settings, load_settings


def sheddable_room(pool: AdaptiveBulkhead) -> int:
    """How many sheddable calls the pool admits at once (each permit is then let go)."""
    permits = []
    while (permit := pool.try_acquire("sheddable")) is not None:
        permits.append(permit)
    for permit in permits:
        permit.ignore()
    return len(permits)


@pytest.fixture
def restore() -> Iterator[None]:
    """Put back the process-wide settings a test installs."""
    previous = config.current()
    yield
    config.configure(previous)


def test_file_sets_auto_and_the_knobs(tmp_path: Path) -> None:
    """A YAML file's bulkhead.max_concurrent 'auto' and adaptive keys are read as written."""
    path = tmp_path / "seawall.yml"
    text = """\
        resilience:
          bulkhead:
            max_concurrent: auto
          adaptive:
            limit: vegas
            max_limit: 64
            sheddable_share: 0.5
        """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.bulkhead.max_concurrent == "auto"
    a = settings.adaptive
    assert (a.limit, a.max_limit, a.sheddable_share) == ("vegas", 64, 0.5)
    assert settings.origin("adaptive.max_limit") == str(path)


def test_environment_sets_auto_and_the_knobs() -> None:
    """SEAWALL_BULKHEAD__MAX_CONCURRENT=auto and SEAWALL_ADAPTIVE__* parse to typed values."""
    settings = load_settings(
        env={
            "SEAWALL_BULKHEAD__MAX_CONCURRENT": "auto",
            "SEAWALL_ADAPTIVE__TOLERANCE": "1.3",
            "SEAWALL_ADAPTIVE__QUEUE_SIZE": "2",
        }
    )
    assert settings.bulkhead.max_concurrent == "auto"
    assert (settings.adaptive.tolerance, settings.adaptive.queue_size) == (1.3, 2)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        (
            "SEAWALL_BULKHEAD__MAX_CONCURRENT",
            "often",
            "environment variable SEAWALL_BULKHEAD__MAX_CONCURRENT: bulkhead.max_concurrent "
            "must be an int or 'auto', got 'often'",
        ),
        (
            "SEAWALL_ADAPTIVE__SHEDDABLE_SHARE",
            "1.5",
            "environment variable SEAWALL_ADAPTIVE__SHEDDABLE_SHARE: adaptive.sheddable_share "
            "must be <= 1, got '1.5'",
        ),
        (
            "SEAWALL_ADAPTIVE__LIMIT",
            "cubic",
            "environment variable SEAWALL_ADAPTIVE__LIMIT: adaptive.limit must be one of "
            "'gradient2', 'vegas', 'aimd', got 'cubic'",
        ),
        (
            "SEAWALL_ADAPTIVE__INITIAL_LIMIT",
            "300",
            "environment variable SEAWALL_ADAPTIVE__INITIAL_LIMIT: adaptive.initial_limit must "
            "be between min_limit and max_limit (1..200), got 300; adaptive.max_limit = 200 "
            "comes from the built-in default",
        ),
    ],
)
def test_bad_values_name_the_variable_key_and_value(variable: str, text: str, message: str) -> None:
    """Each bad adaptive value is a ConfigError naming its source, its key and the value."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={variable: text})
    assert str(caught.value) == message


def test_a_fixed_bulkhead_refuses_auto() -> None:
    """bulkhead_kwargs() on 'auto' says why and where it came from; an explicit size wins."""
    settings = load_settings(env={"SEAWALL_BULKHEAD__MAX_CONCURRENT": "auto"})
    with pytest.raises(ConfigError, match="is 'auto' \\(environment variable SEAWALL_BULK"):
        settings.bulkhead_kwargs()
    assert settings.bulkhead_kwargs(max_concurrent=4)["max_concurrent"] == 4


@pytest.mark.usefixtures("restore")
def test_adaptive_bulkhead_reads_the_process_settings() -> None:
    """AdaptiveBulkhead() and 'auto' in the middleware take the configured rule and shares."""
    config.configure(
        env={
            "SEAWALL_ADAPTIVE__TOLERANCE": "1.3",
            "SEAWALL_ADAPTIVE__INITIAL_LIMIT": "8",
            "SEAWALL_ADAPTIVE__SHEDDABLE_SHARE": "0.5",
            "SEAWALL_BULKHEAD__MAX_CONCURRENT": "auto",
        }
    )
    pool = AdaptiveBulkhead()
    assert isinstance(pool.algorithm, Gradient2Limit)
    assert (pool.algorithm.tolerance, pool.limit) == (1.3, 8)
    assert sheddable_room(pool) == 4
    middleware = ResilienceMiddleware(
        Starlette(), max_concurrent=config.current().bulkhead.max_concurrent
    )
    assert middleware.shedding is not None
    assert middleware.shedding.bulkhead.limit == 8


@pytest.mark.usefixtures("restore")
def test_arguments_beat_the_process_settings() -> None:
    """A rule by name takes the configured bounds; an explicit share beats the configured one."""
    config.configure(
        env={"SEAWALL_ADAPTIVE__MAX_LIMIT": "50", "SEAWALL_ADAPTIVE__SHEDDABLE_SHARE": "0.5"}
    )
    pool = AdaptiveBulkhead("vegas", sheddable_share=0.75)
    assert isinstance(pool.algorithm, VegasLimit)
    assert pool.algorithm.max_limit == 50
    assert sheddable_room(pool) == 15


def test_kwargs_helper_builds_a_fresh_rule_each_call() -> None:
    """adaptive_bulkhead_kwargs() gives each bulkhead its own rule object, never a shared one."""
    settings = Settings()
    first = settings.adaptive_bulkhead_kwargs()["limit"]
    second = settings.adaptive_bulkhead_kwargs()["limit"]
    assert isinstance(first, Gradient2Limit)
    assert isinstance(second, Gradient2Limit)
    assert first is not second
    pool = AdaptiveBulkhead(**settings.adaptive_bulkhead_kwargs(window=0.5))
    assert pool.algorithm is not first


def test_section_defaults_are_the_constructors_defaults() -> None:
    """The adaptive section's defaults equal AdaptiveBulkhead's and Gradient2Limit's own."""
    defaults = AdaptiveSettings()
    for cls in (AdaptiveBulkhead, Gradient2Limit):
        for name, parameter in inspect.signature(cls).parameters.items():
            if hasattr(defaults, name) and parameter.default is not None:
                assert (name, getattr(defaults, name)) == (name, parameter.default)
    rule = Gradient2Limit()
    assert (rule.tolerance, rule.smoothing, rule.queue_size) == (1.2, 0.4, 4)
