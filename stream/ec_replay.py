"""Open EC periods are rebuilt from the journal on resume, not snapshotted with their samples.

A 30-min period at 20 Hz of 8 columns is up to 1.15 MB of float32 per tower, and Bytewax
snapshots every key that changed in an epoch: snapshotting the samples wrote half of that on
average for every tower at every epoch (~60 MB per 2-s epoch for 100 towers), which is what
bounded the tower count. The samples are already durable in the journal, so a tower snapshots
only where they are: the journal partition and the offsets of the records that placed samples in
its open period (the gaps between offsets, one to two bytes per record). On resume the tower reads
those records back and places them again; the decisions depend only on the samples' own
timestamps, so the rebuilt period is the one that was open.

The journal keeps a record for `journal.retention_s` after the flow's snapshots have passed it.
A tower that stays silent longer than that with a period open can find records trimmed: what is
missing is counted (`carbonstream_ec_replay_records{outcome="missing"}`) and reported as a dead
letter, and the period closes with the samples that remain.
"""

from __future__ import annotations

import array
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from storage.journal import JournalRecord
from storage.journal_backend import JournalReaderBackend

Packed = tuple[int | None, int, str, bytes]
"""(journal partition, first offset, numpy dtype of the gaps, the gaps to the later offsets)."""

_GAP_TYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


@dataclass
class OpenRecords:
    """The journal records that placed samples in a tower's open period, in offset order.

    Kept in a C array and packed as the gaps between offsets in the narrowest integer type:
    this is written for every tower at every epoch, so it must cost microseconds (zlib took
    ~0.1 ms for a 30-min period's 1,800 offsets, and Python ints ~0.08 ms more)."""

    partition: int | None = None
    offsets: array.array[int] = field(default_factory=lambda: array.array("Q"))

    def note(self, rec: JournalRecord, period_restarted: bool) -> None:
        """`period_restarted`: the record closed the open period and began the next one, so the
        earlier records hold nothing the new period needs."""
        if period_restarted:
            del self.offsets[:]
        self.partition = rec.partition
        if not self.offsets or self.offsets[-1] != rec.offset:
            self.offsets.append(rec.offset)

    def pack(self) -> Packed:
        if not self.offsets:
            return (self.partition, 0, "", b"")
        offsets = np.frombuffer(self.offsets, dtype=np.uint64)
        gaps = np.diff(offsets)
        top = int(gaps.max()) if gaps.size else 0
        kind = next(t for t in _GAP_TYPES if top <= np.iinfo(t).max)
        return (self.partition, int(offsets[0]), np.dtype(kind).str, gaps.astype(kind).tobytes())

    @classmethod
    def unpack(cls, packed: Packed) -> OpenRecords:
        partition, first, kind, gaps = packed
        if not kind:
            return cls(partition)
        offsets = np.cumsum(np.frombuffer(gaps, dtype=kind), dtype=np.uint64) + np.uint64(first)
        return cls(partition, array.array("Q", [first, *offsets.tolist()]))


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
