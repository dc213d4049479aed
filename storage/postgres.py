"""PostgreSQL behind the part of `sqlite3.Connection` that the relational stores use.

The metadata database, the factor table and the Kafka journal's dedupe index are written once,
in SQLite's SQL, against this small surface: `execute`, `executemany`, `executescript`, explicit
`BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK`, and cursors with `fetchone`, `fetchall`, `rowcount`.
`PgConnection` offers the same surface on a PostgreSQL server, so several hosts (API replicas,
flow processes of a cluster) share one database. It translates only what the two dialects spell
differently in that code:

- `?` placeholders become `%s` (the statements hold no literal `?` or `%`; a `%` is escaped);
- `json_each(?)` becomes `json_array_elements_text(%s::json)` (both yield a `value` column);
- in schemas, `INTEGER` becomes `BIGINT` (nanosecond timestamps), `REAL` `DOUBLE PRECISION`,
  `BLOB` `BYTEA`;
- `BEGIN IMMEDIATE` (SQLite: take the one write lock up front) becomes `BEGIN` plus a
  transaction-scoped advisory lock on the database, so writers are serialised exactly as they are
  in SQLite: a read-then-write transaction (e.g. "next free row = max + 1") never races another.
  Writes are small and rare next to the array data, so one write lock costs nothing measurable.

Everything else (`ON CONFLICT ... DO UPDATE/NOTHING`, `RETURNING`, `coalesce`, `count(*)`) is
written the same way in both. A schema script runs under the same lock, because PostgreSQL's
`CREATE TABLE IF NOT EXISTS` is not safe against a concurrent identical statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

WRITE_LOCK_KEY = 0x63617262  # 'carb': the advisory lock standing for SQLite's write lock

_TYPES = [
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
]
_JSON_EACH = re.compile(r"json_each\(\?\)")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def translate(sql: str) -> str:
    """SQLite-flavoured statement -> PostgreSQL (see the module docstring for what changes)."""
    sql = sql.replace("%", "%%")
    sql = _JSON_EACH.sub("json_array_elements_text(?::json)", sql)
    return sql.replace("?", "%s")


def translate_schema(script: str) -> str:
    for pattern, replacement in _TYPES:
        script = pattern.sub(replacement, script)
    return script


class PgCursor:
    """The result of one statement, read like an sqlite3 cursor."""

    def __init__(self, rows: list[tuple[Any, ...]] | None, rowcount: int) -> None:
        self._rows = rows or []
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest


class PgConnection:
    """One PostgreSQL session in autocommit mode; transactions are opened explicitly, as the
    SQLite code does (`isolation_level=None`). Not shared between threads without a lock (the
    stores using it hold one)."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            self._conn.execute("BEGIN")
            if "IMMEDIATE" in head or "EXCLUSIVE" in head:
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            return PgCursor(None, -1)
        cur = self._conn.execute(translate(sql), tuple(params))
        rows = cur.fetchall() if cur.description is not None else None
        return PgCursor(rows, cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        with self._conn.cursor() as cur:
            cur.executemany(translate(sql), [tuple(r) for r in rows])
            return PgCursor(None, cur.rowcount)

    def executescript(self, script: str) -> None:
        """Runs a schema script atomically and under the write lock (see the module docstring)."""
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            self._conn.execute(translate_schema(script).encode())

    def close(self) -> None:
        self._conn.close()
