"""Per-meter facts the meter step needs, as arrays: registry row, rollover, emission factor.

Read from the metadata database and cached; the cache reloads (at most once a second) when a batch
names a meter it does not know yet, so meters registered while the flow runs are picked up.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import numpy.typing as npt
import polars as pl

from storage.factors import FactorTable
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)

RELOAD_MIN_S = 1.0


class MeterLookup:
    def __init__(
        self, db: MetadataDB, factors: FactorTable, factor_version: int, axis: str
    ) -> None:
        self._db = db
        self._factors = factors
        self._factor_version = factor_version
        self._axis = axis
        self._rows = pl.DataFrame(schema={"meter": pl.String, "row": pl.Int64})
        self._attrs: dict[int, dict[str, object]] = {}
        self._rollover = np.empty(0, dtype=np.float64)
        self._factor_tables: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]] = {}
        """Year -> (factor per row, whether that row's factor was looked up)."""
        self._loaded_at = -np.inf
        self._reload()

    def _reload(self) -> None:
        infos = self._db.streams(self._axis)
        self._rows = pl.DataFrame(
            {"meter": [s.id for s in infos], "row": [s.idx for s in infos]},
            schema={"meter": pl.String, "row": pl.Int64},
        )
        self._attrs = {s.idx: s.attrs for s in infos}
        size = max(self._attrs, default=-1) + 1
        self._rollover = np.full(size, np.nan)
        for row, a in self._attrs.items():
            r = a.get("rollover")
            if isinstance(r, int | float):
                self._rollover[row] = float(r)
        self._loaded_at = time.monotonic()

    @property
    def factor_version(self) -> int:
        """The factor-table version this flow computes CO2 with (the latest when it started)."""
        return self._factor_version

    def rows(self, meters: pl.Series) -> npt.NDArray[np.int64]:
        """Registry row of each meter, -1 where the meter is not registered."""
        rows = self._join(meters)
        if (rows < 0).any() and time.monotonic() - self._loaded_at >= RELOAD_MIN_S:
            self._reload()
            rows = self._join(meters)
        return rows

    def _join(self, meters: pl.Series) -> npt.NDArray[np.int64]:
        joined = pl.DataFrame({"meter": meters}).join(
            self._rows, on="meter", how="left", maintain_order="left"
        )
        return joined["row"].fill_null(-1).to_numpy().astype(np.int64, copy=False)

    def rollover(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Register size at which each row's counter wraps; NaN where it does not wrap."""
        return self._rollover[rows]

    def factors(
        self, rows: npt.NDArray[np.int64], years: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Emission factor per (row, year) of the pinned factor version; NaN where none applies.

        Gathered from one array per year, indexed by row: a Python lookup per distinct meter of
        each batch was the largest Python cost of the flow at 100,000 meters (py-spy,
        2026-11-22). Only rows not looked up yet go through the factor table."""
        distinct = np.unique(years).tolist()
        if len(distinct) == 1:  # nearly every batch
            return self._year_table(distinct[0], rows)[rows]
        out = np.empty(rows.size)
        for year in distinct:
            sel = years == year
            out[sel] = self._year_table(year, rows[sel])[rows[sel]]
        return out

    def _year_table(self, year: int, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The factor of every row in `year`, filled in for `rows` where it was not yet."""
        table, known = self._factor_tables.get(year, (np.empty(0), np.empty(0, dtype=bool)))
        size = int(rows.max()) + 1 if rows.size else 0
        if size > table.size:
            table = np.concatenate([table, np.full(size - table.size, np.nan)])
            known = np.concatenate([known, np.zeros(size - known.size, dtype=bool)])
            self._factor_tables[year] = (table, known)
        for row in np.unique(rows[~known[rows]]).tolist():
            table[row] = self._factor(row, year)
            known[row] = True
        return table

    def _factor(self, row: int, year: int) -> float:
        a = self._attrs.get(row, {})
        commodity, region, basis, unit = (
            str(a.get("commodity", "electricity")),
            str(a.get("region", "CN")),
            str(a.get("basis", "location")),
            str(a.get("unit", "kWh")),
        )
        f = self._factors.lookup(commodity, region, year, basis, self._factor_version)
        value = float("nan")
        if f is None:
            log.warning(
                "no %s emission factor for %s %s %d: CO2 stays missing",
                basis,
                commodity,
                region,
                year,
            )
        elif f.activity_unit != unit:
            log.warning(
                "emission factor for %s is per %s but the meter counts %s: CO2 stays missing",
                commodity,
                f.activity_unit,
                unit,
            )
        else:
            value = f.value
        return value
