"""Timing inside tests, for a loaded machine (pytest-xdist workers on every core, other work beside them).

A test that wants "fast" compares two timings taken in the same run (the code under test against a reference
that does the slow thing it must not do), each the best of a few runs: the minimum is the run that was not
interrupted, and a ratio holds at any load. Absolute times belong in benchmarks/.
"""
from __future__ import annotations

import time


def best_time(fn, repeat: int = 5) -> float:
    """The fastest of ``repeat`` calls of ``fn()``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
