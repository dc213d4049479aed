"""How a stream kind plugs into the dataflow.

Each kind of journal record (meter readings, HJ 212 packets, EC raw batches, ...) has one
pipeline: the products it writes and a function that turns the stream of its records into
`FlowOutput` items (cells for Zarr, dead letters). The pipeline chooses its own keying (per
journal partition, per tower, per stack) and its own state. Everything after it (routing cells to
the chunk owners, the Zarr and dead-letter sinks) is shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bytewax.dataflow import Stream

from carbonstream.config import Config
from storage.journal import JournalRecord
from storage.metadata import DeadLetter
from storage.products import ProductSpec
from stream.items import CellBatch

FlowOutput = CellBatch | DeadLetter


@dataclass(frozen=True)
class KindPipeline:
    kind: str
    """The journal record kind it consumes (see storage/records.py)."""
    products: Callable[[Config], list[ProductSpec]]
    """The products its cells go to."""
    build: Callable[[str, Stream[JournalRecord], Config], Stream[FlowOutput]]
    """(step id prefix, records of this kind, config) -> cells and dead letters. Step ids are
    the prefix, '_' and a name (Bytewax refuses dots in step ids)."""
    rolled_up: frozenset[str] = frozenset()
    """Products whose changes feed the entity roll-ups."""
