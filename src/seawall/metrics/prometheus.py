"""Prometheus metrics for seawall's policies (extra ``prometheus``).

``handle = seawall.metrics.prometheus.install()`` registers the metrics below in the default
registry (or the ``registry=`` given) and keeps them current from seawall's events until
``handle.uninstall()``. Counters count from install time; everything is rendered at scrape
time from a recorder inside seawall, so an event costs no Prometheus lock.

The metrics::

    metric                                  labels                      from
    --------------------------------------  --------------------------  ----------------------
    seawall_breaker_state (gauge)           name                        0 closed, 1 open,
                                                                        2 half-open
    seawall_breaker_transitions_total       name, from_state, to_state  state changes
    seawall_calls_total                     policy, name, outcome       breaker outcomes
    seawall_rejections_total                policy, name, reason        every refusal
    seawall_limiter_waits_total             name                        grants after a wait
    seawall_limiter_wait_seconds_total      name                        time spent waiting
    seawall_limiter_tokens (gauge)          name                        watched limiters
    seawall_limiter_keys (gauge)            name                        watched keyed limiters
    seawall_bulkhead_in_flight (gauge)      name                        occupancy
    seawall_bulkhead_queued (gauge)         name                        occupancy
    seawall_adaptive_limit (gauge)          name                        adaptive bulkheads
    seawall_adaptive_in_flight (gauge)      name                        adaptive bulkheads
    seawall_store_degraded (gauge)          policy, name                1 while degraded
    seawall_store_degraded_decisions_total  policy, name, mode          degraded decisions
    seawall_watchdog_firings_total          name                        watchdog firings
    seawall_loop_stalls_total               name                        stalls noticed
    seawall_loop_stalled (gauge)            name                        1 while stalled
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "seawall.metrics.prometheus needs prometheus-client: pip install 'seawall[prometheus]'"
    ) from error

from .._events import add_listener
from ._common import COUNTERS, Labels, Recorder

__all__ = ["PrometheusMetrics", "install"]


def install(registry: CollectorRegistry | None = None) -> PrometheusMetrics:
    """Register seawall's metrics in ``registry`` (default: the global one) and start counting.

    Returns the handle to ``watch()`` policies with and to ``uninstall()``. Installing twice
    into one registry raises ValueError.
    """
    return PrometheusMetrics(REGISTRY if registry is None else registry)


class PrometheusMetrics:
    """seawall's metrics as one Prometheus collector; see the module docs for the list."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._recorder = Recorder()
        try:
            registry.register(self)
        except ValueError as error:
            raise ValueError(
                f"seawall metrics are already registered in {registry!r}; "
                "uninstall() the earlier handle first"
            ) from error
        self._subscription = add_listener(self._recorder)

    def watch(self, *policies: object) -> None:
        """Read these breakers, limiters and bulkheads live at every scrape (until uninstall).

        Gives ``seawall_limiter_tokens`` / ``seawall_limiter_keys`` for limiters, and current
        values for breakers and bulkheads before their first event.
        """
        for policy in policies:
            self._recorder.watch(policy)

    def uninstall(self) -> None:
        """Stop listening and remove every seawall metric from the registry (idempotent)."""
        if self._subscription.active:
            self._subscription.remove()
            self.registry.unregister(self)
        self._recorder.forget()

    def __enter__(self) -> PrometheusMetrics:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def describe(self) -> Iterator[Metric]:
        """The metric names (read once by the registry to refuse duplicates)."""
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        """Render every metric from the recorded values."""
        r = self._recorder
        for counter, (labels, documentation) in COUNTERS.items():
            family = CounterMetricFamily(f"seawall_{counter}", documentation, labels=labels)
            for values, count in r.counts(counter):
                family.add_metric(values, count)
            yield family
        yield _counter(
            "seawall_limiter_wait_seconds",
            "Seconds spent waiting for tokens.",
            ("name",),
            {(k,): v for k, v in r.wait_seconds.items()},
        )
        yield _gauge(
            "seawall_breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half-open.",
            ("name",),
            {(k,): v for k, v in r.breakers().items()},
        )
        bulkheads = r.bulkheads()
        yield _gauge(
            "seawall_bulkhead_in_flight",
            "Calls holding a bulkhead slot.",
            ("name",),
            {(k,): v[0] for k, v in bulkheads.items()},
        )
        yield _gauge(
            "seawall_bulkhead_queued",
            "Callers queued for a bulkhead slot.",
            ("name",),
            {(k,): v[1] for k, v in bulkheads.items()},
        )
        adaptive = r.adaptive_bulkheads()
        yield _gauge(
            "seawall_adaptive_limit",
            "An adaptive bulkhead's current concurrency limit.",
            ("name",),
            {(k,): v[0] for k, v in adaptive.items()},
        )
        yield _gauge(
            "seawall_adaptive_in_flight",
            "Calls holding an adaptive bulkhead slot.",
            ("name",),
            {(k,): v[1] for k, v in adaptive.items()},
        )
        yield _gauge(
            "seawall_limiter_tokens",
            "Tokens in a watched limiter's bucket.",
            ("name",),
            {(k,): v for k, v in r.tokens().items()},
        )
        yield _gauge(
            "seawall_limiter_keys",
            "Keys held by a watched keyed limiter.",
            ("name",),
            {(k,): v for k, v in r.keys().items()},
        )
        yield _gauge(
            "seawall_store_degraded",
            "1 while a policy decides without its store.",
            ("policy", "name"),
            r.degraded,
        )
        yield _gauge(
            "seawall_loop_stalled",
            "1 while an event loop is stalled.",
            ("name",),
            {(k,): v for k, v in r.stalled.items()},
        )


def _counter(
    name: str, documentation: str, labels: Labels, values: Mapping[Labels, float]
) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(label_values, value)
    return family


def _gauge(name: str, documentation: str, labels: Labels, values: Mapping[Labels, float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(label_values, value)
    return family
