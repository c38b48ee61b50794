"""OpenTelemetry metrics for seawall's policies (extra ``otel``).

``handle = seawall.metrics.otel.install()`` creates the instruments below on the meter
``"seawall"`` of the global meter provider (or the ``meter_provider=`` given) and keeps them
current from seawall's events. Every instrument is asynchronous (observable): values are kept
by a recorder inside seawall and reported when the SDK collects, so an event
never touches the OpenTelemetry SDK. Counters are cumulative from install time.

The instruments::

    instrument                        kind         attributes (seawall.*)
    --------------------------------  -----------  -----------------------------------
    seawall.breaker.state             gauge        name; 0 closed, 1 open, 2 half-open
    seawall.breaker.transitions       counter      name, from_state, to_state
    seawall.calls                     counter      policy, name, outcome
    seawall.rejections                counter      policy, name, reason
    seawall.limiter.waits             counter      name
    seawall.limiter.wait_time         counter (s)  name
    seawall.limiter.tokens            gauge        name (watched limiters)
    seawall.limiter.keys              gauge        name (watched keyed limiters)
    seawall.bulkhead.in_flight        gauge        name
    seawall.bulkhead.queued           gauge        name
    seawall.adaptive.limit            gauge        name (adaptive bulkheads)
    seawall.adaptive.in_flight        gauge        name (adaptive bulkheads)
    seawall.store.degraded            gauge        policy, name; 1 while degraded
    seawall.store.degraded_decisions  counter      policy, name, mode
    seawall.watchdog.firings          counter      name
    seawall.loop.stalls               counter      name
    seawall.loop.stalled              gauge        name; 1 while stalled

The OpenTelemetry API cannot delete instruments: after ``uninstall()`` they report nothing.
Install once per meter provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "seawall.metrics.otel needs opentelemetry-api: pip install 'seawall[otel]'"
    ) from error

from .._events import add_listener
from ._common import COUNTERS, Labels, Recorder

__all__ = ["OTelMetrics", "install"]

# Recorder counter id -> (instrument name, unit).
_COUNTER_NAMES = {
    "calls": ("seawall.calls", "{call}"),
    "rejections": ("seawall.rejections", "{rejection}"),
    "breaker_transitions": ("seawall.breaker.transitions", "{transition}"),
    "limiter_waits": ("seawall.limiter.waits", "{wait}"),
    "store_degraded_decisions": ("seawall.store.degraded_decisions", "{decision}"),
    "watchdog_firings": ("seawall.watchdog.firings", "{firing}"),
    "loop_stalls": ("seawall.loop.stalls", "{stall}"),
}

Callback = Callable[[CallbackOptions], Iterable[Observation]]


def install(meter_provider: MeterProvider | None = None) -> OTelMetrics:
    """Create seawall's instruments on ``meter_provider`` (default: the global one)."""
    return OTelMetrics(metrics.get_meter_provider() if meter_provider is None else meter_provider)


class OTelMetrics:
    """seawall's metrics as OpenTelemetry observable instruments; see the module docs."""

    def __init__(self, meter_provider: MeterProvider) -> None:
        from .. import __version__

        self._recorder = Recorder()
        self._installed = True
        meter = meter_provider.get_meter("seawall", __version__)
        for counter, (labels, description) in COUNTERS.items():
            name, unit = _COUNTER_NAMES[counter]
            meter.create_observable_counter(
                name, [self._counter(counter, labels)], unit=unit, description=description
            )
        meter.create_observable_counter(
            "seawall.limiter.wait_time",
            [self._observe(("name",), lambda r: {(k,): v for k, v in r.wait_seconds.items()})],
            unit="s",
            description="Seconds spent waiting for tokens.",
        )
        for name, unit, labels, read, description in _GAUGES:
            meter.create_observable_gauge(
                name, [self._observe(labels, read)], unit=unit, description=description
            )
        self._subscription = add_listener(self._recorder)

    def watch(self, *policies: object) -> None:
        """Read these breakers, limiters and bulkheads live at every collection."""
        for policy in policies:
            self._recorder.watch(policy)

    def uninstall(self) -> None:
        """Stop listening; the instruments report nothing from now on (idempotent)."""
        self._installed = False
        self._subscription.remove()
        self._recorder.forget()

    def __enter__(self) -> OTelMetrics:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def _counter(self, counter: str, labels: Labels) -> Callback:
        return self._observe(labels, lambda r: dict(r.counts(counter)))

    def _observe(
        self, labels: Labels, read: Callable[[Recorder], Mapping[Labels, float]]
    ) -> Callback:
        keys = tuple(f"seawall.{label}" for label in labels)

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if not self._installed:
                return []
            values = read(self._recorder)
            return [Observation(v, dict(zip(keys, k, strict=True))) for k, v in values.items()]

        return callback


_GAUGES: tuple[tuple[str, str, Labels, Callable[[Recorder], Mapping[Labels, float]], str], ...] = (
    ("seawall.breaker.state", "1", ("name",),
     lambda r: {(k,): v for k, v in r.breakers().items()},
     "Breaker state: 0 closed, 1 open, 2 half-open."),
    ("seawall.bulkhead.in_flight", "{call}", ("name",),
     lambda r: {(k,): v[0] for k, v in r.bulkheads().items()},
     "Calls holding a bulkhead slot."),
    ("seawall.bulkhead.queued", "{call}", ("name",),
     lambda r: {(k,): v[1] for k, v in r.bulkheads().items()},
     "Callers queued for a bulkhead slot."),
    ("seawall.adaptive.limit", "{call}", ("name",),
     lambda r: {(k,): v[0] for k, v in r.adaptive_bulkheads().items()},
     "An adaptive bulkhead's current concurrency limit."),
    ("seawall.adaptive.in_flight", "{call}", ("name",),
     lambda r: {(k,): v[1] for k, v in r.adaptive_bulkheads().items()},
     "Calls holding an adaptive bulkhead slot."),
    ("seawall.limiter.tokens", "{token}", ("name",),
     lambda r: {(k,): v for k, v in r.tokens().items()},
     "Tokens in a watched limiter's bucket."),
    ("seawall.limiter.keys", "{key}", ("name",),
     lambda r: {(k,): v for k, v in r.keys().items()},
     "Keys held by a watched keyed limiter."),
    ("seawall.store.degraded", "1", ("policy", "name"),
     lambda r: dict(r.degraded),
     "1 while a policy decides without its store."),
    ("seawall.loop.stalled", "1", ("name",),
     lambda r: {(k,): v for k, v in r.stalled.items()},
     "1 while an event loop is stalled."),
)  # fmt: skip
