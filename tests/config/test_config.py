"""seawall.config: the Settings tree, its keyword-argument helpers, configure() and current()."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from seawall import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    GracefulShutdown,
    Heartbeat,
    KeyedRateLimiter,
    RateLimiter,
    Retry,
    Watchdog,
)
from seawall.config import (
    BulkheadSettings,
    CircuitBreakerSettings,
    RateLimiterSettings,
    RetrySettings,
    Settings,
    StoreSettings,
    configure,
    current,
    load_settings,
)
from seawall.testing import FakeClock


def test_defaults_match_the_policy_constructors() -> None:
    """Settings() holds the same defaults the constructors use without arguments."""
    settings = Settings()
    assert settings.circuit_breaker_kwargs() == {
        "max_failures": 5,
        "reset_timeout": 60.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
    }
    assert settings.bulkhead_kwargs() == {"max_concurrent": 10, "max_wait": 0.0, "max_queue": None}
    assert settings.keyed_rate_limiter_kwargs() == {
        "rate": 10.0,
        "per": 1.0,
        "burst": None,
        "max_keys": 10_000,
    }
    assert settings.retry_kwargs() == {
        "attempts": 3,
        "initial": 0.1,
        "maximum": 10.0,
        "multiplier": 2.0,
        "jitter": True,
        "deadline": None,
    }
    assert settings.shutdown_kwargs() == {"timeout": 30.0, "default_callback_timeout": None}
    assert settings.heartbeat_kwargs() == {"interval": 10.0}
    assert settings.watchdog_kwargs() == {"timeout": 30.0}
    assert settings.store == StoreSettings(url="memory://", timeout=0.1, degraded="local")


def test_breaker_built_from_settings_uses_them(clock: FakeClock) -> None:
    """A breaker from circuit_breaker_kwargs() opens after max_failures and probes after reset."""
    settings = Settings(circuit_breaker=CircuitBreakerSettings(max_failures=2, reset_timeout=4))
    breaker = CircuitBreaker(**settings.circuit_breaker_kwargs(), clock=clock)
    for _ in range(2):
        breaker.admit().failure()
    states = [breaker.state]
    clock.advance(4.0)
    states.append(breaker.state)
    assert states == [CircuitState.OPEN, CircuitState.HALF_OPEN]


def test_argument_overrides_win(clock: FakeClock) -> None:
    """An override given to the helper beats the settings value."""
    settings = Settings(circuit_breaker=CircuitBreakerSettings(max_failures=2))
    breaker = CircuitBreaker(**settings.circuit_breaker_kwargs(max_failures=1), clock=clock)
    breaker.admit().failure()
    assert breaker.state is CircuitState.OPEN


def test_every_helper_constructs_its_policy(tmp_path: Path, clock: FakeClock) -> None:
    """Each helper's kwargs construct the real policy, which then reports those values."""
    settings = Settings(
        rate_limiter=RateLimiterSettings(
            default_rate=4, default_per=2, default_burst=6, max_keys=9
        ),
        bulkhead=BulkheadSettings(max_concurrent=3, max_wait=0.5, max_queue=2),
        retry=RetrySettings(attempts=4, initial=0.5, maximum=2, jitter=False, deadline=9),
    )
    limiter = RateLimiter(**settings.rate_limiter_kwargs(), clock=clock)
    assert (limiter.rate, limiter.per, limiter.burst) == (4.0, 2.0, 6.0)
    keyed = KeyedRateLimiter(**settings.keyed_rate_limiter_kwargs(), clock=clock)
    assert (keyed.burst, keyed.max_keys) == (6.0, 9)
    bulkhead = Bulkhead(**settings.bulkhead_kwargs(), clock=clock)
    assert (bulkhead.max_concurrent, bulkhead.max_wait, bulkhead.max_queue) == (3, 0.5, 2)
    retry = Retry(**settings.retry_kwargs(), clock=clock)
    assert (retry.attempts, retry.backoff.initial, retry.backoff.maximum) == (4, 0.5, 2.0)
    assert (retry.backoff.jitter, retry.deadline) == (False, 9.0)
    assert GracefulShutdown(**settings.shutdown_kwargs(), clock=clock).timeout == 30.0
    heartbeat = Heartbeat(tmp_path / "hb", **settings.heartbeat_kwargs(interval=2), clock=clock)
    assert heartbeat.interval == 2.0
    assert Watchdog(**settings.watchdog_kwargs(), clock=clock).timeout == 30.0


def test_guide_file_settings_construct_policies(tmp_path: Path, clock: FakeClock) -> None:
    """A breaker from a kstlib-style file admits exactly half_open_max_calls probes at once."""
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(
        "resilience:\n  circuit_breaker:\n    max_failures: 1\n    reset_timeout: 10\n"
        "    half_open_max_calls: 3\n  shutdown:\n    default_timeout: 30\n",
        encoding="utf-8",
    )
    settings = load_settings(path, env={})
    breaker = CircuitBreaker(**settings.circuit_breaker_kwargs(), clock=clock)
    breaker.admit().failure()
    clock.advance(10.0)
    probes = [breaker.admit() for _ in range(3)]
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    assert len(probes) == 3
    assert GracefulShutdown(**settings.shutdown_kwargs(), clock=clock).timeout == 30.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CircuitBreakerSettings(max_failures=0),
         "CircuitBreakerSettings: circuit_breaker.max_failures must be >= 1, got 0"),
        (lambda: CircuitBreakerSettings(reset_timeout="60"),  # type: ignore[arg-type]
         "CircuitBreakerSettings: circuit_breaker.reset_timeout must be a number, got '60' (str)"),
        (lambda: RetrySettings(initial=3, maximum=1),
         "RetrySettings: retry.maximum must be >= retry.initial (3.0), got 1.0"),
        (lambda: StoreSettings(degraded="fail"),
         "StoreSettings: store.degraded must be one of 'local', 'allow', 'deny', got 'fail'"),
    ],
)  # fmt: skip
def test_settings_built_in_code_are_checked(build: object, message: str) -> None:
    """A section built in code with a bad value raises ConfigError naming class, key and value."""
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert str(caught.value) == message


def test_ints_become_floats_for_float_keys() -> None:
    """An int given for a float key is stored as a float."""
    value = CircuitBreakerSettings(reset_timeout=60).reset_timeout
    assert (value, type(value)) == (60.0, float)


def test_settings_are_frozen_and_hashable() -> None:
    """Settings cannot be changed in place, compare by value and hash alike."""
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.circuit_breaker.max_failures = 2  # type: ignore[misc]
    assert hash(settings) == hash(Settings())
    changed = dataclasses.replace(settings, watchdog=dataclasses.replace(settings.watchdog))
    assert changed == settings


def test_wrong_section_type_is_refused() -> None:
    """A section of the wrong class is a TypeError naming the section."""
    with pytest.raises(TypeError, match=r"^watchdog must be a WatchdogSettings, got \{\}$"):
        Settings(watchdog={})  # type: ignore[arg-type]


def test_origin_of_unknown_key_suggests() -> None:
    """origin() of an unknown key raises ConfigError with the closest key."""
    with pytest.raises(ConfigError) as caught:
        Settings().origin("watchdog.timeot")
    assert str(caught.value) == "unknown key 'watchdog.timeot'; did you mean 'watchdog.timeout'?"


def test_configure_with_settings_installs_them() -> None:
    """configure(settings) makes current() return that very object."""
    settings = Settings(bulkhead=BulkheadSettings(max_concurrent=2))
    assert configure(settings) is settings
    assert current() is settings


def test_configure_with_path_loads_file_and_env(tmp_path: Path) -> None:
    """configure(path) loads the file with the given environment on top."""
    path = tmp_path / "s.yml"
    path.write_text("resilience:\n  watchdog:\n    timeout: 5\n", encoding="utf-8")
    configure(path, env={"SEAWALL_HEARTBEAT__INTERVAL": "3"})
    assert (current().watchdog.timeout, current().heartbeat.interval) == (5.0, 3.0)


def test_configure_without_source_reads_seawall_config(tmp_path: Path) -> None:
    """configure() with no source reads the file SEAWALL_CONFIG names."""
    path = tmp_path / "s.yml"
    path.write_text("resilience:\n  watchdog:\n    timeout: 6\n", encoding="utf-8")
    configure(env={"SEAWALL_CONFIG": str(path)})
    assert current().watchdog.timeout == 6.0


def test_failed_configure_keeps_the_previous_settings(tmp_path: Path) -> None:
    """A configure() that raises leaves current() unchanged."""
    settings = configure(Settings(bulkhead=BulkheadSettings(max_concurrent=2)))
    with pytest.raises(ConfigError):
        configure(env={"SEAWALL_BULKHEAD__MAX_CONCURRENT": "0"})
    assert current() is settings
