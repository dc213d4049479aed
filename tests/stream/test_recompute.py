"""A past period recomputed with a pinned factor version: correct per year, reproducible, and a
revised factor table gives a new version without changing what the old one gives."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config, load_config
from carbonstream.products import meters_interval_spec
from storage.entities import EntityTree
from storage.factors import FactorTable, seed_table_text
from storage.metadata import MetadataDB
from storage.products import ENTITIES_AXIS, METERS_AXIS
from storage.zarr_store import ProductStore, ProductWriter, RegistryLabels
from stream.recompute import Recomputer

S = 10**9
H = 3600 * S
DEC_15_2022 = 1_671_062_400 * S  # 2022-12-15T00:00Z


def seed(energy_type: str, region: str, year: str, basis: str) -> float:
    for r in csv.DictReader(io.StringIO(seed_table_text())):
        if (r["energy_type"], r["region"], r["year"], r["basis"]) == (
            energy_type,
            region,
            year,
            basis,
        ):
            return float(r["factor"])
    raise KeyError(energy_type)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[rollups]\nutc_offset = "+08:00"\n'
        "[products.meters_interval]\nresolution_s = 3600\nchunk_time = 240\nchunk_streams = 2\n"
        "[connectors.meter_simulator]\nenabled = false\n"
    )
    config = load_config(path, environ={})
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(ENTITIES_AXIS, {"plant": {"kind": "enterprise"}})
    db.register_streams(
        METERS_AXIS,
        {
            "elec-1": {"entity": "plant", "commodity": "electricity", "unit": "kWh"},
            "elec-2": {"entity": "plant", "commodity": "electricity", "unit": "kWh"},
            "gas-1": {
                "entity": "plant",
                "commodity": "natural_gas",
                "unit": "Nm3",
                "basis": "direct",
            },
        },
    )
    # One month of hourly consumption around the year change: 2022-12-15 .. 2023-01-15 (UTC).
    spec = meters_interval_spec(config)
    layout = config.storage.layout
    w = ProductWriter(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), RegistryLabels(db, spec)
    )
    hours = 31 * 24
    slot0 = spec.slot_of(DEC_15_2022)
    for row, per_hour in ((0, 10.0), (1, 5.0), (2, 2.0)):
        w.stage(
            np.full(hours, row, np.int64),
            slot0 + np.arange(hours, dtype=np.int64),
            {"consumption": np.full(hours, per_hour), "co2": np.full(hours, np.nan)},
        )
    w.flush()
    db.close()
    return config


def month_values(config: Config, version: int) -> dict[str, dict[str, float]]:
    db = MetadataDB(config.storage.layout.metadata_db)
    rows = EntityTree.load(db).meter_rows_below("plant")
    frame = Recomputer(config).emissions(
        rows, DEC_15_2022, DEC_15_2022 + 31 * 24 * H, version, "month"
    )
    return {r["period_start"]: r for r in frame.to_dicts()}


def test_each_year_uses_its_factor_and_local_months(config: Config) -> None:
    got = month_values(config, FactorTable(config.storage.layout.metadata_db).ensure_seeded())
    # Local (UTC+8) months: December 2022 starts 2022-11-30T16:00Z, January 2023 2022-12-31T16:00Z.
    dec, jan = got["2022-11-30T16:00:00Z"], got["2022-12-31T16:00:00Z"]
    dec_hours = 17 * 24 - 8  # 2022-12-15T00Z .. 2022-12-31T16Z
    jan_hours = 31 * 24 - dec_hours
    assert dec["electricity"] == pytest.approx(15.0 * dec_hours)
    assert jan["natural_gas"] == pytest.approx(2.0 * jan_hours)
    gas = seed("natural_gas", "CN", "*", "direct")
    # The last 8 hours of local December are already 2023 in UTC: factors follow the UTC year.
    e22, e23 = (
        seed("electricity", "CN", "2022", "location"),
        seed("electricity", "CN", "2023", "location"),
    )
    assert dec["co2_scope2_kg"] == pytest.approx(15.0 * ((dec_hours - 0) * e22))
    assert jan["co2_scope2_kg"] == pytest.approx(15.0 * (8 * e22 + (jan_hours - 8) * e23))
    assert jan["co2_scope1_kg"] == pytest.approx(2.0 * jan_hours * gas)
    assert jan["co2_kg"] == pytest.approx(jan["co2_scope1_kg"] + jan["co2_scope2_kg"])


def test_a_revised_table_is_a_new_version_and_old_results_reproduce(config: Config) -> None:
    table = FactorTable(config.storage.layout.metadata_db)
    v1 = table.ensure_seeded()
    first = month_values(config, v1)
    revised = seed_table_text().replace(
        "electricity,CN,2023,0.5306,", "electricity,CN,2023,0.6000,"
    )
    v2 = table.load(revised, "revised 2023 grid factor")
    assert v2 == v1 + 1
    # repr: bit-for-bit equal, with missing (NaN) commodities compared as equal too.
    assert repr(month_values(config, v1)) == repr(first), "recomputing with v1 again is identical"
    second = month_values(config, v2)
    jan1, jan2 = first["2022-12-31T16:00:00Z"], second["2022-12-31T16:00:00Z"]
    assert jan2["factor_version"] == v2
    assert jan2["co2_scope1_kg"] == jan1["co2_scope1_kg"], "gas factor unchanged"
    assert jan2["co2_scope2_kg"] > jan1["co2_scope2_kg"]


def test_cli_lists_loads_and_reports(config: Config, tmp_path: Path) -> None:
    cfg = str(tmp_path / "c.toml")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carbonstream", *args, "--config", cfg],
            capture_output=True,
            text=True,
            timeout=120,
        )

    table = tmp_path / "revised.csv"
    table.write_text(
        seed_table_text().replace("electricity,CN,2023,0.5306,", "electricity,CN,2023,0.6,")
    )
    assert (
        run("factors", "load", str(table), "--note", "test revision").stdout.strip()
        == "factor table version 2"
    )
    listed = run("factors", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["1", "2"] and "test revision" in listed[1]
    out = tmp_path / "report.csv"
    r = run(
        "meters",
        "report",
        "--entity",
        "plant",
        "--start",
        "2023-01-01T00:00:00+08:00",
        "--end",
        "2023-02-01T00:00:00+08:00",
        "--factor-version",
        "1",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    (row,) = list(csv.DictReader(out.open()))
    assert row["period_start"] == "2022-12-31T16:00:00Z" and row["factor_version"] == "1"
    bad = run(
        "meters",
        "report",
        "--entity",
        "nope",
        "--start",
        "2023-01-01T00:00:00Z",
        "--end",
        "2023-02-01T00:00:00Z",
    )
    assert bad.returncode == 2 and "unknown entity" in bad.stderr
