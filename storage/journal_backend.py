"""What the rest of carbonstream needs of a journal, whichever stores it.

Two backends satisfy it: the local journal (storage/journal.py: one SQLite database per
partition, the default) and Kafka (storage/kafka_journal.py: one topic, one Kafka partition per
journal partition). Callers (connectors, push ingest, the dataflow's source, /health) are written
against these protocols and keep the same guarantees on both:

- `append` returns only once the entries are durable, with their offsets (> 0, increasing within
  a partition, never reused);
- an entry with a `dedupe_key` already appended within the dedupe window is not appended again,
  and `append` returns the offset of the first copy;
- a reader reads a partition in offset order from any offset; the next offset is the dataflow's
  resume state; `commit_progress` records a consumer's snapshotted position, which `status`
  (lag for /health) and `trim` (never below what a consumer may replay) use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from storage.journal import JournalEntry, JournalRecord, PartitionStatus


class JournalReaderBackend(Protocol):
    partition: int

    def read(self, from_offset: int, limit: int) -> list[JournalRecord]:
        """Up to `limit` records with offset >= `from_offset`, in order; [] when none is there
        yet (the caller polls again)."""
        ...

    def read_offsets(self, offsets: Sequence[int]) -> list[JournalRecord]:
        """The records at `offsets` (ascending) that are still kept, in order. Stateful steps
        rebuild open state from the journal with it instead of snapshotting the samples."""
        ...

    def head(self) -> int:
        """Last offset assigned in the partition (0 if none)."""
        ...

    def commit_progress(self, consumer: str, next_offset: int) -> None:
        """`consumer` has snapshotted everything below `next_offset`."""
        ...

    def close(self) -> None: ...


class JournalBackend(Protocol):
    @property
    def partitions(self) -> int: ...

    def partition_for(self, key: str) -> int: ...

    def append(self, partition: int, entries: Sequence[JournalEntry]) -> list[int]: ...

    def append_routed(self, entries: Sequence[JournalEntry]) -> list[tuple[int, int]]: ...

    def reader(self, partition: int) -> JournalReaderBackend: ...

    def head(self, partition: int) -> int: ...

    def status(self) -> list[PartitionStatus]: ...

    def trim(self, retention_ns: int, dedupe_window_ns: int = ...) -> int: ...

    def close(self) -> None: ...
