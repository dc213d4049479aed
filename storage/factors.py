"""The versioned emission-factor table (seeded from reference/meters/emission_factors.csv).

Each load of a factor table becomes a new immutable version (identified by its content digest), so
a result can always be recomputed with the factors it was first computed with.

Selection for (energy type, region, year, basis):
1. the exact region, else the wildcard region `*` (e.g. certified green power is 0 everywhere);
2. the exact year, else a factor valid for any year, else the most recent year published before
   the requested one (grid factors are published with a delay of one to three years);
3. no factor -> None: emissions stay missing rather than being computed with a guess.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from storage.database import DbLocation, open_db, rollback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS factor_versions (
    version    INTEGER PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    note       TEXT    NOT NULL,
    digest     TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS emission_factors (
    version     INTEGER NOT NULL REFERENCES factor_versions (version),
    energy_type TEXT    NOT NULL,
    region      TEXT    NOT NULL,  -- '*' matches every region
    year        INTEGER NOT NULL,  -- 0 = valid for every year
    factor      REAL    NOT NULL,
    unit        TEXT    NOT NULL,  -- 'kgCO2/<activity unit>'
    basis       TEXT    NOT NULL,  -- location | market | residual | fossil | direct
    source      TEXT    NOT NULL,
    PRIMARY KEY (version, energy_type, region, year, basis)
);
"""

_COLUMNS = ("energy_type", "region", "year", "factor", "unit", "basis", "source")


class FactorTableError(ValueError):
    """A factor table file that cannot be loaded; the message names the line and the problem."""


@dataclass(frozen=True)
class Factor:
    value: float
    unit: str
    activity_unit: str
    """The denominator of `unit`: the meter unit this factor multiplies (kWh, Nm3, kg, TJ, ...)."""
    energy_type: str
    region: str
    year: int
    basis: str
    source: str
    version: int


def seed_table_text() -> str:
    return (resources.files("storage") / "data" / "emission_factors.csv").read_text()


def parse_table(text: str) -> list[tuple[str, str, int, float, str, str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(reader.fieldnames) != _COLUMNS:
        raise FactorTableError(
            f"factor table header must be {','.join(_COLUMNS)}, got {reader.fieldnames}"
        )
    rows = []
    for line, r in enumerate(reader, start=2):
        try:
            year = 0 if r["year"] == "*" else int(r["year"])
            value = float(r["factor"])
        except ValueError as exc:
            raise FactorTableError(f"line {line}: {exc}") from exc
        if not (value >= 0.0 and value < float("inf")):
            raise FactorTableError(f"line {line}: factor must be a finite number >= 0, got {value}")
        if not r["unit"].startswith("kgCO2/"):
            raise FactorTableError(
                f"line {line}: unit must be kgCO2/<activity unit>, got {r['unit']}"
            )
        rows.append(
            (r["energy_type"], r["region"], year, value, r["unit"], r["basis"], r["source"])
        )
    return rows


@dataclass(frozen=True)
class FactorVersion:
    version: int
    created: str
    note: str
    rows: int


class FactorTable:
    """Factor versions stored in the metadata database."""

    def __init__(self, db_path: DbLocation) -> None:
        self._conn = open_db(db_path, durability="fsync")
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def load(self, text: str, note: str) -> int:
        """Stores `text` as a new version unless identical content is already stored; returns it."""
        rows = parse_table(text)
        digest = hashlib.sha256("\n".join(repr(r) for r in sorted(rows)).encode()).hexdigest()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                found = self._conn.execute(
                    "SELECT version FROM factor_versions WHERE digest = ?", (digest,)
                ).fetchone()
                if found:
                    self._conn.execute("COMMIT")
                    return int(found[0])
                (version,) = self._conn.execute(
                    "SELECT coalesce(max(version), 0) + 1 FROM factor_versions"
                ).fetchone()
                self._conn.execute(
                    "INSERT INTO factor_versions VALUES (?, ?, ?, ?)",
                    (version, time.time_ns(), note, digest),
                )
                self._conn.executemany(
                    "INSERT INTO emission_factors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(version, *r) for r in rows],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        return int(version)

    def ensure_seeded(self) -> int:
        """Loads the built-in table as version 1 on a new database; returns the latest version."""
        latest = self.latest_version()
        return latest if latest else self.load(seed_table_text(), "built-in seed table")

    def versions(self) -> list[FactorVersion]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT v.version, v.created_ns, v.note, count(f.version) FROM factor_versions v "
                "LEFT JOIN emission_factors f ON f.version = v.version "
                "GROUP BY v.version ORDER BY v.version"
            ).fetchall()
        return [
            FactorVersion(
                int(r[0]),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(r[1]) / 1e9)),
                str(r[2]),
                int(r[3]),
            )
            for r in rows
        ]

    def latest_version(self) -> int:
        with self._lock:
            (v,) = self._conn.execute(
                "SELECT coalesce(max(version), 0) FROM factor_versions"
            ).fetchone()
        return int(v)

    def lookup(
        self, energy_type: str, region: str, year: int, basis: str, version: int
    ) -> Factor | None:
        with self._lock:
            rows = self._conn.execute(
                "SELECT energy_type, region, year, factor, unit, basis, source "
                "FROM emission_factors "
                "WHERE version = ? AND energy_type = ? AND basis = ? AND region IN (?, '*')",
                (version, energy_type, basis, region),
            ).fetchall()
        best: tuple[tuple[int, int], tuple[str, str, int, float, str, str, str]] | None = None
        for r in rows:
            r_year = int(r[2])
            if r_year == year:
                year_rank = 3
            elif r_year == 0:
                year_rank = 2
            elif r_year < year:
                year_rank = 1
            else:
                continue
            # Exact region beats the wildcard; among earlier years the most recent wins.
            rank = (int(r[1] == region) * 4 + year_rank, r_year)
            if best is None or rank > best[0]:
                best = (rank, r)
        if best is None:
            return None
        et, reg, yr, value, unit, bas, source = best[1]
        return Factor(value, unit, unit.split("/", 1)[1], et, reg, int(yr), bas, source, version)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def years_of(ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Calendar year (UTC) of each timestamp: emission factors are published per year."""
    years: npt.NDArray[np.int64] = (
        ts_ns.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    )
    return years
