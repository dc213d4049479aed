"""Which backend stores what, from the configuration: the one place that chooses.

    journal   local SQLite partitions (default)   | Kafka topic      ([journal.kafka])
    metadata  SQLite file in data_dir (default)    | PostgreSQL       (storage.metadata_url)
    Zarr      directory in data_dir (default)      | S3-compatible    ([storage.object_store])

Callers get objects behind the same interfaces whichever is chosen (storage/journal_backend.py;
MetadataDB and FactorTable take either location; ProductStore either store location).
"""

from __future__ import annotations

from collections.abc import Callable

from carbonstream.config import Config
from storage.journal import Journal, JournalReader
from storage.journal_backend import JournalBackend, JournalReaderBackend


def open_journal(config: Config) -> JournalBackend:
    j = config.journal
    layout = config.storage.layout
    if j.kafka is not None:
        from storage.kafka_journal import KafkaJournal

        return KafkaJournal(j.kafka, j.partitions, j.durability, layout.metadata_db)
    return Journal(layout.journal_dir, j.partitions, j.durability, config.storage.min_free_bytes)


def journal_readers(config: Config) -> Callable[[int], JournalReaderBackend]:
    """partition -> a new reader of it (each dataflow source partition opens its own)."""
    j = config.journal
    kafka = j.kafka
    if kafka is not None:
        from storage.kafka_journal import KafkaJournalReader

        return lambda p: KafkaJournalReader(kafka, p)
    directory = config.storage.layout.journal_dir
    return lambda p: JournalReader(directory / f"p{p:04d}.sqlite", p)
