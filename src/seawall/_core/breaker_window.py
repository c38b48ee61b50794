"""The breaker's time-based sliding window: the calls of the last N seconds, in buckets.

Theory of operation
-------------------
Time is cut into buckets of ``width = window_duration / window_buckets`` seconds, aligned on
multiples of ``width`` (bucket ``i`` covers ``[i * width, (i + 1) * width)``). A call recorded at
``now`` goes into bucket ``floor(now / width)``. At ``now`` the window holds the buckets whose
index ``i`` satisfies ``current - window_buckets < i <= current``: the last ``window_buckets``
buckets, the current one included, so the window covers between ``(window_buckets - 1) * width``
and ``window_duration`` seconds of calls (resilience4j's TIME_BASED window and Polly's
sampling duration work the same way). A bucket stops counting exactly when the clock reaches
``(i + window_buckets) * width``.

Each bucket is a list ``[index, calls, failures, slow]``, oldest first, at most
``window_buckets`` of them. Expired buckets are dropped when a call is recorded, which is the
only moment the window is read, so the ratio a call sees is exact.

A clock that went back (wall time in a shared store) can leave buckets with an index later
than the current one: they are folded into the current bucket. Their calls keep counting
(never lost, never counted twice) and expire a little later than they would have.

Pure functions over a ``deque``; the Redis store's ``lua/_window.lua`` mirrors them.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["Bucket", "add_call", "bucket_index", "expire", "totals"]

Bucket = list[int]
"""``[index, calls, failures, slow]``."""


def bucket_index(now: float, width: float) -> int:
    """The index of the bucket that ``now`` falls in."""
    return math.floor(now / width)


def expire(buckets: deque[Bucket], index: int, span: int) -> None:
    """Drop the buckets that left the window at bucket ``index``; fold later ones into it."""
    while buckets and index - buckets[0][0] >= span:
        buckets.popleft()
    if buckets and buckets[-1][0] > index:
        # The clock went back: what was recorded "later" counts as now.
        folded = [index, 0, 0, 0]
        while buckets and buckets[-1][0] >= index:
            later = buckets.pop()
            folded[1] += later[1]
            folded[2] += later[2]
            folded[3] += later[3]
        buckets.append(folded)


def add_call(buckets: deque[Bucket], index: int, failed: int, slow: int) -> None:
    """Count one call (``failed`` and ``slow`` are 0 or 1) in bucket ``index``, the newest."""
    if buckets and buckets[-1][0] == index:
        last = buckets[-1]
        last[1] += 1
        last[2] += failed
        last[3] += slow
    else:
        buckets.append([index, 1, failed, slow])


def totals(buckets: deque[Bucket]) -> tuple[int, int, int]:
    """``(calls, failures, slow)`` over the buckets."""
    calls = failures = slow = 0
    for _, c, f, s in buckets:
        calls += c
        failures += f
        slow += s
    return calls, failures, slow
