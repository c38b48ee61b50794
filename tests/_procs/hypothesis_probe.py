"""Property tests run by tests/test_hypothesis_profiles.py in a child pytest, never collected.

``record`` logs every example it is given to the file named by ``PROBE_LOG``; ``fails`` fails
on a value the derandomized search finds, so the child's report can be read.
"""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st


@given(st.integers(min_value=0, max_value=10**9))
def test_record(x: int) -> None:
    with open(os.environ["PROBE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{x}\n")


@given(st.integers(min_value=0, max_value=100))
def test_fails(x: int) -> None:
    assert x < 50
