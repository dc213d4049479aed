"""The largest fleet that stays real-time: double while it does, then bisect (geometrically)
between the last size that did and the first that did not, within a time budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from carbonstream.bench.capacity import StepResult
from carbonstream.bench.fleet import Fleet

PRECISION = 1.25
"""Bisection stops when the first failing size is within this factor of the last good one."""


def largest_realtime(
    make: Callable[[int], Fleet],
    run: Callable[[Fleet], StepResult],
    start: int,
    largest: int,
    budget_s: float,
) -> tuple[int | None, list[StepResult]]:
    """(largest real-time size found or None, every step run). A failing `start` is halved
    until a size passes (or 1 fails); sizes above `largest` are not tried."""
    deadline = time.monotonic() + budget_s
    steps: list[StepResult] = []
    good: int | None = None
    bad: int | None = None
    n = min(start, largest)
    while time.monotonic() < deadline:
        r = run(make(n))
        steps.append(r)
        if r.realtime:
            good = n
            if bad is not None or n >= largest:
                break
            n = min(2 * n, largest)
        else:
            bad = n
            if good is not None or n <= 1:
                break
            n = max(1, n // 2)
    while good is not None and bad is not None and bad / good > PRECISION:
        if time.monotonic() >= deadline:
            break
        mid = round(math.sqrt(good * bad))
        if mid in (good, bad):
            break
        r = run(make(mid))
        steps.append(r)
        if r.realtime:
            good = mid
        else:
            bad = mid
    return good, steps
