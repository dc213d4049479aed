"""Acceptance: `carbonstream ec process` on the reference raw files against EddyPro's own outputs.

The command runs as a user would (a subprocess), with the metadata files the sites ship; the
expected values are read from EddyPro's FLUXNET and full-output files at test time.

- TOA5 open path, Express-equivalent options: FC, LE, H within 1 %, USTAR within 0.5 %, time lags
  equal to EddyPro's within one sample, SSITC flags equal.
- DE-HoH closed path with the planar fit of planar_fit.txt (and the in-situ spectral correction of
  spectral_assessment.txt): u*, z/L, rotation angles, time lags and uncorrected covariances within
  1 %; corrected fluxes within 5 %.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "ec"
TOA5 = DATA / "TOA5-open-path"
HOH = DATA / "DE-HoH"
TOA5_FILES = sorted(TOA5.glob("TOA5_*.dat"))


def run_process(tmp_path: Path, *args: str | Path) -> list[dict[str, str]]:
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "carbonstream", "ec", "process", *map(str, args), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with out.open() as f:
        return list(csv.DictReader(f))


def eddypro_full_output(path: Path) -> list[dict[str, str]]:
    """EddyPro full output: a group line, the names, the units, then data."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return list(csv.DictReader([lines[1], *lines[3:]]))


def rel(ours: str, theirs: str) -> float:
    a, b = float(ours), float(theirs)
    return abs(a - b) / abs(b)


@pytest.fixture(scope="module")
def toa5_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("toa5")
    return run_process(tmp, *TOA5_FILES, "--metadata", TOA5 / "instrument.metadata")


def test_toa5_open_path_matches_eddypro_express(toa5_rows: list[dict[str, str]]) -> None:
    with (TOA5 / "eddypro_fluxnet.csv").open() as f:
        ref = {r["TIMESTAMP_START"]: r for r in csv.DictReader(f)}
    full = {r["filename"]: r for r in eddypro_full_output(TOA5 / "eddypro_full_output.csv")}
    assert [r["TIMESTAMP_START"] for r in toa5_rows] == sorted(ref)
    fs = 20.0
    for row in toa5_rows:
        theirs = ref[row["TIMESTAMP_START"]]
        assert row["TIMESTAMP_END"] == theirs["TIMESTAMP_END"]
        for name in ("FC", "LE", "H"):
            assert rel(row[name], theirs[name]) < 0.01, (name, row[name], theirs[name])
        assert rel(row["USTAR"], theirs["USTAR"]) < 0.005
        for flag in ("FC_SSITC_TEST", "LE_SSITC_TEST", "H_SSITC_TEST", "TAU_SSITC_TEST"):
            assert int(row[flag]) == int(float(theirs[flag])), flag
        fo = full[theirs["FILENAME_HF"]]
        for gas in ("co2", "h2o"):
            ours = float(row[f"{gas.upper()}_TLAG_ACTUAL"])
            assert abs(ours - float(fo[f"{gas}_time_lag"])) <= 1.0 / fs + 1e-9, gas


def test_toa5_missing_values_are_minus_9999(toa5_rows: list[dict[str, str]]) -> None:
    # No CH4 analyser: its flux is missing, written as -9999 (never 0 or empty).
    assert all(r["FCH4"] == "-9999" for r in toa5_rows)
    assert all(len(r["TIMESTAMP_START"]) == 12 for r in toa5_rows)


def test_de_hoh_planar_fit_matches_eddypro(tmp_path: Path) -> None:
    rows = run_process(
        tmp_path,
        HOH / "DE-HoH_EC_201907301200_v01.csv",
        "--metadata",
        HOH / "DE-HoH_ecmd.csv",
        "--planar-fit",
        HOH / "planar_fit.txt",
        "--spectral-assessment",
        HOH / "spectral_assessment.txt",
    )
    assert len(rows) == 1
    ours = rows[0]
    ref = eddypro_full_output(HOH / "eddypro_DE-HoH_full_output_example.csv")[0]
    # EddyPro's date/time is the end of the period.
    assert ours["TIMESTAMP_END"] == ref["date"].replace("-", "") + ref["time"].replace(":", "")
    within_1 = {
        "USTAR": "u*",
        "ZL": "(z-d)/L",
        "ROT_YAW": "yaw",
        "W_T_SONIC_COV": "w/ts_cov",
        "W_CO2_COV": "w/co2_cov",
        "W_H2O_COV": "w/h2o_cov",
        "H_UNCORR": "un_H",
        "LE_UNCORR": "un_LE",
        "FC_UNCORR": "un_co2_flux",
        "TAU_UNCORR": "un_Tau",
    }
    for name, col in within_1.items():
        assert rel(ours[name], ref[col]) < 0.01, (name, ours[name], ref[col])
    for gas in ("co2", "h2o"):
        assert rel(ours[f"{gas.upper()}_TLAG_ACTUAL"], ref[f"{gas}_time_lag"]) < 0.01
    for name, col in {"FC": "co2_flux", "LE": "LE", "H": "H", "TAU": "Tau"}.items():
        assert rel(ours[name], ref[col]) < 0.05, (name, ours[name], ref[col])


def test_unusable_metadata_is_refused_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.metadata"
    bad.write_text("[Site]\naltitude=0\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonstream",
            "ec",
            "process",
            str(TOA5_FILES[0]),
            "--metadata",
            str(bad),
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "bad.metadata" in proc.stderr
