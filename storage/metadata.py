"""Relational state shared by the processes: the stream registry, component status and dead letters.

The stream registry gives every stream a stable row in the (stream, time) arrays of its axis. Rows
are assigned once and never change, so the same sample always lands in the same Zarr cell, in
every run and after every replay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from storage.database import DbLocation, open_db, rollback, storage_errors

STATUS_ROLE = "role"
"""Status component of role heartbeats (key: role name)."""
STATUS_ZARR = "zarr"
"""Status component of Zarr flushes (key: '<product>#<sink partition>')."""

DeviceHealthRow = tuple[str, str, int, str, int | None, int, int, str | None]
"""A polled device's health, in the device_health table's column order: meter, gateway, unit
id, state, last good reading (ns), consecutive errors, total errors, last error. A plain tuple:
the Modbus poller writes tens of thousands at a time (see connectors/modbus/health.py)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    axis       TEXT    NOT NULL,  -- which stream axis: 'meters', 'cems', 'ec', ...
    id         TEXT    NOT NULL,
    idx        INTEGER NOT NULL,  -- row in every (stream, time) array of the axis
    attrs      TEXT    NOT NULL,  -- JSON: commodity, unit, region, ...
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (axis, id),
    UNIQUE (axis, idx)
);
CREATE TABLE IF NOT EXISTS status (
    component  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,  -- JSON
    updated_ns INTEGER NOT NULL,
    PRIMARY KEY (component, key)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id         TEXT PRIMARY KEY,  -- deterministic (source position), so a replay cannot double it
    created_ns INTEGER NOT NULL,
    source     TEXT    NOT NULL,  -- where it was found: 'flow.meters', 'ingest.push', ...
    stream     TEXT,
    reason     TEXT    NOT NULL,  -- a short stable code, counted in metrics
    detail     TEXT    NOT NULL   -- JSON: the offending record and a readable message
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (created_ns);
CREATE TABLE IF NOT EXISTS device_health (
    meter              TEXT PRIMARY KEY,
    gateway            TEXT    NOT NULL,
    unit_id            INTEGER NOT NULL,
    state              TEXT    NOT NULL,  -- unknown | ok | degraded | dead
    last_good_ns       INTEGER,
    consecutive_errors INTEGER NOT NULL,
    total_errors       INTEGER NOT NULL,
    last_error         TEXT,
    updated_ns         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollup_dirty (
    product    TEXT    NOT NULL,  -- the product whose chunk changed, e.g. 'meters/interval'
    block      INTEGER NOT NULL,  -- chunk row-block
    chunk      INTEGER NOT NULL,  -- chunk time index
    generation INTEGER NOT NULL,  -- bumped at each change, so a change during a roll-up survives
    PRIMARY KEY (product, block, chunk)
);
CREATE TABLE IF NOT EXISTS registry_versions (
    axis    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL     -- bumped by every registration that adds or changes a stream
);
"""


@dataclass(frozen=True)
class StreamInfo:
    axis: str
    id: str
    idx: int
    attrs: dict[str, Any]


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be used, with why. Never silently dropped: stored and counted."""

    id: str
    source: str
    stream: str | None
    reason: str
    detail: dict[str, Any]


class MetadataDB:
    """The metadata database of one data directory. Thread-safe within a process."""

    def __init__(self, path: DbLocation) -> None:
        """`path`: the SQLite file, or a `postgresql://` URL (several hosts share it)."""
        self.path = path
        self._conn = open_db(path, durability="fsync")
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def _write(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """One transaction; `StorageUnavailable` when the disk refuses it."""
        return self._write_all([(sql, rows)])[0]

    def _write_all(self, statements: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> list[int]:
        """Every statement (each run over its rows) in one transaction: one commit, so one
        fsync and one wait for the write lock, however many there are."""
        with self._lock, storage_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                counts = [self._conn.executemany(sql, rows).rowcount for sql, rows in statements]
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
            return counts

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- stream registry ---------------------------------------------------------------------

    def register_streams(
        self, axis: str, streams: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, int]:
        """Assigns rows to streams not yet registered (in sorted id order); returns all their rows.

        Registration of an existing stream keeps its row; its attributes are updated when given.
        """
        now = time.time_ns()
        with self._lock, storage_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(
                    "SELECT id, idx, attrs FROM streams WHERE axis = ? "
                    "AND id IN (SELECT value FROM json_each(?))",
                    (axis, orjson.dumps(list(streams)).decode()),
                ).fetchall()
                known = {r[0]: r[1] for r in rows}
                known_attrs = {r[0]: orjson.loads(r[2]) for r in rows}
                (next_idx,) = self._conn.execute(
                    "SELECT coalesce(max(idx) + 1, 0) FROM streams WHERE axis = ?", (axis,)
                ).fetchone()
                changed = False
                for sid in sorted(streams):
                    attrs = orjson.dumps(dict(streams[sid])).decode()
                    if sid in known:
                        if streams[sid] and dict(streams[sid]) != known_attrs[sid]:
                            self._conn.execute(
                                "UPDATE streams SET attrs = ? WHERE axis = ? AND id = ?",
                                (attrs, axis, sid),
                            )
                            changed = True
                        continue
                    self._conn.execute(
                        "INSERT INTO streams (axis, id, idx, attrs, created_ns) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (axis, sid, next_idx, attrs, now),
                    )
                    known[sid] = next_idx
                    next_idx += 1
                    changed = True
                if changed:
                    self._conn.execute(
                        "INSERT INTO registry_versions (axis, version) VALUES (?, 1) "
                        "ON CONFLICT (axis) DO UPDATE SET version = registry_versions.version + 1",
                        (axis,),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        return {sid: int(known[sid]) for sid in streams}

    def registry_version(self, axis: str) -> int:
        """Changes whenever a stream of `axis` is added or its attributes change: readers that
        derive something from the whole registry (roll-up trees) rebuild it only then."""
        rows = self._query("SELECT version FROM registry_versions WHERE axis = ?", (axis,))
        return int(rows[0][0]) if rows else 0

    def streams(self, axis: str, ids: Sequence[str] | None = None) -> list[StreamInfo]:
        if ids is None:
            rows = self._query(
                "SELECT id, idx, attrs FROM streams WHERE axis = ? ORDER BY idx", (axis,)
            )
        else:
            rows = self._query(
                "SELECT id, idx, attrs FROM streams WHERE axis = ? "
                "AND id IN (SELECT value FROM json_each(?)) ORDER BY idx",
                (axis, orjson.dumps(list(ids)).decode()),
            )
        return [StreamInfo(axis, r[0], int(r[1]), orjson.loads(r[2])) for r in rows]

    def streams_by_rows(self, axis: str, first: int, stop: int) -> list[StreamInfo]:
        rows = self._query(
            "SELECT id, idx, attrs FROM streams "
            "WHERE axis = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (axis, first, stop),
        )
        return [StreamInfo(axis, r[0], int(r[1]), orjson.loads(r[2])) for r in rows]

    def stream_ids(self, axis: str) -> set[str]:
        """Ids registered on an axis (no attributes: cheap enough to check every push)."""
        return {r[0] for r in self._query("SELECT id FROM streams WHERE axis = ?", (axis,))}

    def stream_count(self, axis: str) -> int:
        return int(self._query("SELECT count(*) FROM streams WHERE axis = ?", (axis,))[0][0])

    # -- component status --------------------------------------------------------------------

    def put_status(self, component: str, key: str, value: Mapping[str, Any]) -> None:
        self._write(*self._status_upsert(component, [(key, value)]))

    def _status_upsert(
        self, component: str, values: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> tuple[str, list[tuple[str, str, str, int]]]:
        now = time.time_ns()
        return (
            "INSERT INTO status (component, key, value, updated_ns) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (component, key) DO UPDATE SET value = excluded.value, "
            "updated_ns = excluded.updated_ns",
            [(component, k, orjson.dumps(dict(v)).decode(), now) for k, v in values],
        )

    def status(
        self, component: str | None = None
    ) -> dict[tuple[str, str], tuple[dict[str, Any], int]]:
        """(component, key) -> (value, updated_ns)."""
        if component is None:
            rows = self._query("SELECT component, key, value, updated_ns FROM status")
        else:
            rows = self._query(
                "SELECT component, key, value, updated_ns FROM status WHERE component = ?",
                (component,),
            )
        return {(r[0], r[1]): (orjson.loads(r[2]), int(r[3])) for r in rows}

    # -- device health -----------------------------------------------------------------------

    def put_device_health(self, rows: Sequence[DeviceHealthRow]) -> None:
        """Replaces the health of the given polled devices (one transaction)."""
        now = time.time_ns()
        self._write(
            "INSERT INTO device_health VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (meter) DO UPDATE SET gateway = excluded.gateway, "
            "unit_id = excluded.unit_id, state = excluded.state, "
            "last_good_ns = excluded.last_good_ns, "
            "consecutive_errors = excluded.consecutive_errors, "
            "total_errors = excluded.total_errors, last_error = excluded.last_error, "
            "updated_ns = excluded.updated_ns",
            [(*r, now) for r in rows],
        )

    def device_health(
        self, state: str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[dict[str, Any]]:
        cols = (
            "meter, gateway, unit_id, state, last_good_ns, consecutive_errors, total_errors, "
            "last_error, updated_ns"
        )
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self._query(
            f"SELECT {cols} FROM device_health {where} ORDER BY meter LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        names = [c.strip() for c in cols.split(",")]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def device_states(self) -> dict[str, int]:
        rows = self._query("SELECT state, count(*) FROM device_health GROUP BY state")
        return {str(r[0]): int(r[1]) for r in rows}

    # -- roll-up work ------------------------------------------------------------------------

    def mark_dirty(self, product: str, chunks: Iterable[tuple[int, int]]) -> None:
        """Records that these (row block, time chunk) chunks of `product` changed."""
        self._write(*self._dirty_upsert([(product, chunks)]))

    def record_flushes(
        self,
        dirty: Sequence[tuple[str, Iterable[tuple[int, int]]]],
        component: str,
        status: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> None:
        """`mark_dirty` for each (product, chunks) of `dirty` and `put_status` for each
        (key, value) of `status`, in one transaction: a sink partition's snapshot made two
        commits per product, and at every minute's close of 100,000 meters the flow's thread
        waited up to a second on them."""
        statements: list[tuple[str, Iterable[Sequence[Any]]]] = []
        if dirty:
            statements.append(self._dirty_upsert(dirty))
        statements.append(self._status_upsert(component, status))
        self._write_all(statements)

    @staticmethod
    def _dirty_upsert(
        dirty: Sequence[tuple[str, Iterable[tuple[int, int]]]],
    ) -> tuple[str, list[tuple[str, int, int]]]:
        return (
            "INSERT INTO rollup_dirty (product, block, chunk, generation) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (product, block, chunk) DO UPDATE "
            "SET generation = rollup_dirty.generation + 1",
            [(product, b, c) for product, chunks in dirty for b, c in chunks],
        )

    def dirty(self, product: str) -> list[tuple[int, int, int]]:
        """(block, chunk, generation) of every changed chunk not yet rolled up."""
        rows = self._query(
            "SELECT block, chunk, generation FROM rollup_dirty WHERE product = ? "
            "ORDER BY chunk, block",
            (product,),
        )
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def clear_dirty(self, product: str, done: Sequence[tuple[int, int, int]]) -> None:
        """Forgets chunks rolled up at the generation seen; a chunk changed since stays dirty."""
        self._write(
            "DELETE FROM rollup_dirty "
            "WHERE product = ? AND block = ? AND chunk = ? AND generation = ?",
            [(product, b, c, g) for b, c, g in done],
        )

    # -- dead letters ------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        """Stores letters; ones already stored (same id, e.g. after a replay) are ignored."""
        if not letters:
            return 0
        now = time.time_ns()
        return self._write(
            "INSERT INTO dead_letters (id, created_ns, source, stream, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                (d.id, now, d.source, d.stream, d.reason, orjson.dumps(d.detail).decode())
                for d in letters
            ],
        )

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, created_ns, source, stream, reason, detail FROM dead_letters "
            "ORDER BY created_ns DESC, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [
            {
                "id": r[0],
                "created_ns": r[1],
                "source": r[2],
                "stream": r[3],
                "reason": r[4],
                "detail": orjson.loads(r[5]),
            }
            for r in rows
        ]

    def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        rows = self._query(
            "SELECT source, reason, count(*) FROM dead_letters GROUP BY source, reason"
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
