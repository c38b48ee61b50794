"""OpenTelemetry exporter: exact values through the SDK's in-memory reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from seawall import Bulkhead, CircuitBreaker, CircuitOpenError, RateLimiter
from seawall.events import DegradedDecision, StoreDegraded, emit, listening
from seawall.metrics import otel
from seawall.testing import FakeClock

Points = dict[tuple[str, tuple[tuple[str, object], ...]], float]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An in-memory metric reader."""
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    """A fresh SDK meter provider read by ``reader``, shut down afterwards."""
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def metrics(provider: MeterProvider) -> Iterator[otel.OTelMetrics]:
    """seawall's instruments on the fresh provider, uninstalled afterwards."""
    with otel.install(meter_provider=provider) as handle:
        yield handle


def points(reader: InMemoryMetricReader) -> Points:
    """Every data point collected now, by (instrument, sorted attributes)."""
    data = reader.get_metrics_data()
    found: Points = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = tuple(sorted((point.attributes or {}).items()))
                    found[metric.name, attributes] = point.value  # type: ignore[union-attr]
    return found


def at(**attributes: str) -> tuple[tuple[str, object], ...]:
    """Data point attributes as ``points`` keys them: ``seawall.``-prefixed and sorted."""
    return tuple(sorted((f"seawall.{k}", v) for k, v in attributes.items()))


def _fail() -> None:
    raise ZeroDivisionError


def test_values_are_exact_after_a_scripted_sequence(
    clock: FakeClock, reader: InMemoryMetricReader, metrics: otel.OTelMetrics
) -> None:
    """Counters and gauges report exactly what the sequence did, and nothing else."""
    breaker = CircuitBreaker(name="db", max_failures=2, clock=clock)
    breaker.call(lambda: None)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(_fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    limiter = RateLimiter(2, burst=1, name="api", clock=clock)
    metrics.watch(limiter)
    limiter.try_acquire()
    limiter.try_acquire()
    limiter.acquire()  # waits 0.5 s on the fake clock
    Bulkhead(2, name="pool").try_acquire()
    emit(StoreDegraded("breaker", "db", "file:///tmp/x", "deny", True))
    emit(DegradedDecision("breaker", "db", "deny"))
    clock.advance(10)
    assert points(reader) == {
        ("seawall.calls", at(policy="breaker", name="db", outcome="failure")): 2,
        ("seawall.calls", at(policy="breaker", name="db", outcome="success")): 1,
        ("seawall.rejections", at(policy="breaker", name="db", reason="open")): 1,
        ("seawall.rejections", at(policy="limiter", name="api", reason="rate_limited")): 1,
        ("seawall.breaker.transitions", at(name="db", from_state="closed", to_state="open")): 1,
        ("seawall.breaker.state", at(name="db")): 1,
        ("seawall.limiter.waits", at(name="api")): 1,
        ("seawall.limiter.wait_time", at(name="api")): 0.5,
        ("seawall.limiter.tokens", at(name="api")): 1.0,
        ("seawall.bulkhead.in_flight", at(name="pool")): 1,
        ("seawall.bulkhead.queued", at(name="pool")): 0,
        ("seawall.store.degraded", at(policy="breaker", name="db")): 1,
        ("seawall.store.degraded_decisions", at(policy="breaker", name="db", mode="deny")): 1,
    }


def test_counters_are_cumulative_across_collections(
    reader: InMemoryMetricReader, metrics: otel.OTelMetrics
) -> None:
    """A second collection reports the running total, not the change since the first."""
    breaker = CircuitBreaker(name="db")
    key = ("seawall.calls", at(policy="breaker", name="db", outcome="success"))
    breaker.call(lambda: None)
    assert points(reader)[key] == 1
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    assert points(reader)[key] == 3


def test_uninstall_stops_listening_and_reporting(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    """After uninstall nobody listens and the instruments report no data points."""
    handle = otel.install(meter_provider=provider)
    CircuitBreaker(name="db").call(lambda: None)
    assert len(points(reader)) == 1
    handle.uninstall()
    handle.uninstall()
    assert listening() is False
    CircuitBreaker(name="db").call(lambda: None)
    assert points(reader) == {}


def test_watch_refuses_what_is_not_a_policy(metrics: otel.OTelMetrics) -> None:
    """watch() raises TypeError naming what it accepts."""
    with pytest.raises(TypeError, match="CircuitBreaker, RateLimiter"):
        metrics.watch(object())


def test_a_missing_opentelemetry_api_names_the_extra() -> None:
    """Without opentelemetry-api, importing the exporter says which extra to install."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "try:\n    import seawall.metrics.otel\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'seawall[otel]'" in out.stdout
