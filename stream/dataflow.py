"""The carbonstream dataflow, composed from the pipeline of each stream kind.

    journal (one source partition per journal partition)
      -> per kind (stream/pipeline.py): meters (Rust counter kernel), ...  -> cells, dead letters
      -> records of a kind no pipeline handles: dead letter 'unknown_kind'
      -> cells routed by chunk row-block -> ZarrSink (one writer per chunk)
      -> dead letters -> DeadLetterSink (metadata database)

A new stream kind adds its `KindPipeline` to PIPELINES; nothing else here changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from carbonstream.backends import journal_readers
from carbonstream.config import Config
from carbonstream.products import product_specs
from storage.journal import JournalRecord
from storage.metadata import DeadLetter
from stream import cems, ec, meters
from stream.alerts import AlertLogic, AlertRouter, AlertSink, RuleBook
from stream.dead_letter_sink import DeadLetterSink
from stream.items import CellBatch
from stream.journal_source import JournalSource
from stream.pipeline import FlowOutput, KindPipeline
from stream.zarr_sink import ZarrSink, route_by_chunk

PIPELINES: tuple[KindPipeline, ...] = (meters.PIPELINE, ec.PIPELINE, cems.PIPELINE)


def build_dataflow(config: Config, stop_at_end: bool = False) -> Dataflow:
    """The dataflow of `config`; `stop_at_end` ends it once the journal is read to its end."""
    layout = config.storage.layout
    flow = Dataflow("carbonstream")
    records = op.input(
        "journal",
        flow,
        JournalSource(
            layout.journal_dir,
            config.journal.partitions,
            config.journal.read_batch,
            config.journal.poll_interval_s,
            stop_at_end,
            journal_readers(config),
        ),
    )
    outputs: list[Stream[FlowOutput]] = []
    for p in PIPELINES:
        mine = op.filter(f"{p.kind}_records", records, _of_kind(p.kind))
        outputs.append(p.build(p.kind, mine, config))
    known = frozenset(p.kind for p in PIPELINES)
    unknown = op.filter("unknown_kind_records", records, lambda r: r.kind not in known)
    outputs.append(op.map("unknown_kind", unknown, _unknown_kind))

    results = op.merge("results", *outputs)
    cells = op.filter_map("cells", results, _cells)
    letters = op.filter_map("letters", results, _letters)
    specs = {s.name: s for p in PIPELINES for s in p.products(config)}
    chunk_rows = {name: s.chunk_streams for name, s in specs.items()}

    def route(batch: CellBatch) -> list[tuple[str, CellBatch]]:
        return route_by_chunk(batch, chunk_rows[batch.product])

    rolled_up: frozenset[str] = frozenset()
    if config.rollups.enabled:
        rolled_up = rolled_up.union(*(p.rolled_up for p in PIPELINES))
    sink = ZarrSink(
        layout.zarr_store,
        layout.data_dir / "locks",
        layout.metadata_db,
        specs,
        config.flow.sink_partitions,
        rolled_up,
        # The flow may use half of the reserve ingest keeps (storage.min_free_bytes).
        config.storage.min_free_bytes // 2,
    )
    owned = op.filter("owned_cells", cells, lambda b: b.product in specs)
    op.output("zarr", op.flat_map("route_by_chunk", owned, route), sink)
    _add_alerts(cells, config)
    op.output("dead_letters", letters, DeadLetterSink(layout.metadata_db))
    return flow


def _add_alerts(cells: Stream[CellBatch], config: Config) -> None:
    """Alert rules evaluated on every product's cells (see stream/alerts.py)."""
    path = config.storage.layout.metadata_db
    all_specs = product_specs(config)
    observations = op.flat_map("alert_observations", cells, AlertRouter(path, all_specs))
    book = RuleBook(path)

    def build(resume: dict[str, Any] | None) -> AlertLogic:
        return AlertLogic(book, all_specs, resume)

    events = op.stateful_batch("alert_state", observations, build)
    op.output("alert_events", op.key_rm("alert_unkey", events), AlertSink(path))


def _of_kind(kind: str) -> Callable[[JournalRecord], bool]:
    return lambda r: r.kind == kind


def _cells(x: FlowOutput) -> CellBatch | None:
    return x if isinstance(x, CellBatch) else None


def _letters(x: FlowOutput) -> DeadLetter | None:
    return x if isinstance(x, DeadLetter) else None


def _unknown_kind(rec: JournalRecord) -> FlowOutput:
    return DeadLetter(
        id=f"flow:{rec.partition}:{rec.offset}",
        source="flow",
        stream=rec.stream,
        reason="unknown_kind",
        detail={
            "message": f"no step handles journal records of kind {rec.kind!r}",
            "journal": {"partition": rec.partition, "offset": rec.offset},
        },
    )
