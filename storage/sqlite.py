"""One way to open the SQLite databases the processes share (journal partitions, metadata).

WAL mode lets one writer and many readers in other processes work at once; `busy_timeout` turns
the short write-lock waits between processes into waits instead of errors.
"""

from __future__ import annotations

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
