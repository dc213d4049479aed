"""Bad raw input: every kind gives a clear, counted error or a flagged period, never a crash or a
silent zero, and the valid rows next to bad ones are kept.

Each case damages a copy of the reference TOA5 file and runs it through the same path as
`carbonstream ec process` (reader -> period buffer -> kernel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from connectors.ec.processing import ProcessResult, load_site, make_processor, process_tables
from connectors.ec.readers import EcReadError, read_raw_bytes, read_raw_file
from connectors.ec.settings import EcSiteSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "ec" / "TOA5-open-path"
FILE = DATA / "TOA5_6843.ts_Above_2012_06_07_1245.dat"
META = DATA / "instrument.metadata"


@pytest.fixture(scope="module")
def site() -> EcSiteSettings:
    return load_site(META, [FILE])


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return FILE.read_text().splitlines()


def run(site: EcSiteSettings, text: str, name: str = FILE.name) -> ProcessResult:
    table = read_raw_bytes(text.encode(), name, site)
    return process_tables(site, [table], make_processor(site))


@pytest.fixture(scope="module")
def clean(site: EcSiteSettings) -> ProcessResult:
    return process_tables(site, [read_raw_file(FILE, site)], make_processor(site))


def damage_rows(lines: list[str], rows: range, fn: Callable[[str], str]) -> str:
    out = list(lines)
    for i in rows:
        out[4 + i] = fn(out[4 + i])
    return "\n".join(out) + "\n"


def set_field(k: int, value: str) -> Callable[[str], str]:
    def fn(line: str) -> str:
        cells = line.split(",")
        cells[k] = value
        return ",".join(cells)

    return fn


def test_clean_file_has_no_errors(clean: ProcessResult) -> None:
    assert clean.errors.total == 0
    assert len(clean.periods) == 1
    assert not clean.periods[0].flags


@pytest.mark.parametrize(
    ("case", "rows", "fn", "reason"),
    [
        ("truncated lines", range(100, 110), lambda ln: ln[: len(ln) // 2], "wrong_column_count"),
        ("text in numeric column", range(200, 230), set_field(5, "ERR"), "not_numeric"),
        ("extra field", range(300, 305), lambda ln: ln + ",1", "wrong_column_count"),
        ("bad timestamp", range(400, 402), set_field(0, '"2012-13-45 99:00"'), "bad_timestamp"),
    ],
)
def test_bad_rows_are_counted_and_the_rest_kept(
    site: EcSiteSettings,
    lines: list[str],
    clean: ProcessResult,
    case: str,
    rows: range,
    fn: Callable[[str], str],
    reason: str,
) -> None:
    result = run(site, damage_rows(lines, rows, fn))
    assert result.errors.counts[reason] == len(rows), case
    assert result.errors.examples, "the first bad rows are named"
    (period,) = result.periods
    # A few bad rows out of 18,000 barely move the fluxes: the rest of the file was kept.
    for name in ("FC", "LE", "H", "USTAR"):
        ours, ref = period.values[name], clean.periods[0].values[name]
        assert math.isfinite(ours) and abs(ours - ref) / abs(ref) < 0.02, (case, name)


@pytest.mark.parametrize("marker", ["NAN", "NaN", "-9999", ""])
def test_missing_markers_become_missing_not_zero(
    site: EcSiteSettings, lines: list[str], marker: str
) -> None:
    table = read_raw_bytes(
        damage_rows(lines, range(0, 50), set_field(6, marker)).encode(), FILE.name, site
    )
    assert np.isnan(table.columns["h2o"][:50]).all()
    assert not (table.columns["h2o"] == 0).any()
    assert table.errors.total == 0  # a missing marker is not an error


def test_missing_rows_over_10_percent_flag_the_period(
    site: EcSiteSettings, lines: list[str]
) -> None:
    kept = lines[:4] + lines[4:10_000] + lines[4 + 12_000 :]  # 2,000 of 18,000 rows gone
    result = run(site, "\n".join(kept) + "\n")
    (period,) = result.periods
    assert any(f.startswith("too_many_missing") for f in period.flags), period.flags
    assert math.isnan(period.values["FC"]) and math.isnan(period.values["H"])


def test_few_missing_rows_still_give_fluxes(site: EcSiteSettings, lines: list[str]) -> None:
    kept = lines[:4] + lines[4:9_000] + lines[4 + 9_500 :]  # 500 rows (2.8 %) gone
    (period,) = run(site, "\n".join(kept) + "\n").periods
    assert math.isfinite(period.values["FC"])
    assert period.values["MISSING_FRACTION"] > 0.02


def test_file_of_another_logger_program_is_refused_clearly(site: EcSiteSettings) -> None:
    other = (
        '"TOA5","6843","CR3000","6843","CR3000.Std.22","CPU:Met.CR3","1","Met_30min"\n'
        '"TIMESTAMP","RECORD","BattV","PTemp_C","AirTC"\n'
        '"TS","RN","Volts","Deg C","Deg C"\n'
        '"","","Smp","Smp","Avg"\n'
        '"2012-06-07 13:00:00",1,12.8,25.1,24.3\n'
    )
    with pytest.raises(EcReadError, match="not in this file"):
        read_raw_bytes(other.encode(), "TOA5_met.dat", site)


def test_not_a_raw_file_is_refused(site: EcSiteSettings) -> None:
    with pytest.raises(EcReadError, match="neither TOA5 nor an ICOS"):
        read_raw_bytes(b"hello,world\n1,2\n", "notes.csv", site)
    with pytest.raises(EcReadError, match="empty"):
        read_raw_bytes(b"", "empty.dat", site)


def test_duplicate_rows_are_counted(site: EcSiteSettings, lines: list[str]) -> None:
    text = "\n".join(lines[:4] + lines[4:] + lines[4:14]) + "\n"
    table = read_raw_bytes(text.encode(), FILE.name, site)
    assert table.errors.counts["duplicate_timestamp"] == 10
    assert len(table) == 18_000
