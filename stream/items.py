"""What flows between the steps: whole batches of cells, never one Python object per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CellBatch:
    """Cells of one product: values[var][i] belongs to (rows[i], slots[i])."""

    product: str
    rows: npt.NDArray[np.int64]
    slots: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[np.generic]]
    closed: npt.NDArray[np.bool_] | None = None
    """Which cells hold a final value (None: all do). A still-open period's value depends on
    how inputs were batched; alerts judge only final ones."""

    def __len__(self) -> int:
        return int(self.rows.size)

    def select(self, sel: npt.NDArray[np.intp]) -> CellBatch:
        return CellBatch(
            self.product,
            self.rows[sel],
            self.slots[sel],
            {k: v[sel] for k, v in self.values.items()},
            None if self.closed is None else self.closed[sel],
        )
