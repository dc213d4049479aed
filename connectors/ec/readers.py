"""Raw eddy-covariance files -> timestamped float32 columns in the kernel's units.

Two formats:

- Campbell TOA5: line 1 file information (logger, program, table), line 2 column names, line 3
  units, line 4 processing, then one row per sample with a TIMESTAMP column;
- ICOS-style CSV: one header line of names, no timestamp column; the file name carries the time
  (SITE_EC_YYYYMMDDHHMM_...), which marks the start or the end of the file as the site's
  metadata says, and samples follow at the sampling rate.

Columns are picked by the site's mapping (header name, or 1-based position as in EddyPro's
metadata) and converted: wind m s-1, sonic and air temperature K, pressure Pa; gases stay in the
declared unit. Timestamps become the *start* of each sample in UTC epoch ns.

Bad input is never fatal for the rows around it and never becomes a zero:

- a row with the wrong number of fields (truncated line, a line of another table) is dropped;
- a row whose timestamp does not parse is dropped;
- a cell that is not a number is NaN, as are NAN, NaN, -9999 and empty cells;
- repeated timestamps keep the first row;

each counted by reason in `RawTable.errors`. A file whose header lacks a mapped column (another
logger program, a different table) is refused as a whole with `EcReadError` naming the columns.
Missing rows simply leave their samples missing; the kernel counts them (more than 10 %: the
period is flagged and its fluxes withheld).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from connectors.ec.settings import KERNEL_COLUMN, EcSiteSettings, icos_filename_time

NS = 1_000_000_000
MISSING_TOKENS = frozenset({"", "nan", "-9999", "-9999.0", "-9999.00", "na", "inf", "-inf"})
MAX_EXAMPLES = 20
MIN_YEAR, MAX_YEAR = 1678, 2261
"""Years whose instants int64 nanoseconds can hold (whole years only)."""


class EcReadError(ValueError):
    """A file that cannot be read at all (the message names the file and the reason)."""


@dataclass
class ReadErrors:
    """Counts of refused rows and cells by reason, with the first few examples."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, where: str, n: int = 1) -> None:
        self.counts[reason] += n
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: ReadErrors) -> None:
        self.counts.update(other.counts)
        room = MAX_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[: max(0, room)])


@dataclass
class RawTable:
    """Samples of one file: start time of each sample and kernel columns (float32)."""

    source: str
    ts_ns: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.float32]]
    errors: ReadErrors
    rows: int
    """Data rows in the file (including refused ones)."""

    def __len__(self) -> int:
        return int(self.ts_ns.size)


def read_raw_file(path: Path, site: EcSiteSettings) -> RawTable:
    """Reads a TOA5 or ICOS CSV file (told apart by the first line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EcReadError(f"{path}: cannot read: {exc.strerror}") from None
    return read_raw_bytes(data, path.name, site)


def read_raw_bytes(data: bytes, name: str, site: EcSiteSettings) -> RawTable:
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise EcReadError(f"{name}: empty file")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if first.startswith('"TOA5"') or first.startswith("TOA5"):
        return _read_toa5(text, name, site)
    return _read_icos(text, name, site)


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _split(text: str) -> list[list[str]]:
    """CSV rows, exactly one per line. A quote left open by a line cut short (inside a quoted
    TOA5 timestamp, say) must not swallow the good lines after it, and a line the csv module
    cannot read at all (a stray carriage return) is a row of its own, refused by its field
    count: either way only the damaged line is lost, and counted."""
    lines = text.lstrip("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        rows = list(csv.reader(lines))
        if len(rows) == len(lines):
            return rows
    except csv.Error:
        pass
    return [_row(line) for line in lines]


def _row(line: str) -> list[str]:
    """One line read alone; the line itself (one field) when it is not CSV or when it would read
    as a blank row (a lone quote), so that it is counted by its field count, not skipped."""
    try:
        row = next(csv.reader([line]), [])
    except csv.Error:
        return [line]
    return [line] if _blank(row) and line.strip() else row


def _resolve(header: list[str], site: EcSiteSettings, name: str) -> dict[str, int]:
    """variable -> 0-based field index; refuses a file lacking a mapped column."""
    index = {h.strip(): i for i, h in enumerate(header)}
    out: dict[str, int] = {}
    missing = []
    for var, col in site.columns.mapping().items():
        if isinstance(col, int):
            if 1 <= col <= len(header):
                out[var] = col - 1
            else:
                missing.append(f"{var}=#{col}")
        elif col in index:
            out[var] = index[col]
        else:
            missing.append(f"{var}={col!r}")
    if missing:
        raise EcReadError(
            f"{name}: column(s) {', '.join(missing)} of site {site.id!r} not in this file "
            f"(header: {header[:16]}{'...' if len(header) > 16 else ''}); "
            "a file of another logger program or table?"
        )
    return out


def _numbers(
    cells: list[str], errors: ReadErrors, name: str, var: str, first_line: int
) -> npt.NDArray[np.float32]:
    """float32 of each cell; NaN for missing markers and (counted) for text."""
    try:
        return np.array(cells, dtype=np.float32)
    except ValueError:
        pass
    out = np.empty(len(cells), dtype=np.float32)
    for i, c in enumerate(cells):
        try:
            out[i] = float(c)
        except ValueError:
            out[i] = np.nan
            if c.strip().strip('"').lower() not in MISSING_TOKENS:
                errors.add("not_numeric", f"{name}:{first_line + i} {var}={c[:20]!r}")
    return out


def _convert(var: str, x: npt.NDArray[np.float32], site: EcSiteSettings) -> None:
    """In place: the site's units -> the kernel's."""
    u = site.units
    if var in ("u", "v", "w") and u.wind == "cm_s":
        x *= np.float32(0.01)
    elif (var == "ts" and u.ts == "celsius") or (var == "air_t" and u.air_t == "celsius"):
        x += np.float32(273.15)
    elif var == "pressure":
        x *= np.float32({"pa": 1.0, "hpa": 100.0, "kpa": 1000.0}[u.pressure])
    x[x == np.float32(-9999.0)] = np.nan


def _columns(
    rows: list[list[str]],
    fields: dict[str, int],
    site: EcSiteSettings,
    errors: ReadErrors,
    name: str,
    first_line: int,
) -> dict[str, npt.NDArray[np.float32]]:
    out = {}
    for var, i in fields.items():
        x = _numbers([r[i] for r in rows], errors, name, var, first_line)
        _convert(var, x, site)
        out[KERNEL_COLUMN.get(var, var)] = x
    return out


def _read_toa5(text: str, name: str, site: EcSiteSettings) -> RawTable:
    lines = _split(text)
    if len(lines) < 4:
        raise EcReadError(f"{name}: TOA5 needs 4 header lines, the file has {len(lines)} lines")
    header = [h.strip() for h in lines[1]]
    if "TIMESTAMP" not in header:
        raise EcReadError(f"{name}: TOA5 header has no TIMESTAMP column: {header[:16]}")
    fields = _resolve(header, site, name)
    t_col = header.index("TIMESTAMP")
    errors = ReadErrors()
    data = lines[4:]
    good: list[list[str]] = []
    line_no: list[int] = []
    for k, r in enumerate(data):
        if _blank(r):
            continue
        if len(r) != len(header):
            errors.add(
                "wrong_column_count", f"{name}:{k + 5} has {len(r)} fields, not {len(header)}"
            )
            continue
        good.append(r)
        line_no.append(k + 5)
    stamps = _timestamps([r[t_col] for r in good], errors, name, line_no)
    ok = stamps != np.iinfo(np.int64).min
    rows_ok = [r for r, keep in zip(good, ok, strict=True) if keep]
    ts = stamps[ok]
    if site.timestamps == "end":
        ts = ts - round(NS / site.sampling_hz)
    columns = _columns(rows_ok, fields, site, errors, name, 5)
    return _dedupe(RawTable(name, ts, columns, errors, len(data)), name)


def _timestamps(
    cells: list[str], errors: ReadErrors, name: str, line_no: list[int]
) -> npt.NDArray[np.int64]:
    """Epoch ns (UTC) of each TOA5 timestamp; int64 min where it does not parse, is empty or is
    outside MIN_YEAR..MAX_YEAR (each counted).

    numpy parses a year such as 9012 (one flipped digit) and silently wraps it into int64
    nanoseconds, giving an instant in another century: the year is therefore also read at year
    resolution, which cannot wrap, and must be in range and agree with the nanosecond value."""
    try:
        ns = np.array(cells, dtype="datetime64[ns]")
        years = np.array(cells, dtype="datetime64[Y]")
    except ValueError:
        ns = np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[ns]")
        years = np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[Y]")
        for i, c in enumerate(cells):
            try:
                ns[i] = np.datetime64(c.strip(), "ns")
                years[i] = np.datetime64(c.strip(), "Y")
            except (ValueError, OverflowError):
                pass
    year = years.astype(np.int64) + 1970
    ok = (ns.astype("datetime64[Y]") == years) & (year >= MIN_YEAR) & (year <= MAX_YEAR)
    for k in np.flatnonzero(~ok).tolist():
        errors.add("bad_timestamp", f"{name}:{line_no[k]} {cells[k][:30]!r}")
    return np.where(ok, ns.astype(np.int64), np.iinfo(np.int64).min)


def _dedupe(t: RawTable, name: str) -> RawTable:
    """Keeps the first row of each timestamp, in time order."""
    if t.ts_ns.size == 0:
        return t
    order = np.argsort(t.ts_ns, kind="stable")
    ts = t.ts_ns[order]
    first = np.ones(ts.size, dtype=bool)
    first[1:] = ts[1:] != ts[:-1]
    dup = int((~first).sum())
    if dup:
        t.errors.add("duplicate_timestamp", name, dup)
    keep = order[first]
    if dup == 0 and np.array_equal(keep, np.arange(ts.size)):
        return t
    return RawTable(
        t.source, ts[first], {k: v[keep] for k, v in t.columns.items()}, t.errors, t.rows
    )


def _read_icos(text: str, name: str, site: EcSiteSettings) -> RawTable:
    stamp = icos_filename_time(name)
    if stamp is None:
        raise EcReadError(
            f"{name}: neither TOA5 nor an ICOS raw file named SITE_EC_YYYYMMDDHHMM_..."
        )
    if not MIN_YEAR <= stamp.year <= MAX_YEAR:
        raise EcReadError(f"{name}: the year in the file name is outside {MIN_YEAR}..{MAX_YEAR}")
    lines = _split(text)
    header = [h.strip() for h in lines[0]]
    fields = _resolve(header, site, name)
    errors = ReadErrors()
    data = lines[1:]
    good: list[list[str]] = []
    for k, r in enumerate(data):
        if _blank(r):
            continue
        if len(r) != len(header):
            errors.add(
                "wrong_column_count", f"{name}:{k + 2} has {len(r)} fields, not {len(header)}"
            )
            continue
        good.append(r)
    # Rows carry no time: sample k of the file starts k / fs after the file's start. A dropped
    # row shifts nothing after it only if it was a whole row; the count is reported.
    step = NS / site.sampling_hz
    start_ns = _epoch_ns(stamp)
    if site.timestamps == "end":
        start_ns -= round(site.period_s * NS)
    kept = np.array(
        [i for i, r in enumerate(data) if not _blank(r) and len(r) == len(header)], dtype=np.int64
    )
    ts = start_ns + np.round(kept * step).astype(np.int64)
    columns = _columns(good, fields, site, errors, name, 2)
    return RawTable(name, ts, columns, errors, len(data))


def _epoch_ns(t: datetime) -> int:
    return int(t.timestamp()) * NS
