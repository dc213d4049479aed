"""The durable journal between connectors and the dataflow.

Connectors append batches here and acknowledge their senders only once `append` returns: the rows
are then on disk (SQLite WAL, `synchronous=FULL`, and the filesystem confirmed healthy after the
fsync: a filesystem error racing with an fsync can make it report success for a write that the
repair then drops). The dataflow reads each partition in offset order; the next offset to read is
its resume state, so after a crash it replays from its last snapshot. Rows are trimmed only after
every consumer has snapshotted past them and a retention period has passed.

One SQLite database per partition keeps writers of different partitions from waiting on each
other and lets a partition be moved or inspected alone. Offsets come from AUTOINCREMENT so they
are never reused, even after the table has been trimmed empty.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.errors import check_space, confirm_committed, storage_errors
from storage.sqlite import Durability, connect, rollback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    offset    INTEGER PRIMARY KEY AUTOINCREMENT,
    stream    TEXT    NOT NULL,   -- routing key: stream id, or group id of a multi-stream batch
    kind      TEXT    NOT NULL,   -- payload kind, e.g. 'meter_readings'
    ingest_ns INTEGER NOT NULL,   -- when the journal accepted it (UTC epoch ns)
    payload   BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS dedupe (
    key       BLOB    PRIMARY KEY, -- content key of an idempotent append (e.g. a hash)
    offset    INTEGER NOT NULL,    -- where that content was first appended
    ingest_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consumers (
    consumer     TEXT PRIMARY KEY,
    next_offset  INTEGER NOT NULL,  -- first offset not yet covered by the consumer's last snapshot
    prev_offset  INTEGER NOT NULL,  -- the same at the snapshot before: safe to trim below
    updated_ns   INTEGER NOT NULL
);
"""

_META_FILE = "journal.json"
_OFFSETS_PER_QUERY = 500  # well under SQLite's bound on parameters of one statement


class JournalConfigError(RuntimeError):
    """The journal on disk was created with another partition count."""


@dataclass(frozen=True)
class JournalEntry:
    """What a connector appends: one batch of one kind, routed by `stream`."""

    stream: str
    kind: str
    payload: bytes
    dedupe_key: bytes | None = None
    """Makes the append idempotent: an entry whose key was appended before (within the dedupe
    window) is not appended again, and the first offset is returned. A sender that re-sends
    after a lost acknowledgement then changes nothing, not even the journal."""


@dataclass(frozen=True)
class JournalRecord:
    """A stored entry with its position."""

    partition: int
    offset: int
    stream: str
    kind: str
    ingest_ns: int
    payload: bytes


@dataclass(frozen=True)
class PartitionStatus:
    partition: int
    head: int
    """Last offset ever assigned (0 when the partition never held a record)."""
    consumed: int
    """Last offset covered by the slowest consumer's snapshot."""
    oldest_unconsumed_ingest_ns: int | None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.consumed)


def _head(conn: sqlite3.Connection) -> int:
    """Last offset ever assigned (AUTOINCREMENT's counter survives trimming); 0 if none."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    return int(row[0]) if row else 0


def partition_for(key: str, partitions: int) -> int:
    """Stable routing (CRC-32, never Python's salted `hash`): a stream stays in one partition."""
    return zlib.crc32(key.encode()) % partitions


class Journal:
    """All partitions of a local journal directory. Safe to share between threads of one process.

    A write the disk refuses raises `StorageUnavailable` (nothing of it is stored), and so does
    any append while less than `min_free_bytes` are free: the reserve keeps room for the dataflow
    to store what was already acknowledged, instead of the journal taking the last byte.
    """

    def __init__(
        self,
        directory: Path,
        partitions: int,
        durability: Durability = "fsync",
        min_free_bytes: int = 0,
    ) -> None:
        self.directory = directory
        self.partitions = partitions
        self._durability: Durability = durability
        self._min_free_bytes = min_free_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._check_partition_count()
        self._conns: list[sqlite3.Connection] = []
        self._locks = [threading.Lock() for _ in range(partitions)]
        for p in range(partitions):
            conn = connect(self.path_of(p), durability)
            conn.executescript(_SCHEMA)
            self._conns.append(conn)

    def _check_partition_count(self) -> None:
        meta = self.directory / _META_FILE
        if meta.exists():
            found = json.loads(meta.read_text())["partitions"]
            if found != self.partitions:
                raise JournalConfigError(
                    f"journal at {self.directory} has {found} partitions but the configuration "
                    "asks "
                    f"for {self.partitions}; streams are routed by partition, so the count cannot "
                    "change on existing data"
                )
        else:
            # Durable before any partition is used: after a power cut or a filesystem error an
            # unsynced file can come back empty, and the partition count cannot be guessed.
            # The temporary name is per process: every role prepares the directory at start.
            tmp = meta.with_name(f"{meta.name}.{os.getpid()}.tmp")
            with tmp.open("w") as f:
                f.write(json.dumps({"partitions": self.partitions}))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(meta)
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def path_of(self, partition: int) -> Path:
        return self.directory / f"p{partition:04d}.sqlite"

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.partitions)

    def append(self, partition: int, entries: Sequence[JournalEntry]) -> list[int]:
        """Appends `entries` in one transaction; they are durable when this returns.

        Raises `StorageUnavailable` when the disk is full (or below the reserve), read-only or
        failing: then none of `entries` is stored and the caller must not acknowledge them."""
        if not entries:
            return []
        refused = check_space(self.directory, self._min_free_bytes)
        if refused is not None:
            raise refused
        now = time.time_ns()
        conn = self._conns[partition]
        with self._locks[partition], storage_errors(self.path_of(partition)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                offsets = [self._insert(conn, e, now) for e in entries]
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        # The commit's fsync returned; a filesystem error racing with it can still have undone
        # it (see `confirm_committed`). Then nothing is acknowledged: the rows may or may not be
        # there after the repair, and the sender's re-send is deduplicated either way.
        refused = confirm_committed(self.directory)
        if refused is not None:
            raise refused
        return offsets

    @staticmethod
    def _insert(conn: sqlite3.Connection, e: JournalEntry, now: int) -> int:
        """Inserts one entry inside the caller's transaction (so the dedupe key and the record
        are committed together, or neither is)."""
        if e.dedupe_key is not None:
            seen = conn.execute(
                "SELECT offset FROM dedupe WHERE key = ?", (e.dedupe_key,)
            ).fetchone()
            if seen is not None:
                return int(seen[0])
        offset = int(
            conn.execute(
                "INSERT INTO records (stream, kind, ingest_ns, payload) "
                "VALUES (?, ?, ?, ?) RETURNING offset",
                (e.stream, e.kind, now, e.payload),
            ).fetchone()[0]
        )
        if e.dedupe_key is not None:
            conn.execute(
                "INSERT INTO dedupe (key, offset, ingest_ns) VALUES (?, ?, ?)",
                (e.dedupe_key, offset, now),
            )
        return offset

    def append_routed(self, entries: Sequence[JournalEntry]) -> list[tuple[int, int]]:
        """Appends entries to the partitions their keys route to; returns (partition, offset)."""
        by_partition: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            by_partition.setdefault(self.partition_for(e.stream), []).append(i)
        placed: list[tuple[int, int]] = [(0, 0)] * len(entries)
        for p, idx in sorted(by_partition.items()):
            for i, off in zip(idx, self.append(p, [entries[i] for i in idx]), strict=True):
                placed[i] = (p, off)
        return placed

    def reader(self, partition: int) -> JournalReader:
        """A reader with its own connection, for one consumer thread."""
        return JournalReader(self.path_of(partition), partition)

    def head(self, partition: int) -> int:
        with self._locks[partition]:
            return _head(self._conns[partition])

    def status(self) -> list[PartitionStatus]:
        """Head, consumed offset and age of the oldest unconsumed record, per partition."""
        out = []
        for p in range(self.partitions):
            with self._locks[p]:
                conn = self._conns[p]
                head = _head(conn)
                row = conn.execute("SELECT min(next_offset) FROM consumers").fetchone()
                next_offset = int(row[0]) if row and row[0] is not None else 1
                oldest = conn.execute(
                    "SELECT ingest_ns FROM records WHERE offset >= ? ORDER BY offset LIMIT 1",
                    (next_offset,),
                ).fetchone()
            out.append(
                PartitionStatus(p, head, next_offset - 1, int(oldest[0]) if oldest else None)
            )
        return out

    def trim(self, retention_ns: int, dedupe_window_ns: int = 86_400 * 10**9) -> int:
        """Deletes records that every consumer passed two snapshots ago and older than retention,
        and dedupe keys older than the dedupe window.

        Two snapshots back, because the latest snapshot a source took may not be committed by the
        dataflow yet when a crash happens; the one before it is. Returns the number of rows deleted.
        """
        deleted = 0
        now = time.time_ns()
        cutoff = now - retention_ns
        for p in range(self.partitions):
            with self._locks[p], storage_errors(self.path_of(p)):
                conn = self._conns[p]
                conn.execute("DELETE FROM dedupe WHERE ingest_ns < ?", (now - dedupe_window_ns,))
                row = conn.execute("SELECT min(prev_offset) FROM consumers").fetchone()
                if not row or row[0] is None:
                    continue
                cur = conn.execute(
                    "DELETE FROM records WHERE offset < ? AND ingest_ns < ?", (int(row[0]), cutoff)
                )
                deleted += cur.rowcount
        return deleted

    def close(self) -> None:
        for c in self._conns:
            c.close()


class JournalReader:
    """Reads one partition in offset order and records the consumer's snapshotted position."""

    def __init__(self, path: Path, partition: int) -> None:
        self.partition = partition
        self._path = path
        # Progress writes are bookkeeping for lag and trimming, not data: no fsync needed.
        self._conn = connect(path, durability="os")

    def read(self, from_offset: int, limit: int) -> list[JournalRecord]:
        return self._select("offset >= ? ORDER BY offset LIMIT ?", (from_offset, limit))

    def read_offsets(self, offsets: Sequence[int]) -> list[JournalRecord]:
        out: list[JournalRecord] = []
        for i in range(0, len(offsets), _OFFSETS_PER_QUERY):
            chunk = [int(o) for o in offsets[i : i + _OFFSETS_PER_QUERY]]
            out += self._select(f"offset IN ({','.join('?' * len(chunk))}) ORDER BY offset", chunk)
        return out

    def _select(self, where: str, params: Sequence[int]) -> list[JournalRecord]:
        rows = self._conn.execute(
            f"SELECT offset, stream, kind, ingest_ns, payload FROM records WHERE {where}", params
        ).fetchall()
        return [JournalRecord(self.partition, r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def head(self) -> int:
        return _head(self._conn)

    def commit_progress(self, consumer: str, next_offset: int) -> None:
        """Records the consumer's snapshotted position; `StorageUnavailable` if the disk refuses."""
        with storage_errors(self._path):
            self._conn.execute(
                "INSERT INTO consumers (consumer, next_offset, prev_offset, updated_ns) "
                "VALUES (?1, ?2, 0, ?3) "
                "ON CONFLICT (consumer) DO UPDATE SET "
                "prev_offset = consumers.next_offset, next_offset = ?2, updated_ns = ?3",
                (consumer, next_offset, time.time_ns()),
            )

    def close(self) -> None:
        self._conn.close()
