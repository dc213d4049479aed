"""The relational database of a deployment: an embedded SQLite file (the default) or a PostgreSQL
server shared by several hosts, opened through one function.

A location is a `Path` (SQLite, WAL mode, see storage/sqlite.py) or a `postgresql://` URL
(storage/postgres.py). Both connections take the same statements (SQLite's spelling, translated
for PostgreSQL), so the stores built on them (metadata, emission factors, the Kafka journal's
dedupe index) have one implementation.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from storage.postgres import PgConnection, is_postgres_url
from storage.sqlite import Durability, connect

DbLocation = Path | str
"""A SQLite file, or a `postgresql://user:password@host:port/dbname` URL."""


class DbCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class DbConnection(Protocol):
    """What the stores use of a connection (sqlite3.Connection has it; PgConnection mimics it)."""

    def execute(self, sql: str, params: Any = ..., /) -> DbCursor: ...

    def executemany(self, sql: str, rows: Any, /) -> DbCursor: ...

    def executescript(self, script: str, /) -> Any: ...

    def close(self) -> None: ...


def open_db(location: DbLocation, durability: Durability = "fsync") -> DbConnection:
    """A connection to `location` (`durability` applies to SQLite; PostgreSQL commits are
    durable per the server's own `synchronous_commit`, on by default)."""
    if is_postgres_url(location):
        return PgConnection(str(location))
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn: sqlite3.Connection = connect(path, durability)
    return conn


def describe(location: DbLocation) -> str:
    """For logs: the file, or the server without the password."""
    if is_postgres_url(location):
        text = str(location)
        scheme, _, rest = text.partition("://")
        if "@" in rest:
            creds, _, host = rest.rpartition("@")
            return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
        return text
    return str(location)
