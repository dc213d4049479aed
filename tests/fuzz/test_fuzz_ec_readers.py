"""Fuzzing the raw eddy-covariance readers (Campbell TOA5 and ICOS CSV, connectors/ec/readers.py).

Whatever a logger card, a half-written file or a wrong upload holds, the reader either refuses
the file with `EcReadError` naming it, or returns the rows that are valid: every dropped row is
counted by reason, the rows next to damaged ones come back with the values they have in the clean
file, and no timestamp is silently wrapped into another century. The files are the first rows of
the reference files of tests/data/ec, kept short so each example reads in about a millisecond.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.ec.processing import load_site
from connectors.ec.readers import EcReadError, RawTable, read_raw_bytes
from connectors.ec.settings import EcSiteSettings
from tests.fuzz.strategies import FUZZ, mutated, protocol_bytes

DATA = Path(__file__).resolve().parents[1] / "data" / "ec"
TOA5_FILE = DATA / "TOA5-open-path" / "TOA5_6843.ts_Above_2012_06_07_1245.dat"
TOA5_META = DATA / "TOA5-open-path" / "instrument.metadata"
ICOS_FILE = DATA / "DE-HoH" / "DE-HoH_EC_201907301200_v01.csv"
ICOS_META = DATA / "DE-HoH" / "DE-HoH_ecmd.csv"
ROWS = 40
REASONS = {"wrong_column_count", "bad_timestamp", "not_numeric", "duplicate_timestamp"}
DROPPING = ("wrong_column_count", "bad_timestamp", "duplicate_timestamp")
"""Reasons that drop a whole row (`not_numeric` only blanks a cell)."""


@functools.cache
def toa5() -> tuple[EcSiteSettings, list[str]]:
    """The open-path site and the lines of a short TOA5 file (4 header lines + ROWS rows)."""
    site = load_site(TOA5_META, [TOA5_FILE])
    with TOA5_FILE.open() as f:
        lines = [next(f).rstrip("\r\n") for _ in range(4 + ROWS)]
    return site, lines


@functools.cache
def icos() -> tuple[EcSiteSettings, list[str]]:
    """The DE-HoH site and the lines of a short ICOS file (1 header line + ROWS rows)."""
    site = load_site(ICOS_META, [ICOS_FILE])
    with ICOS_FILE.open() as f:
        lines = [next(f).rstrip("\r\n") for _ in range(1 + ROWS)]
    return site, lines


def read(kind: str, data: bytes, name: str | None = None) -> RawTable:
    site = toa5()[0] if kind == "toa5" else icos()[0]
    default = TOA5_FILE.name if kind == "toa5" else ICOS_FILE.name
    return read_raw_bytes(data, name or default, site)


def text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def check_table(t: RawTable) -> None:
    """What every returned table promises, however bad the file was."""
    n = len(t)
    assert t.ts_ns.dtype == np.int64
    assert all(c.dtype == np.float32 and c.shape == (n,) for c in t.columns.values())
    assert np.all(np.diff(t.ts_ns) > 0), "sorted, one row per timestamp"
    lo, hi = np.datetime64("1678-01-01", "ns"), np.datetime64("2262-01-01", "ns")
    assert np.all((t.ts_ns >= lo.astype(np.int64)) & (t.ts_ns < hi.astype(np.int64)))
    assert set(t.errors.counts) <= REASONS, t.errors.counts
    assert n + sum(t.errors.counts[r] for r in DROPPING) <= t.rows


def read_or_refuse(kind: str, data: bytes, name: str | None = None) -> RawTable | None:
    """The table, or None when the file was refused with an error naming it."""
    try:
        t = read(kind, data, name)
    except EcReadError as exc:
        assert (name or (TOA5_FILE.name if kind == "toa5" else ICOS_FILE.name)) in str(exc)
        return None
    check_table(t)
    return t


icos_names = st.from_regex(r"[A-Za-z-]{1,8}_EC_[0-9]{12}(_v01)?\.(csv|dat)", fullmatch=True)


@FUZZ
@given(kind=st.sampled_from(["toa5", "icos"]), data=protocol_bytes(3000))
def test_arbitrary_bytes_are_refused_or_read(kind: str, data: bytes) -> None:
    read_or_refuse(kind, data)


@FUZZ
@given(name=icos_names)
def test_any_icos_file_name_is_read_or_refused_by_name(name: str) -> None:
    """The file name carries the time of an ICOS file: an impossible or absurd one (month 13,
    year 9999) refuses the file by name, it does not raise something else or wrap the time."""
    read_or_refuse("icos", text(icos()[1]), name)


@FUZZ
@given(kind=st.sampled_from(["toa5", "icos"]), data=st.data())
def test_mutated_files_are_refused_or_read(kind: str, data: st.DataObject) -> None:
    lines = toa5()[1] if kind == "toa5" else icos()[1]
    read_or_refuse(kind, data.draw(mutated(text(lines), max_mutations=8)))


garbage_line = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=80
).filter(lambda s: any(c.isalnum() for c in s))


@st.composite
def damaged_rows(draw: st.DrawFn, n_rows: int, ncols: int, keep_count: bool) -> dict[int, str]:
    """Row index -> what damage to do: the damage real files show (a line cut anywhere, even
    inside a quoted timestamp; a line of noise; a cell of text; an empty, impossible or
    out-of-range timestamp). `keep_count`: no damage that changes the line count."""
    kinds = ["cut", "noise", "text_cell", "timestamp"] + ([] if keep_count else ["extra_line"])
    rows = draw(st.sets(st.integers(0, n_rows - 1), min_size=1, max_size=n_rows // 3))
    return {r: draw(st.sampled_from(kinds)) for r in sorted(rows)}


def damage(line: str, kind: str, data: st.DataObject, ncols: int) -> list[str]:
    cells = line.split(",")
    if kind == "cut":
        return [line[: data.draw(st.integers(1, len(line) - 1))]]
    if kind == "noise":
        return [data.draw(garbage_line)]
    if kind == "text_cell":
        cells[data.draw(st.integers(1, ncols - 1))] = data.draw(garbage_line).replace(",", ";")
        return [",".join(cells)]
    if kind == "timestamp":
        cells[0] = data.draw(
            st.sampled_from(['""', '"NaT"', '"2012-13-45 99:00"', '"9012-06-07 12:45:00"', ""])
        )
        return [",".join(cells)]
    return [line, data.draw(garbage_line)]


def values_at(t: RawTable, ts: int) -> dict[str, float]:
    (i,) = np.flatnonzero(t.ts_ns == ts)
    return {k: float(v[i]) for k, v in t.columns.items()}


@FUZZ
@given(data=st.data())
def test_toa5_rows_next_to_damaged_ones_are_kept(data: st.DataObject) -> None:
    """Damaged rows are dropped and counted (or keep their row with a NaN cell); every other
    row comes back with exactly the values of the clean file."""
    _, lines = toa5()
    ncols = len(lines[1].split(","))
    clean = read("toa5", text(lines))
    plan = data.draw(damaged_rows(ROWS, ncols, keep_count=False))
    out = lines[:4]
    for k, line in enumerate(lines[4:]):
        out += damage(line, plan[k], data, ncols) if k in plan else [line]
    t = read("toa5", text(out))
    check_table(t)
    dropped = sum(t.errors.counts[r] for r in DROPPING)
    assert len(t) + dropped == len(out) - 4, (t.errors.counts, t.errors.examples)
    for k in range(ROWS):
        if k not in plan:
            ts = int(clean.ts_ns[k])
            assert ts in t.ts_ns, f"undamaged row {k} lost: {t.errors.examples}"
            np.testing.assert_array_equal(
                list(values_at(t, ts).values()), list(values_at(clean, ts).values())
            )


@FUZZ
@given(data=st.data())
def test_icos_rows_next_to_damaged_ones_are_kept(data: st.DataObject) -> None:
    """ICOS rows carry no time (row k is at k / fs): damage that keeps the line count leaves
    every undamaged row at its time with its values."""
    _, lines = icos()
    ncols = len(lines[0].split(","))
    clean = read("icos", text(lines))
    plan = data.draw(damaged_rows(ROWS, ncols, keep_count=True))
    plan = {k: ("noise" if v == "timestamp" else v) for k, v in plan.items()}
    out = lines[:1] + [
        damage(line, plan[k], data, ncols)[0] if k in plan else line
        for k, line in enumerate(lines[1:])
    ]
    t = read("icos", text(out))
    check_table(t)
    assert len(t) + t.errors.counts["wrong_column_count"] == ROWS
    for k in range(ROWS):
        if k not in plan:
            ts = int(clean.ts_ns[k])
            np.testing.assert_array_equal(
                list(values_at(t, ts).values()), list(values_at(clean, ts).values())
            )


# -- the failing examples the properties found, pinned -------------------------------------------


def test_a_line_cut_inside_its_quoted_timestamp_costs_only_itself() -> None:
    """A line cut inside its quoted timestamp left the quote open, and the csv module then read
    the next (good) line as part of it: both were lost as one `wrong_column_count` row."""
    _, lines = toa5()
    t = read("toa5", text([*lines[:4], '"2012-06-07 12:4', *lines[5:]]))
    assert len(t) == ROWS - 1 and t.errors.counts == {"wrong_column_count": 1}
    clean = read("toa5", text(lines))
    np.testing.assert_array_equal(t.ts_ns, clean.ts_ns[1:])


def test_a_stray_carriage_return_is_a_bad_row_not_a_csv_error() -> None:
    """`\\r` inside a line made csv.Error escape from the reader (found as b'\\r#')."""
    _, lines = toa5()
    t = read("toa5", text([*lines[:5], lines[5].replace(",", "\r,", 1), *lines[6:]]))
    assert len(t) == ROWS - 1 and t.errors.counts == {"wrong_column_count": 1}
    assert read_or_refuse("icos", b"\r#") is None


def test_empty_and_out_of_range_timestamps_are_counted_not_wrapped() -> None:
    """An empty (or NaT) timestamp was dropped without being counted, and numpy silently wrapped
    a year beyond int64 nanoseconds (one flipped digit: 9012) into 1815."""
    _, lines = toa5()
    out = [*lines[:4]]
    for k, line in enumerate(lines[4:]):
        cells = line.split(",")
        if k in (3, 7, 11):
            cells[0] = {3: '""', 7: '"NaT"', 11: '"9012-06-07 12:45:00.6"'}[k]
        out.append(",".join(cells))
    t = read("toa5", text(out))
    assert len(t) == ROWS - 3 and t.errors.counts == {"bad_timestamp": 3}
    assert t.ts_ns.min() >= np.datetime64("2012-06-07", "ns").astype(np.int64)


@pytest.mark.parametrize("name", ["DE-HoH_EC_201913451200_v01.csv", "DE-HoH_EC_999912312359.csv"])
def test_an_impossible_time_in_an_icos_file_name_refuses_the_file(name: str) -> None:
    """Month 13 raised the ValueError of strptime; year 9999 an OverflowError from numpy."""
    with pytest.raises(EcReadError, match=name.replace(".", r"\.")):
        read("icos", text(icos()[1]), name)
