"""The carbonstream dataflow, composed from the steps of each stream kind.

journal (one source partition per journal partition)
  -> key by (kind, journal partition)
  -> meters: MeterIntegration (Rust counter kernel)      -> cells, dead letters
  -> other kinds: dead letter 'unknown_kind' (a newer producer than this flow)
  -> cells routed by chunk row-block -> ZarrSink (one writer per chunk)
  -> dead letters -> DeadLetterSink (metadata database)
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from carbonstream.config import Config
from carbonstream.products import meters_interval_spec, to_ns
from storage.factors import FactorTable
from storage.journal import JournalRecord
from storage.metadata import DeadLetter, MetadataDB
from storage.records import METER_READINGS
from stream.dead_letter_sink import DeadLetterSink
from stream.items import CellBatch
from stream.journal_source import JournalSource
from stream.meter_lookup import MeterLookup
from stream.meters import FlowOutput, MeterIntegration, MeterStepSettings, State
from stream.zarr_sink import ZarrSink, route_by_chunk


def build_dataflow(config: Config, stop_at_end: bool = False) -> Dataflow:
    """The dataflow of `config`; `stop_at_end` ends it once the journal is read to its end."""
    layout = config.storage.layout
    spec = meters_interval_spec(config)
    settings = MeterStepSettings(
        spec=spec,
        max_gap_ns=to_ns(config.products.meters_interval.max_gap_s),
        future_tolerance_ns=to_ns(config.flow.future_tolerance_s),
    )

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
        ),
    )
    keyed = op.key_on("by_kind_partition", records, lambda r: f"{r.kind}/p{r.partition:04d}")
    kinds = op.branch("is_meter_readings", keyed, lambda kv: kv[1].kind == METER_READINGS)

    def build_meters(resume: State | None) -> MeterIntegration:
        # One lookup per key's logic; built lazily on the worker that owns the key.
        return MeterIntegration(settings, _meter_lookup(config, spec.axis), resume)

    meter_out = op.stateful_batch("meters", kinds.trues, build_meters)
    unknown = op.map("unknown_kind", kinds.falses, lambda kv: _unknown_kind(kv[1]))

    results: Any = op.merge("results", op.key_rm("unkey", meter_out), unknown)
    split = op.branch("is_cells", results, lambda x: isinstance(x, CellBatch))
    cells = split.trues
    letters = split.falses
    routed = op.flat_map("route_by_chunk", cells, lambda b: route_by_chunk(b, spec.chunk_streams))
    op.output(
        "zarr",
        routed,
        ZarrSink(
            layout.zarr_store,
            layout.data_dir / "locks",
            layout.metadata_db,
            {spec.name: spec},
            config.flow.sink_partitions,
            frozenset({spec.name}) if config.rollups.enabled else frozenset(),
        ),
    )
    op.output("dead_letters", letters, DeadLetterSink(layout.metadata_db))
    return flow


def _meter_lookup(config: Config, axis: str) -> MeterLookup:
    path = config.storage.layout.metadata_db
    factors = FactorTable(path)
    return MeterLookup(MetadataDB(path), factors, factors.latest_version(), axis)


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
