"""Bytewax source over the journal: one source partition per journal partition.

The resume state is the next offset to read. At each snapshot the partition also records that
offset in the journal's `consumers` table, which is what `/health` reports as lag and what the
trimmer waits for. That record is bookkeeping, not state: when the disk refuses it (full,
read-only) it is skipped (counted) and the next snapshot writes a newer one; an older recorded
position only delays trimming.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from carbonstream.faults import crash_point, slow_point
from carbonstream.metrics import STORAGE_REFUSED
from storage.errors import StorageUnavailable
from storage.journal import JournalReader, JournalRecord
from storage.journal_backend import JournalReaderBackend
from stream.watchdog import FLOW_PROGRESS

CONSUMER = "flow"


class JournalSource(FixedPartitionedSource[JournalRecord, int]):
    """`stop_at_end`: finish once every record present at start is read (re-processing, tests).

    `open_reader` (partition -> reader) reads another backend (e.g. Kafka, see
    carbonstream/backends.py); by default the local journal in `journal_dir`."""

    def __init__(
        self,
        journal_dir: Path,
        partitions: int,
        read_batch: int,
        poll_s: float,
        stop_at_end: bool = False,
        open_reader: Callable[[int], JournalReaderBackend] | None = None,
    ) -> None:
        self._dir = journal_dir
        self._open_reader = open_reader
        self._partitions = partitions
        self._read_batch = read_batch
        self._poll = timedelta(seconds=poll_s)
        self._stop_at_end = stop_at_end

    def list_parts(self) -> list[str]:
        return [f"p{p:04d}" for p in range(self._partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _JournalPartition:
        p = int(for_part[1:])
        reader: JournalReaderBackend
        if self._open_reader is not None:
            reader = self._open_reader(p)
        else:
            reader = JournalReader(self._dir / f"p{p:04d}.sqlite", p)
        return _JournalPartition(
            reader, resume_state or 1, self._read_batch, self._poll, self._stop_at_end
        )


class _JournalPartition(StatefulSourcePartition[JournalRecord, int]):
    def __init__(
        self,
        reader: JournalReaderBackend,
        next_offset: int,
        read_batch: int,
        poll: timedelta,
        stop_at_end: bool,
    ) -> None:
        self._reader = reader
        self._next = next_offset
        self._read_batch = read_batch
        self._poll = poll
        self._awake: datetime | None = None
        self._end = reader.head() if stop_at_end else None

    def next_batch(self) -> list[JournalRecord]:
        if self._end is not None and self._next > self._end:
            raise StopIteration()
        records = self._reader.read(self._next, self._read_batch)
        if records:
            slow_point("flow.source.batch")
            self._next = records[-1].offset + 1
            self._awake = None
        else:
            self._awake = datetime.now(UTC) + self._poll
        return records

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        FLOW_PROGRESS.beat()  # an epoch closed: the workers and their recovery store are alive
        try:
            self._reader.commit_progress(CONSUMER, self._next)
        except StorageUnavailable as exc:
            STORAGE_REFUSED.labels("flow.journal_progress", exc.reason).inc()
        crash_point("flow.source.snapshot")
        return self._next

    def close(self) -> None:
        self._reader.close()
