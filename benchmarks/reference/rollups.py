"""Grouped NaN-aware sums with numpy: what a user would write for the roll-up step.

Rows (meters) are sorted by group and each group's block is reduced with `np.add.reduceat`,
missing values counted as absent rather than zero, exactly the contract of the Rust
`meters.grouped_nansum` (a group with no value in a column is NaN there, rows of group
0xFFFFFFFF are skipped)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NO_GROUP = np.uint32(0xFFFF_FFFF)


def grouped_nansum(
    values: npt.NDArray[np.float64], group_of_row: npt.NDArray[np.uint32], groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]]:
    """(sums, counts), each (groups, columns), of the rows of each group."""
    cols = values.shape[1]
    sums = np.full((groups, cols), np.nan)
    counts = np.zeros((groups, cols), np.uint32)
    keep = group_of_row != NO_GROUP
    g = group_of_row[keep]
    if g.size == 0:
        return sums, counts
    if int(g.max()) >= groups:
        raise ValueError(f"group {int(g.max())} out of range for {groups} groups")
    order = np.argsort(g, kind="stable")  # stable: rows keep their order within a group
    g, v = g[order], values[keep][order]
    present = ~np.isnan(v)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    s = np.add.reduceat(np.where(present, v, 0.0), starts, axis=0)
    c = np.add.reduceat(present.astype(np.uint32), starts, axis=0)
    sums[g[starts]] = np.where(c > 0, s, np.nan)
    counts[g[starts]] = c
    return sums, counts
