"""Emission-factor selection (region, year, basis) and versioning of the factor table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from storage.factors import FactorTable, FactorTableError, seed_table_text

SEED_ROWS = list(csv.DictReader(io.StringIO(seed_table_text())))


def seeded(tmp_path: Path) -> tuple[FactorTable, int]:
    table = FactorTable(tmp_path / "m.sqlite")
    return table, table.ensure_seeded()


def seed_value(energy_type: str, region: str, year: str, basis: str) -> float:
    (row,) = [
        r
        for r in SEED_ROWS
        if (r["energy_type"], r["region"], r["year"], r["basis"])
        == (energy_type, region, year, basis)
    ]
    return float(row["factor"])


@pytest.mark.parametrize(
    ("query", "expected_row"),
    [
        (("electricity", "CN", 2022, "location"), ("electricity", "CN", "2022", "location")),
        # Not yet published for 2026: the most recent year before it.
        (("electricity", "CN", 2026, "location"), ("electricity", "CN", "2023", "location")),
        (
            ("electricity", "CN-East", 2023, "location"),
            ("electricity", "CN-East", "2023", "location"),
        ),
        (("electricity", "CN", 2023, "residual"), ("electricity", "CN", "2023", "residual")),
        # Green power is zero in every region (wildcard region and year).
        (
            ("green_electricity", "CN-South", 2025, "market"),
            ("green_electricity", "*", "*", "market"),
        ),
        (("natural_gas", "CN", 2024, "direct"), ("natural_gas", "CN", "*", "direct")),
    ],
)
def test_selection(
    tmp_path: Path, query: tuple[str, str, int, str], expected_row: tuple[str, ...]
) -> None:
    table, version = seeded(tmp_path)
    f = table.lookup(*query, version=version)
    assert f is not None
    assert f.value == seed_value(*expected_row)
    assert f.activity_unit == {"natural_gas": "Nm3"}.get(query[0], "kWh")


def test_no_factor_before_the_first_published_year_or_for_unknown_basis(tmp_path: Path) -> None:
    table, version = seeded(tmp_path)
    assert table.lookup("electricity", "CN-East", 2021, "location", version) is None
    assert table.lookup("electricity", "CN", 2023, "market", version) is None


def test_versions_are_content_addressed_and_old_versions_stay(tmp_path: Path) -> None:
    table, v1 = seeded(tmp_path)
    assert table.load(seed_table_text(), "same content again") == v1
    changed = seed_table_text().replace(
        "electricity,CN,2023,0.5306,", "electricity,CN,2023,0.5000,"
    )
    v2 = table.load(changed, "revised 2023 factor")
    assert v2 == v1 + 1 and table.latest_version() == v2
    old = table.lookup("electricity", "CN", 2023, "location", v1)
    new = table.lookup("electricity", "CN", 2023, "location", v2)
    assert old is not None and new is not None
    assert (old.value, new.value) == (0.5306, 0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", "header must be"),
        (
            "energy_type,region,year,factor,unit,basis,source\ne,CN,20x2,1,kgCO2/kWh,location,s\n",
            "line 2",
        ),
        (
            "energy_type,region,year,factor,unit,basis,source\ne,CN,2022,-1,kgCO2/kWh,location,s\n",
            "finite number >= 0",
        ),
        (
            "energy_type,region,year,factor,unit,basis,source\ne,CN,2022,1,tCO2/kWh,location,s\n",
            "kgCO2/",
        ),
    ],
)
def test_bad_tables_are_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    table, _ = seeded(tmp_path)
    with pytest.raises(FactorTableError, match=message):
        table.load(text, "bad")
