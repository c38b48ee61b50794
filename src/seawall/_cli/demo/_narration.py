"""What the demo says about each phase: what the viewer is about to see, then what happened.

A phase opens with its description (from the schedule: what the upstream does and which policy
answers it) and closes with a recap of the requests that finished during it, by outcome, naming
who got the refusals: the 429s of a healthy phase are the greedy client's, on purpose, and the
viewer should not have to guess that.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._schedule import Phase

__all__ = ["LABELS", "opening", "recap"]

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

Tally = Mapping[tuple[str, str], int]
"""Finished requests by ``(client group, outcome)``."""


def opening(phase: Phase) -> str:
    """The line that announces ``phase``."""
    return f"phase {phase.name}: {phase.description}"


def recap(phase: Phase, before: Tally, after: Tally, *, explain: bool = True) -> str:
    """What finished during ``phase``: ``after`` minus ``before``, by outcome, with who got 429.

    ``explain`` adds why the greedy client gets its 429s (said once per run is enough).
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
    return text
