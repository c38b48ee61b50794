"""Adaptive bulkheads in the metrics: limit and in-flight gauges, sheds counted by priority."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from seawall import AdaptiveBulkhead, AIMDLimit
from seawall.metrics import otel, prometheus


def _bulkhead(name: str) -> AdaptiveBulkhead:
    """AIMD at 2, each call one window."""
    return AdaptiveBulkhead(AIMDLimit(initial_limit=2), window=0.0, window_samples=1, name=name)


def _script(bulkhead: AdaptiveBulkhead) -> None:
    """Two calls in flight, then one sheddable and two default sheds; one call ends (2 -> 3)."""
    first = bulkhead.acquire()
    bulkhead.acquire()
    bulkhead.try_acquire("sheddable")
    bulkhead.try_acquire()
    bulkhead.try_acquire()
    first.success()


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A fresh registry with seawall's metrics installed."""
    registry = CollectorRegistry()
    with prometheus.install(registry=registry):
        yield registry


def test_prometheus_gauges_and_sheds_by_priority(registry: CollectorRegistry) -> None:
    """After the script: limit 3, 1 in flight, sheds 1 sheddable and 2 default."""
    _script(_bulkhead("api"))
    got = [
        registry.get_sample_value("seawall_adaptive_limit", {"name": "api"}),
        registry.get_sample_value("seawall_adaptive_in_flight", {"name": "api"}),
        registry.get_sample_value(
            "seawall_rejections_total",
            {"policy": "bulkhead", "name": "api", "reason": "shed_sheddable"},
        ),
        registry.get_sample_value(
            "seawall_rejections_total",
            {"policy": "bulkhead", "name": "api", "reason": "shed_default"},
        ),
    ]
    assert got == [3, 1, 1, 2]


def test_prometheus_watched_bulkhead_reads_live() -> None:
    """A watched adaptive bulkhead shows its limit (2) before any event."""
    registry = CollectorRegistry()
    with prometheus.install(registry=registry) as handle:
        handle.watch(_bulkhead("idle"))
        assert registry.get_sample_value("seawall_adaptive_limit", {"name": "idle"}) == 2


def test_otel_gauges() -> None:
    """The OpenTelemetry instruments report limit 3 and 1 in flight after the script."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        with otel.install(meter_provider=provider):
            _script(_bulkhead("api"))
            data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is not None
    found = {
        metric.name: [p.value for p in metric.data.data_points]  # type: ignore[union-attr]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name.startswith("seawall.adaptive")
    }
    assert found == {"seawall.adaptive.limit": [3], "seawall.adaptive.in_flight": [1]}
