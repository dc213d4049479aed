"""Emissions of a past period recomputed from stored consumption with a chosen factor version.

Live CO2 is computed with the factor table in force when the flow started (each cell records
which version, `factor_version`). When factors are revised, a new table version is loaded and
past periods can be recomputed with it, or again with any earlier version: the result depends
only on the stored consumption and the pinned version, so the same request always gives the same
numbers, which is what an inventory report needs.

The result is per local day or calendar month (the roll-up calendar), by scope and per commodity.
Rows are read in blocks of the product's chunk rows to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from carbonstream.config import Config
from carbonstream.products import entity_specs, meters_interval_spec
from storage.commodities import BY_NAME, COMMODITIES
from storage.factors import FactorTable, years_of
from storage.metadata import MetadataDB
from storage.products import ProductSpec
from storage.zarr_store import ProductReader, ProductStore

Resolution = Literal["day", "month"]


def _segment_nansum(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Sums of consecutive column segments (rows x segments), NaN where a segment is all NaN."""
    if values.shape[1] == 0:
        return np.full((values.shape[0], len(starts)), np.nan)
    present = ~np.isnan(values)
    sums = np.add.reduceat(np.where(present, values, 0.0), starts, axis=1)
    counts = np.add.reduceat(present.astype(np.int64), starts, axis=1)
    return np.where(counts > 0, sums, np.nan)


class Recomputer:
    def __init__(self, config: Config) -> None:
        layout = config.storage.layout
        self._db = MetadataDB(layout.metadata_db)
        self._factors = FactorTable(layout.metadata_db)
        self._meters: ProductSpec = meters_interval_spec(config)
        self._calendars = entity_specs(config)
        self._reader = ProductReader(
            ProductStore(layout.zarr_store, self._meters, layout.data_dir / "locks"), refresh_s=0
        )

    def emissions(
        self,
        meter_rows: Sequence[int],
        start_ns: int,
        end_ns: int,
        factor_version: int,
        resolution: Resolution,
    ) -> pl.DataFrame:
        """Per period: co2 total and by scope (kg), consumption per commodity, the version used."""
        coarse = self._calendars[f"entities/{resolution}"]
        p0, p1 = coarse.slot_of(start_ns), coarse.slot_of(end_ns - 1) + 1
        period_starts = coarse.slot_starts(p0, p1 + 1)
        s0, s1 = (
            self._meters.slot_of(int(period_starts[0])),
            self._meters.slot_of(int(period_starts[-1])),
        )
        slot_times = self._meters.slot_starts(s0, s1)
        segment_starts = np.searchsorted(slot_times, period_starts[:-1]).astype(np.int64)
        years = years_of(slot_times)
        year_values, year_of_slot = np.unique(years, return_inverse=True)

        n_periods = p1 - p0
        totals = {k: np.full(n_periods, np.nan) for k in ("co2", "co2_scope1", "co2_scope2")}
        totals |= {c.name: np.full(n_periods, np.nan) for c in COMMODITIES}
        infos = {s.idx: s.attrs for s in self._db.streams(self._meters.axis)}
        rows = sorted(r for r in meter_rows if r in infos)
        block = self._meters.chunk_streams
        for b in range(0, len(rows), block):
            batch = rows[b : b + block]
            cons = self._reader.read(batch, s0, s1, ["consumption"])["consumption"]
            factor = np.array(
                [
                    [self._factor(infos[r], int(y), factor_version) for y in year_values]
                    for r in batch
                ]
            ).reshape(len(batch), len(year_values))
            co2 = cons * factor[:, year_of_slot.reshape(-1)]
            co2_p = _segment_nansum(co2, segment_starts)
            cons_p = _segment_nansum(cons, segment_starts)
            for i, r in enumerate(batch):
                commodity = BY_NAME.get(str(infos[r].get("commodity", "electricity")))
                _accumulate(totals["co2"], co2_p[i])
                if commodity is not None and commodity.scope in (1, 2):
                    _accumulate(totals[f"co2_scope{commodity.scope}"], co2_p[i])
                if commodity is not None and infos[r].get("unit", commodity.unit) == commodity.unit:
                    _accumulate(totals[commodity.name], cons_p[i])
        return pl.DataFrame(
            {
                "period_start": np.char.add(
                    np.datetime_as_string(period_starts[:-1].astype("datetime64[ns]"), unit="s"),
                    "Z",
                ),
                **{f"{k}_kg" if k.startswith("co2") else k: v for k, v in totals.items()},
                "factor_version": np.full(n_periods, factor_version, np.int32),
            }
        )

    def _factor(self, attrs: dict[str, object], year: int, version: int) -> float:
        f = self._factors.lookup(
            str(attrs.get("commodity", "electricity")),
            str(attrs.get("region", "CN")),
            year,
            str(attrs.get("basis", "location")),
            version,
        )
        if f is None or f.activity_unit != attrs.get("unit", "kWh"):
            return float("nan")
        return f.value

    def close(self) -> None:
        self._db.close()
        self._factors.close()


def _accumulate(total: npt.NDArray[np.float64], part: npt.NDArray[np.float64]) -> None:
    """total += part where part has a value (a NaN total becomes the value)."""
    has = ~np.isnan(part)
    total[has] = np.where(np.isnan(total[has]), 0.0, total[has]) + part[has]
