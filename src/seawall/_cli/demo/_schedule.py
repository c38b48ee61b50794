"""The demo's script: when the upstream misbehaves, and how, as a function of elapsed time.

A run of ``duration`` seconds is cut into phases::

    healthy | slow | 5xx burst | 429 | stalled | recovered

The first tenth is healthy (a warm-up), the last quarter (at least 2 s) is recovered so both
breakers have time to close again, and the four trouble phases share what is left equally.
Every outcome the demo promises (429s, shed 503s, a trip and a recovery of each breaker) is
caused by the phase structure and the traffic shape, not by luck, as long as a phase lasts
longer than the protected app's request timeout (:data:`REQUEST_TIMEOUT`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "REQUEST_TIMEOUT",
    "Phase",
    "Schedule",
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
