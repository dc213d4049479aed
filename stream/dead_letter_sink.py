"""Bytewax sink storing dead letters in the metadata database and counting them.

Letter ids are derived from the journal position of the bad record, so the rows a replay
produces again are ignored by the database instead of doubled. A disk that refuses the write
makes the flow wait and retry (stream/storage_wait.py): a dead letter is never dropped.
"""

from __future__ import annotations

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from carbonstream.metrics import DEAD_LETTERS
from storage.database import DbLocation
from storage.metadata import DeadLetter, MetadataDB
from stream.storage_wait import until_stored


class DeadLetterSink(DynamicSink[DeadLetter]):
    def __init__(self, metadata_db: DbLocation) -> None:
        self._path = metadata_db

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeadLetterPartition:
        return _DeadLetterPartition(MetadataDB(self._path))


class _DeadLetterPartition(StatelessSinkPartition[DeadLetter]):
    def __init__(self, db: MetadataDB) -> None:
        self._db = db

    def write_batch(self, items: list[DeadLetter]) -> None:
        until_stored("flow.dead_letters", self._db.path, lambda: self._db.add_dead_letters(items))
        for d in items:
            DEAD_LETTERS.labels(d.source, d.reason).inc()

    def close(self) -> None:
        self._db.close()
