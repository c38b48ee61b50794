"""What the demo says about each phase: what the viewer is about to see, then what happened.

A phase opens with its description (from the schedule: what the upstream does and which policy
answers it) and closes with a recap of the requests that finished during it, by outcome, naming
who got the refusals: the 429s of a healthy phase are the greedy client's, on purpose, and the
viewer should not have to guess that. In an ``--adaptive`` run the clients are grouped by
priority, and a recap says which priorities the shed 503s went to.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._schedule import Phase

__all__ = ["ADAPTIVE_LABELS", "LABELS", "SHED_ORDER", "opening", "recap"]

#: Outcome keys and the short labels the status and the recaps use for them.
LABELS = (
    ("fresh", "served"),
    ("degraded", "degraded"),
    ("rate_limited", "429"),
    ("overloaded", "shed 503"),
    ("circuit_open", "open 503"),
    ("timeout", "504"),
    ("error", "errors"),
)

#: The outcomes an ``--adaptive`` run can have (no rate limit, fallback or breaker there).
ADAPTIVE_LABELS = tuple(
    item for item in LABELS if item[0] in ("fresh", "overloaded", "timeout", "error")
)

#: Request priorities, in the order the status and the summary show their sheds.
SHED_ORDER = ("critical", "default", "sheddable")

Tally = Mapping[tuple[str, str], int]
"""Finished requests by ``(client group, outcome)``."""


def opening(phase: Phase) -> str:
    """The line that announces ``phase``."""
    return f"phase {phase.name}: {phase.description}"


def recap(
    phase: Phase,
    before: Tally,
    after: Tally,
    *,
    explain: bool = True,
    limits: tuple[int | None, int | None] | None = None,
) -> str:
    """What finished during ``phase``: ``after`` minus ``before``, by outcome, with who got 429.

    ``explain`` adds why the greedy client gets its 429s (said once per run is enough). When
    the clients are grouped by priority, the shed 503s are given by priority; ``limits`` (an
    adaptive limit at the phase's start and end) adds how the limit moved.
    """
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    by_outcome = {key: sum(n for (_, o), n in delta.items() if o == key) for key, _ in LABELS}
    total = sum(by_outcome.values())
    shown = [f"{label} {by_outcome[key]}" for key, label in LABELS if by_outcome[key]]
    text = f"end of {phase.name}: {total} requests finished"
    if shown:
        text += ": " + ", ".join(shown)
    limited = by_outcome["rate_limited"]
    if limited:
        greedy = delta.get(("greedy", "rate_limited"), 0)
        who = "all 429s" if greedy == limited else f"{greedy} of the 429s"
        why = ", which asks over its limit on purpose" if explain else ""
        text += f" ({who} went to the greedy client{why})"
    shed = {p: delta.get((p, "overloaded"), 0) for p in SHED_ORDER}
    if by_outcome["overloaded"] and sum(shed.values()) == by_outcome["overloaded"]:
        sent = {p: sum(n for (g, _), n in delta.items() if g == p) for p in SHED_ORDER}
        text += " (shed by priority: "
        text += ", ".join(f"{p} {shed[p]} of {sent[p]}" for p in SHED_ORDER) + ")"
    if limits is not None:
        text += f"; the adaptive limit went from {limits[0]} to {limits[1]}"
    return text
