"""The demo's script: when the upstream misbehaves, and how, as a function of elapsed time.

A run of ``duration`` seconds is cut into phases::

    healthy | slow | 5xx burst | 429 | stalled | recovered

The first tenth is healthy (a warm-up), the last quarter (at least 2 s) is recovered so both
breakers have time to close again, and the four trouble phases share what is left equally.
Every outcome the demo promises (429s, shed 503s, a trip and a recovery of each breaker) is
caused by the phase structure and the traffic shape, not by luck, as long as a phase lasts
longer than the protected app's request timeout (:data:`REQUEST_TIMEOUT`).

``seawall demo --adaptive`` has a script of its own (:func:`build_adaptive_schedule`), where
the upstream never misbehaves: its latency grows with load, and the load comes and goes::

    steady | overload | recovered
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "REQUEST_TIMEOUT",
    "Phase",
    "Schedule",
    "build_adaptive_schedule",
    "build_schedule",
]

MIN_DURATION = 5.0
MAX_DURATION = 55.0

#: The protected app's per-request timeout: a stalled upstream turns into 504s after this.
REQUEST_TIMEOUT = 0.5
#: How long the upstream takes to answer in the "slow" phase (served, but slots stay held).
SLOW_LATENCY = 0.3
#: How long the upstream takes in the "stalled" phase (longer than any timeout in the demo).
STALL_LATENCY = 1.5

# What the viewer sees in each phase, and why. The numbers are the service's settings
# (_service.py); a test checks that they agree.
_HEALTHY = (
    "healthy upstream. The 5 steady clients stay under their limit of 5 requests a second "
    "and are served; the greedy client asks far faster, so the middleware refuses most of "
    "its requests with 429 on purpose: that is the per-client limit at work"
)
_TROUBLE = (
    (
        "slow",
        "upstream slow (0.3 s a quote). A flash crowd of 24 clients arrives at once: 8 "
        "requests fit the bulkhead, the others are shed with 503 at once instead of queueing",
    ),
    (
        "5xx",
        "upstream answers 503. The transport retries, then the upstream breaker opens and "
        "calls fail fast; the service answers with its last good quote (degraded). Every "
        "0.5 s the breaker lets one probe through: it fails, so the breaker opens again",
    ),
    (
        "429",
        "upstream answers 429 with Retry-After. The host limiter holds calls back (0.25 s at "
        "most), and the service serves its last good quote (degraded) meanwhile",
    ),
    (
        "stalled",
        "upstream stalls (1.5 s). Requests hit the 0.5 s request timeout (504); after 3 of "
        "them the app's own breaker opens and answers 503 at once",
    ),
)
_RECOVERED = (
    "upstream recovered. After 0.5 s each open breaker lets one probe through and closes "
    "when it succeeds; quotes are fresh again"
)


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the run: ``[start, end)`` seconds from the start."""

    name: str
    start: float
    end: float
    description: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """The phases of one run, in order, covering ``[0, duration)``."""

    duration: float
    phases: tuple[Phase, ...]

    def phase_at(self, elapsed: float) -> Phase:
        """The phase in force ``elapsed`` seconds after the start (the last one after the end)."""
        for phase in self.phases:
            if elapsed < phase.end:
                return phase
        return self.phases[-1]

    def phase(self, name: str) -> Phase:
        """The phase called ``name``."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)


def build_schedule(duration: float) -> Schedule:
    """The schedule for a run of ``duration`` seconds (``MIN_DURATION`` to ``MAX_DURATION``)."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(
            f"duration must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds, "
            f"got {duration!r}"
        )
    lead = 0.1 * duration
    tail = max(0.25 * duration, 2.0)
    step = (duration - lead - tail) / len(_TROUBLE)
    phases = [Phase("healthy", 0.0, lead, _HEALTHY)]
    for i, (name, text) in enumerate(_TROUBLE):
        phases.append(Phase(name, lead + i * step, lead + (i + 1) * step, text))
    phases.append(Phase("recovered", duration - tail, duration, _RECOVERED))
    return Schedule(duration, tuple(phases))


# The --adaptive run (numbers from _adaptive.py and _adaptive_traffic.py; a test checks them).
_STEADY = (
    "steady traffic, within the upstream's capacity (4 workers, 0.05 s a quote: 80 quotes a "
    "second): 2 checkout clients (critical), 5 browsing clients (default) and 3 report jobs "
    "(sheddable) ask again 0.1 s after each answer. The adaptive limit starts at 20 and "
    "learns the normal latency; it grows only while at least half of it is in flight, and "
    "nothing is shed"
)
_OVERLOAD = (
    "a crowd arrives on top: 100 new requests a second (60 page views, default; 40 report "
    "requests, sheddable) for an upstream that serves 80. It queues, latency grows, so the "
    "limit falls. A request over its priority's ceiling is answered 503 with Retry-After at "
    "once: sheddable ones from 75% of the limit, default ones at it, critical ones only past "
    "125%, so reports are refused first, page views next, checkouts last"
)
_RECOVER = (
    "the crowd thins out to 20 new requests a second (12 page views, 8 report requests), a "
    "load the upstream can serve. Latency is back to normal, shedding stops once the "
    "crowd's last queued requests are done, and the limit grows back (by 1.6 a window at "
    "most) while at least half of it is in flight"
)


def build_adaptive_schedule(duration: float) -> Schedule:
    """The ``--adaptive`` schedule for a run of ``duration`` seconds (5 to 55).

    Steady for a quarter of the run but at least 2 s (Gradient2 averages its first 10 windows
    of 0.2 s into its baseline latency: overload inside them would teach it a slow baseline),
    recovered for the last 30%, overload in between.
    """
    build_schedule(duration)  # the same bounds
    steady = max(0.25 * duration, 2.0)
    recover = duration - 0.3 * duration
    return Schedule(
        duration,
        (
            Phase("steady", 0.0, steady, _STEADY),
            Phase("overload", steady, recover, _OVERLOAD),
            Phase("recovered", recover, duration, _RECOVER),
        ),
    )
