"""Prometheus exporter: exact registry values after a scripted sequence, install/uninstall."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from seawall import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    KeyedRateLimiter,
    RateLimiter,
    Watchdog,
)
from seawall._monitor import settle
from seawall.events import DegradedDecision, StoreDegraded, emit, listening
from seawall.metrics import prometheus
from seawall.testing import FakeClock


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test, so values start at zero."""
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Iterator[prometheus.PrometheusMetrics]:
    """seawall's metrics installed into the fresh registry, uninstalled afterwards."""
    with prometheus.install(registry=registry) as handle:
        yield handle


def _fail() -> None:
    raise ZeroDivisionError


def _script(clock: FakeClock, metrics: prometheus.PrometheusMetrics) -> None:
    breaker = CircuitBreaker(name="db", max_failures=2, reset_timeout=10, clock=clock)
    breaker.call(lambda: None)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(_fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    limiter = RateLimiter(2, burst=1, name="api", clock=clock)
    keyed = KeyedRateLimiter(1, name="per-client", clock=clock)
    metrics.watch(limiter, keyed)
    limiter.try_acquire()
    limiter.try_acquire()
    limiter.acquire()  # waits 0.5 s on the fake clock
    keyed.try_acquire("a")
    keyed.try_acquire("b")
    Bulkhead(2, name="pool").try_acquire()
    emit(StoreDegraded("limiter", "api", "redis://cache", "local", True))
    for _ in range(3):
        emit(DegradedDecision("limiter", "api", "local"))
    with Watchdog(timeout=5, name="worker", clock=clock):
        clock.advance(5)
        settle(clock)
    clock.advance(10)  # the limiter's bucket is full again


def test_values_are_exact_after_a_scripted_sequence(
    clock: FakeClock, registry: CollectorRegistry, metrics: prometheus.PrometheusMetrics
) -> None:
    """Every metric holds exactly what the sequence did."""
    _script(clock, metrics)
    expected = [
        ("calls_total", {"policy": "breaker", "name": "db", "outcome": "success"}, 1),
        ("calls_total", {"policy": "breaker", "name": "db", "outcome": "failure"}, 2),
        ("rejections_total", {"policy": "breaker", "name": "db", "reason": "open"}, 1),
        ("rejections_total", {"policy": "limiter", "name": "api", "reason": "rate_limited"}, 1),
        (
            "breaker_transitions_total",
            {"name": "db", "from_state": "closed", "to_state": "open"},
            1,
        ),
        ("breaker_state", {"name": "db"}, 1),
        ("limiter_waits_total", {"name": "api"}, 1),
        ("limiter_wait_seconds_total", {"name": "api"}, 0.5),
        ("limiter_tokens", {"name": "api"}, 1.0),
        ("limiter_keys", {"name": "per-client"}, 2),
        ("bulkhead_in_flight", {"name": "pool"}, 1),
        ("bulkhead_queued", {"name": "pool"}, 0),
        ("store_degraded", {"policy": "limiter", "name": "api"}, 1),
        (
            "store_degraded_decisions_total",
            {"policy": "limiter", "name": "api", "mode": "local"},
            3,
        ),
        ("watchdog_firings_total", {"name": "worker"}, 1),
    ]
    actual = [
        (name, labels, registry.get_sample_value(f"seawall_{name}", labels))
        for name, labels, _ in expected
    ]
    assert actual == expected


def test_only_series_that_happened_are_exported(
    clock: FakeClock, registry: CollectorRegistry, metrics: prometheus.PrometheusMetrics
) -> None:
    """The counters list exactly the label sets seen; nothing is invented."""
    _script(clock, metrics)
    rejections = {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        if family.name == "seawall_rejections"
        for s in family.samples
    }
    assert rejections == {
        (("name", "db"), ("policy", "breaker"), ("reason", "open")): 1,
        (("name", "api"), ("policy", "limiter"), ("reason", "rate_limited")): 1,
    }


def test_a_watched_breaker_reports_its_state_before_any_event(
    registry: CollectorRegistry, metrics: prometheus.PrometheusMetrics
) -> None:
    """watch() makes a closed breaker show 0 and an unnamed one the empty label."""
    metrics.watch(CircuitBreaker(name="fresh"))
    unnamed = CircuitBreaker()
    unnamed.force_open()
    metrics.watch(unnamed)
    assert registry.get_sample_value("seawall_breaker_state", {"name": "fresh"}) == 0
    assert registry.get_sample_value("seawall_breaker_state", {"name": ""}) == 1


def test_watch_refuses_what_is_not_a_policy(metrics: prometheus.PrometheusMetrics) -> None:
    """watch() raises TypeError naming what it accepts."""
    with pytest.raises(TypeError, match="CircuitBreaker, RateLimiter"):
        metrics.watch("db")


def test_uninstall_removes_every_metric_and_stops_counting(registry: CollectorRegistry) -> None:
    """After uninstall the registry has no seawall metric and nobody listens."""
    handle = prometheus.install(registry=registry)
    CircuitBreaker(name="db").call(lambda: None)
    sample = ("seawall_calls_total", {"policy": "breaker", "name": "db", "outcome": "success"})
    assert registry.get_sample_value(*sample) == 1
    handle.uninstall()
    handle.uninstall()
    assert registry.get_sample_value(*sample) is None
    assert [f.name for f in registry.collect() if f.name.startswith("seawall")] == []
    assert listening() is False


def test_installing_twice_into_one_registry_is_refused(registry: CollectorRegistry) -> None:
    """A second install into the same registry raises until the first is uninstalled."""
    first = prometheus.install(registry=registry)
    with pytest.raises(ValueError, match="already registered"):
        prometheus.install(registry=registry)
    first.uninstall()
    prometheus.install(registry=registry).uninstall()
    assert listening() is False


def test_a_missing_prometheus_client_names_the_extra() -> None:
    """Without prometheus-client, importing the exporter says which extra to install."""
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "try:\n    import seawall.metrics.prometheus\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'seawall[prometheus]'" in out.stdout
