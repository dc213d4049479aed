"""Hourly stack emissions with numpy, written from HJ 75-2017 as read in reference/cems/README.md:
the reference the Rust pipeline is checked and benchmarked against.

Per minute: the mean of the minute's valid (N or T) real-time readings of each variable. Per
hour: valid with at least 45 valid minutes (scaled by the minutes the unit operated); the hourly
concentration is flow-weighted over minutes where both are valid; the flow rate is the mean of
valid minutes; mass = k x concentration x flow rate x operating fraction (the sum of the minute
masses when every minute is valid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

VALID_FLAGS = (ord("N"), ord("T"))
STOPPED = ord("F")


@dataclass(frozen=True)
class Hours:
    hour: npt.NDArray[np.int64]
    conc: npt.NDArray[np.float64]
    flow: npt.NDArray[np.float64]
    mass: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]


def minute_means(
    t_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(minute index, mean of valid readings per minute; NaN without one)."""
    minute = t_ms // 60_000
    minutes, inv = np.unique(minute, return_inverse=True)
    ok = np.isin(flags, VALID_FLAGS) & np.isfinite(values)
    sums = np.bincount(inv, np.where(ok, values, 0.0), minutes.size)
    counts = np.bincount(inv, ok.astype(np.float64), minutes.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return minutes, np.where(counts > 0, sums / counts, np.nan)


def hourly_mass(
    minute: npt.NDArray[np.int64],
    flow_per_h: npt.NDArray[np.float64],
    conc: npt.NDArray[np.float64],
    k: float,
    stopped: npt.NDArray[np.bool_] | None = None,
    min_valid_minutes: int = 45,
) -> Hours:
    """Hourly values of one channel from its minute values (NaN = not valid) and the flow's."""
    hour = minute // 60
    hours, inv = np.unique(hour, return_inverse=True)
    n = hours.size
    operating = np.full(minute.size, True) if stopped is None else ~stopped
    op = np.bincount(inv, operating.astype(np.float64), n)
    qv = np.isfinite(flow_per_h) & operating
    cv = np.isfinite(conc) & operating
    both = qv & cv
    q_sum = np.bincount(inv, np.where(qv, flow_per_h, 0.0), n)
    q_n = np.bincount(inv, qv.astype(np.float64), n)
    cq = np.bincount(inv, np.where(both, conc * flow_per_h, 0.0), n)
    q_both = np.bincount(inv, np.where(both, flow_per_h, 0.0), n)
    c_n = np.bincount(inv, cv.astype(np.float64), n)
    need = np.maximum(1, np.ceil(min_valid_minutes * op / 60))
    valid = (c_n >= need) & (q_n >= need) & (op > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        conc_h = np.where(valid, cq / q_both, np.nan)
        flow_h = np.where(valid, q_sum / q_n, np.nan)
    mass = k * conc_h * flow_h * op / 60
    return Hours(hours, conc_h, flow_h, mass, valid)
