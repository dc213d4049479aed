"""One way to open the SQLite databases the processes share (journal partitions, metadata).

WAL mode lets one writer and many readers in other processes work at once; `busy_timeout` turns
the short write-lock waits between processes into waits instead of errors.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Literal

Durability = Literal["fsync", "os"]

_SYNCHRONOUS = {
    # FULL: a commit has reached the disk when it returns; needed before acknowledging data.
    "fsync": "FULL",
    # NORMAL: survives a process crash, not a power loss; for data that can be recomputed.
    "os": "NORMAL",
}


def connect(
    path: Path, durability: Durability = "fsync", readonly: bool = False
) -> sqlite3.Connection:
    """Opens `path` in WAL mode with autocommit off-by-default semantics made explicit.

    `isolation_level=None` puts the connection in autocommit mode so that callers open their
    transactions with an explicit BEGIN (IMMEDIATE for writers, to take the lock up front).
    """
    if readonly:
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[durability]}")
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Rolls back if a transaction is still open. After SQLITE_FULL (and some I/O errors) SQLite
    has already rolled back by itself; a second ROLLBACK would fail and hide the first error."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
