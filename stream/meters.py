"""The meter step: journal records of register readings -> meters/interval cells + dead letters.

State is kept per journal partition (a meter always routes to the same one), as one Rust
`IntervalIntegrator` per distinct register rollover, so a whole batch of many meters is one kernel
call. Checks that depend on time use the journal's arrival time, never the wall clock, so a
replay after a crash decides exactly as the first run did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import bytewax.operators as op
import numpy as np
import polars as pl
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from carbonstream.config import Config
from carbonstream.core import meters as meters_core
from carbonstream.metrics import READINGS
from carbonstream.products import meters_interval_spec, to_ns
from storage.codec import PayloadError
from storage.factors import FactorTable, years_of
from storage.journal import JournalRecord
from storage.metadata import DeadLetter, MetadataDB
from storage.products import ProductSpec
from storage.records import METER_READINGS, decode_meter_readings
from stream.items import CellBatch
from stream.meter_lookup import MeterLookup
from stream.pipeline import FlowOutput, KindPipeline

log = logging.getLogger(__name__)

SOURCE = "flow.meters"

# Names of the kernel's status codes (core-rs/src/meters/counter.rs ReadingStatus), in code order.
STATUS_NAMES = (
    "accepted",
    "wrapped",
    "baseline",
    "gap",
    "reset",
    "duplicate",
    "conflict",
    "out_of_order",
    "invalid",
)
REJECTED = {
    6: "conflicting value for a timestamp already read",
    7: "older than the meter's last accepted reading",
    8: "value is not a finite number >= 0",
}


@dataclass(frozen=True)
class MeterStepSettings:
    spec: ProductSpec
    max_gap_ns: int
    future_tolerance_ns: int


State = dict[str, bytes]


def _rollover_key(r: float) -> str:
    return "none" if np.isnan(r) else repr(float(r))


class MeterIntegration(StatefulBatchLogic[JournalRecord, FlowOutput, State]):
    def __init__(
        self, settings: MeterStepSettings, lookup: MeterLookup, resume: State | None
    ) -> None:
        self._s = settings
        self._lookup = lookup
        self._integrators: dict[str, meters_core.IntervalIntegrator] = {}
        for key, blob in (resume or {}).items():
            self._integrators[key] = meters_core.IntervalIntegrator.restore(
                blob, *self._grid_args(key)
            )

    def _grid_args(self, key: str) -> tuple[int, int, int, float | None]:
        spec = self._s.spec
        rollover = None if key == "none" else float(key)
        return spec.origin_ns, spec.step_ns, self._s.max_gap_ns, rollover

    def _integrator(self, key: str) -> meters_core.IntervalIntegrator:
        it = self._integrators.get(key)
        if it is None:
            it = meters_core.IntervalIntegrator(*self._grid_args(key))
            self._integrators[key] = it
        return it

    def on_batch(self, values: list[JournalRecord]) -> tuple[Iterable[FlowOutput], bool]:
        out: list[FlowOutput] = []
        frames = []
        for seq, rec in enumerate(values):
            try:
                frame = decode_meter_readings(rec.payload)
            except PayloadError as exc:
                out.append(_record_letter(rec, "bad_payload", str(exc)))
                continue
            frames.append(
                frame.with_columns(
                    seq=pl.lit(seq, pl.UInt32),
                    partition=pl.lit(rec.partition, pl.Int32),
                    offset=pl.lit(rec.offset, pl.Int64),
                    row_in_record=pl.int_range(pl.len(), dtype=pl.Int32),
                    ingest_ns=pl.lit(rec.ingest_ns, pl.Int64),
                )
            )
        if frames:
            out.extend(self._integrate(pl.concat(frames)))
        return out, StatefulBatchLogic.RETAIN

    def _integrate(self, df: pl.DataFrame) -> list[FlowOutput]:
        out: list[FlowOutput] = []
        rows = self._lookup.rows(df["meter"].fill_null(""))
        ts = df["ts_ns"].fill_null(0).to_numpy()
        refused = np.full(len(df), "", dtype=object)
        refused[rows < 0] = "unknown_meter"
        refused[ts < self._s.spec.origin_ns] = "before_origin"
        refused[ts > df["ingest_ns"].to_numpy() + self._s.future_tolerance_ns] = "future"
        refused[df["ts_ns"].is_null().to_numpy()] = "missing_timestamp"
        bad = np.flatnonzero(refused != "")
        for reason in _REFUSAL_TEXT:
            n = int((refused == reason).sum())
            if n:
                READINGS.labels(reason).inc(n)
        out.extend(
            _row_letter(df, int(i), str(refused[i]), _REFUSAL_TEXT[str(refused[i])]) for i in bad
        )

        ok = np.flatnonzero(refused == "")
        if ok.size == 0:
            return out
        rows, ts = rows[ok], ts[ok]
        seq = df["seq"].to_numpy()[ok]
        value = df["value"].to_numpy()[ok].astype(np.float64, copy=False)
        factor = self._lookup.factors(rows, years_of(ts))
        rollovers, group = np.unique(
            self._lookup.rollover(rows), return_inverse=True, equal_nan=True
        )
        for g, rollover in enumerate(rollovers):
            sel = np.flatnonzero(group == g)
            key = _rollover_key(float(rollover))
            (c_row, c_slot, cons, co2, cov, reading, closed), status = self._integrator(
                key
            ).integrate(
                rows[sel].astype(np.uint32),
                np.ascontiguousarray(seq[sel]),
                np.ascontiguousarray(ts[sel]),
                np.ascontiguousarray(value[sel]),
                np.ascontiguousarray(factor[sel]),
            )
            counts = np.bincount(status, minlength=len(STATUS_NAMES))
            for code, n in enumerate(counts):
                if n:
                    READINGS.labels(STATUS_NAMES[code]).inc(int(n))
            for i in np.flatnonzero(np.isin(status, list(REJECTED))):
                code = int(status[i])
                out.append(_row_letter(df, int(ok[sel[i]]), STATUS_NAMES[code], REJECTED[code]))
            if c_row.size:
                out.append(
                    CellBatch(
                        self._s.spec.name,
                        c_row.astype(np.int64),
                        c_slot,
                        {
                            "consumption": cons,
                            "co2": co2,
                            "coverage": cov,
                            "reading": reading,
                            "factor_version": np.full(
                                c_row.size, self._lookup.factor_version, np.int16
                            ),
                        },
                        closed,
                    )
                )
        return out

    def snapshot(self) -> State:
        return {k: bytes(it.snapshot()) for k, it in self._integrators.items()}


_REFUSAL_TEXT = {
    "unknown_meter": "meter is not registered (declare it in the configuration or register it)",
    "before_origin": "timestamp is before the origin of the product's time grid",
    "future": "timestamp is later than its arrival in the journal plus the future tolerance",
    "missing_timestamp": "reading has no timestamp",
}


def _row_letter(df: pl.DataFrame, i: int, reason: str, message: str) -> DeadLetter:
    row = df.row(i, named=True)
    return DeadLetter(
        id=f"{SOURCE}:{row['partition']}:{row['offset']}:{row['row_in_record']}",
        source=SOURCE,
        stream=row["meter"],
        reason=reason,
        detail={
            "message": message,
            "meter": row["meter"],
            "ts_ns": row["ts_ns"],
            "value": row["value"],
            "journal": {"partition": row["partition"], "offset": row["offset"]},
        },
    )


def _record_letter(rec: JournalRecord, reason: str, message: str) -> DeadLetter:
    return DeadLetter(
        id=f"{SOURCE}:{rec.partition}:{rec.offset}",
        source=SOURCE,
        stream=rec.stream,
        reason=reason,
        detail={"message": message, "journal": {"partition": rec.partition, "offset": rec.offset}},
    )


def _build(prefix: str, records: Stream[JournalRecord], config: Config) -> Stream[FlowOutput]:
    """Keyed by journal partition: a meter always routes to the same one, so one integrator per
    partition sees all of its meters, and a whole batch is one kernel call."""
    spec = meters_interval_spec(config)
    settings = MeterStepSettings(
        spec=spec,
        max_gap_ns=to_ns(config.products.meters_interval.max_gap_s),
        future_tolerance_ns=to_ns(config.flow.future_tolerance_s),
    )

    def build_logic(resume: State | None) -> MeterIntegration:
        # Built lazily on the worker that owns the key.
        path = config.storage.layout.metadata_db
        factors = FactorTable(path)
        lookup = MeterLookup(MetadataDB(path), factors, factors.latest_version(), spec.axis)
        return MeterIntegration(settings, lookup, resume)

    keyed = op.key_on(f"{prefix}_by_partition", records, lambda r: f"p{r.partition:04d}")
    return op.key_rm(
        f"{prefix}_unkey", op.stateful_batch(f"{prefix}_integrate", keyed, build_logic)
    )


PIPELINE = KindPipeline(
    kind=METER_READINGS,
    products=lambda config: [meters_interval_spec(config)],
    build=_build,
    rolled_up=frozenset({"meters/interval"}),
)
