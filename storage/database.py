"""The relational database of a deployment: an embedded SQLite file (the default) or a PostgreSQL
server shared by several hosts, opened through one function.

A location is a `Path` (SQLite, WAL mode, see storage/sqlite.py) or a `postgresql://` URL
(storage/postgres.py). Both connections take the same statements (SQLite's spelling, translated
for PostgreSQL), so the stores built on them (metadata, emission factors, the Kafka journal's
dedupe index) have one implementation.
"""

from __future__ import annotations

import contextlib
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from storage import errors
from storage.postgres import PgConnection, is_postgres_url
from storage.sqlite import Durability, connect
from storage.sqlite import rollback as sqlite_rollback

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


def rollback(conn: DbConnection) -> None:
    """Rolls back the open transaction, if any, without hiding the error that led here (SQLite
    may have rolled back by itself; PostgreSQL refuses nothing but a lost connection)."""
    if isinstance(conn, sqlite3.Connection):
        sqlite_rollback(conn)
    elif isinstance(conn, PgConnection):
        conn.rollback()
    else:
        conn.execute("ROLLBACK")


def storage_errors(location: DbLocation) -> AbstractContextManager[None]:
    """The disk's refusals of a SQLite file as `StorageUnavailable` (storage/errors.py). A
    PostgreSQL server's disk is not this host's to inspect: its errors pass unchanged."""
    if is_postgres_url(location):
        return contextlib.nullcontext()
    return errors.storage_errors(Path(location))


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
