"""Per-meter emission factors gathered as arrays (stream/meter_lookup.py), on a real metadata
database with the built-in factor table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from storage.factors import Factor, FactorTable
from storage.metadata import MetadataDB
from stream.meter_lookup import MeterLookup


class CountingFactors(FactorTable):
    """The real table, counting the lookups that reach it."""

    calls = 0

    def lookup(
        self, energy_type: str, region: str, year: int, basis: str, version: int
    ) -> Factor | None:
        self.calls += 1
        return super().lookup(energy_type, region, year, basis, version)


@pytest.fixture
def db(tmp_path: Path) -> MetadataDB:
    db = MetadataDB(tmp_path / "m.sqlite")
    db.register_streams(
        "meters",
        {
            "e1": {"commodity": "electricity", "unit": "kWh", "region": "CN"},
            "e2": {"commodity": "electricity", "unit": "kWh", "region": "CN"},
            "wrong-unit": {"commodity": "electricity", "unit": "MWh", "region": "CN"},
            "nowhere": {"commodity": "electricity", "unit": "kWh", "region": "XX"},
        },
    )
    return db


def lookup(db: MetadataDB) -> tuple[MeterLookup, CountingFactors]:
    factors = CountingFactors(db.path)
    return MeterLookup(db, factors, factors.ensure_seeded(), "meters"), factors


def test_factors_per_row_and_year_with_nan_where_none_applies(db: MetadataDB) -> None:
    meters, table = lookup(db)
    version = table.latest_version()
    by_year = {y: table.lookup("electricity", "CN", y, "location", version) for y in (2022, 2023)}
    assert all(f is not None for f in by_year.values())
    rows = np.array([0, 1, 2, 3, 0, 1], dtype=np.int64)
    years = np.array([2022, 2022, 2022, 2022, 2023, 2023], dtype=np.int64)
    got = meters.factors(rows, years)
    f22, f23 = by_year[2022].value, by_year[2023].value  # type: ignore[union-attr]
    np.testing.assert_array_equal(got, [f22, f22, np.nan, np.nan, f23, f23])
    # One year (the usual batch) takes the same path as several.
    np.testing.assert_array_equal(meters.factors(rows[:2], years[:2]), [f22, f22])
    assert meters.factors(np.empty(0, np.int64), np.empty(0, np.int64)).size == 0


def test_each_row_and_year_is_looked_up_once(db: MetadataDB) -> None:
    meters, table = lookup(db)
    rows = np.array([1, 0, 1, 1, 3], dtype=np.int64)
    meters.factors(rows, np.full(rows.size, 2023))
    assert table.calls == 3  # rows 0, 1, 3
    meters.factors(rows, np.full(rows.size, 2023))
    assert table.calls == 3
    meters.factors(rows[:1], np.array([2022]))
    assert table.calls == 4


def test_a_meter_registered_later_gets_its_own_factor(
    db: MetadataDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows registered after the tables were sized (a meter's first reading while the flow
    runs) grow them, and get the factor of their own commodity."""
    monkeypatch.setattr("stream.meter_lookup.RELOAD_MIN_S", 0.0)
    meters, table = lookup(db)
    meters.factors(np.array([0], dtype=np.int64), np.array([2023]))
    new = {"g1": {"commodity": "natural_gas", "unit": "Nm3", "region": "CN", "basis": "direct"}}
    db.register_streams("meters", new)
    (row,) = meters.rows(pl.Series(["g1"]))  # an unknown meter: the lookup reloads
    assert row == 4
    gas = table.lookup("natural_gas", "CN", 2023, "direct", table.latest_version())
    assert gas is not None and gas.activity_unit == "Nm3"
    got = meters.factors(np.array([row, 0], dtype=np.int64), np.array([2023, 2023]))
    assert got[0] == gas.value and got[1] != gas.value
