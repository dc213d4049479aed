"""The EC step: journal records of raw tower batches -> ec/flux_<N>min cells (+ raw archive).

Keyed by tower (the record's stream = site id): each tower has one `TowerLogic` holding its
kernel (`core.ec.EcProcessor`, settings of its `[[ec.sites]]` entry or of the simulator) and a
`PeriodBuffer` with the open averaging period in preallocated float32 arrays.

- A period closes when a sample of a later period arrives (event time, see stream/ec_periods.py);
  it is processed by one kernel call and becomes one cell row of every FLUXNET variable.
- Late samples (of a period already closed) are counted and reported as a dead letter; they do
  not reopen the period. A tower that stops sending keeps its last period open until it sends
  again.
- State is the open period's start and the journal offsets of its records, not its samples:
  on resume they are read back from the journal (stream/ec_replay.py). Decisions depend only on
  the samples' own timestamps, so a crash and replay rebuild the same periods and rewrite the
  same cells with the same values.
- Raw samples of sites with `archive_raw` go to ec/raw_<rate>hz as they arrive (position-
  addressed, so a replay rewrites the same cells).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
import numpy as np
import numpy.typing as npt
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from carbonstream.backends import journal_readers
from carbonstream.config import Config
from carbonstream.core import InputError
from carbonstream.core import ec as ec_core
from carbonstream.metrics import EC_PERIODS, EC_REPLAY, EC_SAMPLES
from carbonstream.products import ec_flux_specs, ec_raw_specs
from connectors.ec.settings import EcSiteSettings, site_columns
from storage.codec import PayloadError
from storage.journal import JournalRecord
from storage.metadata import DeadLetter, MetadataDB
from storage.products import EC_AXIS, ProductSpec
from storage.records import EC_RAW, decode_ec_raw
from stream.ec_periods import PeriodBuffer
from stream.ec_replay import Fetch, JournalFetcher, OpenRecords
from stream.items import CellBatch
from stream.pipeline import FlowOutput, KindPipeline

log = logging.getLogger(__name__)

SOURCE = "flow.ec"

State = dict[str, Any]


@dataclass(frozen=True)
class TowerContext:
    site: EcSiteSettings
    row: int
    flux: ProductSpec
    raw: ProductSpec | None


def buffer_columns(site: EcSiteSettings) -> list[str]:
    """The kernel columns the site's settings map (only those are buffered: memory is the raw
    float32 size). A column the tower never sends stays NaN and is left out of the kernel call;
    a column it sends that the site does not map is ignored."""
    return site_columns(site)


class TowerLogic(StatefulBatchLogic[JournalRecord, FlowOutput, State]):
    """One tower. Bytewax does not pass the key to the builder, so the tower is learnt from its
    first record (or from the resume state). `fetch` reads journal records back by offset, to
    rebuild the open period on resume (stream/ec_replay.py)."""

    def __init__(
        self,
        contexts: Callable[[str], TowerContext | None],
        fetch: Fetch,
        resume: State | None,
    ) -> None:
        self._contexts = contexts
        self._fetch = fetch
        self._tower: str | None = None
        self._ctx: TowerContext | None = None
        self._buffer: PeriodBuffer | None = None
        self._processor: ec_core.EcProcessor | None = None
        self._present: set[str] = set()
        self._records = OpenRecords()
        self._inline = False
        """Resumed from a snapshot that holds the samples (written before journal replay): it
        is kept in that form until its period closes, since its records are not listed."""
        self._pending: list[FlowOutput] = []
        if resume:
            self._open(resume["tower"])
            if self._buffer is not None:
                self._present = set(resume["present"])
                if "buffer" in resume:
                    self._buffer.restore(resume["buffer"])
                    self._inline = self._buffer.start_ns is not None
                else:
                    self._replay(resume["period_start"], OpenRecords.unpack(resume["records"]))

    def _open(self, tower: str) -> None:
        self._tower = tower
        self._ctx = self._contexts(tower)
        if self._ctx is not None:
            site = self._ctx.site
            self._buffer = PeriodBuffer(buffer_columns(site), site.sampling_hz, site.period_s)
            self._processor = ec_core.EcProcessor(site.kernel_config())

    def _replay(self, start_ns: int | None, records: OpenRecords) -> None:
        assert self._buffer is not None and self._ctx is not None
        if start_ns is None or records.partition is None:
            return
        self._buffer.reopen(start_ns)
        got = self._fetch(records.partition, records.offsets)
        for rec in got:
            ts, cols = decode_ec_raw(rec.payload)  # it decoded when it was first placed
            ts, cols = _after(ts, cols, self._ctx.flux.origin_ns)
            self._pending += self._place(rec, ts, cols, replaying=True)
        EC_REPLAY.labels("read").inc(len(got))
        missing = len(records.offsets) - len(got)
        if missing:
            EC_REPLAY.labels("missing").inc(missing)
            log.warning(
                "tower %s: %d of %d journal record(s) of the open period %d are no longer kept",
                self._tower,
                missing,
                len(records.offsets),
                start_ns,
            )
            self._pending.append(
                DeadLetter(
                    id=f"{SOURCE}:replay:{self._tower}:{start_ns}",
                    source=SOURCE,
                    stream=self._tower or "",
                    reason="replay_missing",
                    detail={
                        "message": f"{missing} of {len(records.offsets)} journal record(s) of "
                        "the open period were trimmed before the flow resumed; the period "
                        "closes without their samples (journal.retention_s)",
                        "period_start_ns": start_ns,
                        "journal": {"partition": records.partition},
                    },
                )
            )

    def on_batch(self, values: list[JournalRecord]) -> tuple[Iterable[FlowOutput], bool]:
        out, self._pending = self._pending, []
        for rec in values:
            if self._tower is None:
                self._open(rec.stream)
            if self._ctx is None or self._buffer is None:
                out.append(_letter(rec, "unknown_site", f"site {rec.stream!r} is not configured"))
                continue
            try:
                ts, cols = decode_ec_raw(rec.payload)
            except PayloadError as exc:
                out.append(_letter(rec, "bad_payload", str(exc)))
                continue
            received = int(ts.size)
            EC_SAMPLES.labels("received").inc(received)
            ts, cols = _after(ts, cols, self._ctx.flux.origin_ns)
            if ts.size < received:
                message = f"{received - ts.size} sample(s) before the origin of the time grid"
                out.append(_letter(rec, "before_origin", message))
            self._present.update(cols)
            if self._ctx.raw is not None:
                out.extend(self._raw_cells(ts, cols))
            out += self._place(rec, ts, cols, replaying=False)
        return out, StatefulBatchLogic.RETAIN

    def _place(
        self,
        rec: JournalRecord,
        ts: npt.NDArray[np.int64],
        cols: dict[str, npt.NDArray[np.float32]],
        replaying: bool,
    ) -> list[FlowOutput]:
        """Adds the record's samples to the open period; a replayed record's late samples were
        already reported when it first arrived."""
        assert self._buffer is not None
        out: list[FlowOutput] = []
        closed: list[tuple[int, CellBatch | str]] = []

        def on_close(start: int, period: dict[str, npt.NDArray[np.float32]], _n: int) -> None:
            closed.append((start, self._process(start, period)))

        stats = self._buffer.add(ts, cols, on_close)
        if closed:
            self._inline = False
        self._records.note(rec, period_restarted=bool(closed))
        for start, result in closed:
            if isinstance(result, str):
                out.append(_letter(rec, "kernel_error", result, period_start_ns=start))
            else:
                out.append(result)
        if (stats.late or stats.outside) and not replaying:
            EC_SAMPLES.labels("late").inc(stats.late)
            EC_SAMPLES.labels("off_grid").inc(stats.outside)
            out.append(
                _letter(
                    rec,
                    "late_samples" if stats.late else "off_grid_samples",
                    f"{stats.late} sample(s) of periods already closed, "
                    f"{stats.outside} between sampling instants; dropped",
                )
            )
        return out

    def _process(self, start_ns: int, cols: dict[str, npt.NDArray[np.float32]]) -> CellBatch | str:
        assert self._ctx is not None and self._processor is not None
        present = {k: v for k, v in cols.items() if k in self._present}
        try:
            values, flags = self._processor.process(present)
        except InputError as exc:
            EC_PERIODS.labels("error").inc()
            return str(exc)
        EC_PERIODS.labels("flagged" if flags else "ok").inc()
        spec = self._ctx.flux
        slot = spec.slot_of(start_ns)
        batch = CellBatch(
            spec.name,
            np.array([self._ctx.row], dtype=np.int64),
            np.array([slot], dtype=np.int64),
            {
                v.name: np.array([values.get(v.name, np.nan)], dtype=np.float64)
                for v in spec.variables
            },
        )
        return batch

    def _raw_cells(
        self, ts: npt.NDArray[np.int64], cols: dict[str, npt.NDArray[np.float32]]
    ) -> list[FlowOutput]:
        assert self._ctx is not None and self._ctx.raw is not None
        spec = self._ctx.raw
        ok = ts >= spec.origin_ns
        if not ok.any():
            return []
        slots = np.rint((ts[ok] - spec.origin_ns) / spec.step_ns).astype(np.int64)
        nan = np.full(slots.size, np.nan, dtype=np.float32)
        values: dict[str, npt.NDArray[np.generic]] = {
            v.name: cols[v.name][ok] if v.name in cols else nan for v in spec.variables
        }
        rows = np.full(slots.size, self._ctx.row, dtype=np.int64)
        return [CellBatch(spec.name, rows, slots, values)]

    def snapshot(self) -> State:
        if self._inline and self._buffer is not None:
            return {
                "tower": self._tower,
                "buffer": self._buffer.snapshot(),
                "present": sorted(self._present),
            }
        return {
            "tower": self._tower,
            "present": sorted(self._present),
            "period_start": self._buffer.start_ns if self._buffer is not None else None,
            "records": self._records.pack(),
        }


def _after(
    ts: npt.NDArray[np.int64], cols: dict[str, npt.NDArray[np.float32]], origin_ns: int
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float32]]]:
    """The samples at or after the origin of the time grid (the only ones it can place)."""
    if not ts.size or int(ts.min()) >= origin_ns:
        return ts, cols
    keep = ts >= origin_ns
    return ts[keep], {k: v[keep] for k, v in cols.items()}


def _letter(
    rec: JournalRecord, reason: str, message: str, period_start_ns: int | None = None
) -> DeadLetter:
    detail: dict[str, Any] = {
        "message": message,
        "journal": {"partition": rec.partition, "offset": rec.offset},
    }
    suffix = ""
    if period_start_ns is not None:
        detail["period_start_ns"] = period_start_ns
        suffix = f":{period_start_ns}"
    return DeadLetter(
        id=f"{SOURCE}:{rec.partition}:{rec.offset}:{reason}{suffix}",
        source=SOURCE,
        stream=rec.stream,
        reason=reason,
        detail=detail,
    )


def tower_contexts(config: Config) -> dict[str, TowerContext]:
    """Every configured and simulated site with its registry row and products."""
    flux = ec_flux_specs(config)
    raw = ec_raw_specs(config)
    sites = config.ec.all_sites()
    db = MetadataDB(config.storage.layout.metadata_db)
    try:
        rows = {s.id: s.idx for s in db.streams(EC_AXIS, [s.id for s in sites])}
    finally:
        db.close()
    return {
        s.id: TowerContext(
            s, rows[s.id], flux[s.period_s], raw.get(s.sampling_hz) if s.archive_raw else None
        )
        for s in sites
        if s.id in rows
    }


def _build(prefix: str, records: Stream[JournalRecord], config: Config) -> Stream[FlowOutput]:
    contexts: dict[str, TowerContext] = {}

    def context(tower: str) -> TowerContext | None:
        if tower not in contexts:
            # Read on the worker that owns the key (the registry is filled at start).
            contexts.update(tower_contexts(config))
        return contexts.get(tower)

    fetch = JournalFetcher(journal_readers(config))
    keyed = op.key_on(f"{prefix}_by_tower", records, lambda r: r.stream)
    towers = op.stateful_batch(
        f"{prefix}_towers", keyed, lambda resume: TowerLogic(context, fetch, resume)
    )
    return op.key_rm(f"{prefix}_unkey", towers)


def _products(config: Config) -> list[ProductSpec]:
    return [*ec_flux_specs(config).values(), *ec_raw_specs(config).values()]


PIPELINE = KindPipeline(kind=EC_RAW, products=_products, build=_build)
