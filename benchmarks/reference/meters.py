"""Interval consumption from register readings, formulated as the register interpolated at period
boundaries (the kernel instead distributes each increase over the periods it spans)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def unwrap_register(
    value: npt.NDArray[np.float64], rollover: float | None
) -> npt.NDArray[np.float64]:
    """Adds the register size after each fall, so a wrapping register becomes monotonic."""
    if rollover is None:
        return value
    falls = np.concatenate([[0.0], np.cumsum(np.diff(value) < 0) * rollover])
    return value + falls


def interval_consumption(
    t_ns: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
    origin_ns: int,
    step_ns: int,
    rollover: float | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(slots, consumption, coverage) of one meter whose sorted readings have no gap or reset."""
    register = unwrap_register(value, rollover)
    first = (int(t_ns[0]) - origin_ns) // step_ns
    last = (int(t_ns[-1]) - 1 - origin_ns) // step_ns
    slots = np.arange(first, last + 1, dtype=np.int64)
    bounds = origin_ns + step_ns * np.arange(first, last + 2, dtype=np.int64)
    clipped = np.clip(bounds, t_ns[0], t_ns[-1])
    at_bounds = np.interp(clipped.astype(np.float64), t_ns.astype(np.float64), register)
    return slots, np.diff(at_bounds), np.diff(clipped) / step_ns
