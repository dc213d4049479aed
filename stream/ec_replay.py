"""Open EC periods are rebuilt from the journal on resume, not snapshotted with their samples.

A 30-min period at 20 Hz of 8 columns is up to 1.15 MB of float32 per tower, and Bytewax
snapshots every key that changed in an epoch: snapshotting the samples wrote half of that on
average for every tower at every epoch (~60 MB per 2-s epoch for 100 towers), which is what
bounded the tower count. The samples are already durable in the journal, so a tower snapshots
only where they are: the journal partition and the offsets of the records that placed samples in
its open period (zlib-packed offset deltas, a few bytes per record). On resume the tower reads
those records back and places them again; the decisions depend only on the samples' own
timestamps, so the rebuilt period is the one that was open.

The journal keeps a record for `journal.retention_s` after the flow's snapshots have passed it.
A tower that stays silent longer than that with a period open can find records trimmed: what is
missing is counted (`carbonstream_ec_replay_records{outcome="missing"}`) and reported as a dead
letter, and the period closes with the samples that remain.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from storage.journal import JournalRecord
from storage.journal_backend import JournalReaderBackend

Packed = tuple[int | None, bytes]
"""(journal partition, zlib of the uint64 offset deltas after the first offset)."""


@dataclass
class OpenRecords:
    """The journal records that placed samples in a tower's open period, in offset order."""

    partition: int | None = None
    offsets: list[int] = field(default_factory=list)

    def note(self, rec: JournalRecord, period_restarted: bool) -> None:
        """`period_restarted`: the record closed the open period and began the next one, so the
        earlier records hold nothing the new period needs."""
        if period_restarted:
            self.offsets.clear()
        self.partition = rec.partition
        if not self.offsets or self.offsets[-1] != rec.offset:
            self.offsets.append(rec.offset)

    def clear(self) -> None:
        self.offsets.clear()

    def pack(self) -> Packed:
        if not self.offsets:
            return (self.partition, b"")
        deltas = np.diff(np.asarray(self.offsets, dtype=np.uint64), prepend=np.uint64(0))
        return (self.partition, zlib.compress(deltas.tobytes(), 1))

    @classmethod
    def unpack(cls, packed: Packed) -> OpenRecords:
        partition, blob = packed
        if not blob:
            return cls(partition)
        deltas = np.frombuffer(zlib.decompress(blob), dtype=np.uint64)
        return cls(partition, [int(o) for o in np.cumsum(deltas)])


Fetch = Callable[[int, Sequence[int]], list[JournalRecord]]
"""(partition, offsets) -> the records still kept at those offsets, in order."""


class JournalFetcher:
    """Reads records back by offset, with one reader per partition and worker thread (readers
    hold connections that are not shared across threads). Readers stay open for the process:
    towers resume one by one, and opening a reader each time would cost more than the read."""

    def __init__(self, open_reader: Callable[[int], JournalReaderBackend]) -> None:
        self._open_reader = open_reader
        self._local = threading.local()

    def __call__(self, partition: int, offsets: Sequence[int]) -> list[JournalRecord]:
        readers: dict[int, JournalReaderBackend] | None = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = {}
        reader = readers.get(partition)
        if reader is None:
            reader = readers[partition] = self._open_reader(partition)
        return reader.read_offsets(offsets)
