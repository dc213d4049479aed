"""The CEMS step: journaled HJ 212 packets -> cems/minute, cems/hour, cems/day cells.

Keyed by site (stack): each site's packets are decoded with the Rust extractor (one call per
batch, only the site's codes), checked (time before the grid origin or ahead of its arrival in the
journal: dead letters; a packet sent twice: dropped), and fed in journal order to the site's Rust
`StackPipeline` (samples -> minutes -> hours -> substitution -> days, see core-rs/src/cems):

- real-time data (2011) are the samples (or, with `minutes_from = "minute_packets"`, the minute
  data 2051 are the minutes);
- the logger's hourly packet (2061) says its hour is over: it closes the hour (a watermark taken
  from the data, so a replay decides exactly as the first run did), and carries the logger's own
  hourly totals (`logger_mass`) and the fuel burnt (the accounting method).

Monitoring vs accounting: the CO2 channel's hourly mass (measured or substituted) is compared
with the accounting CO2 of the same hour (fuel x NCV x carbon content x oxidation x 44/12), per
hour and per local day; a day beyond the site's agreement threshold gets the
`accounting_disagreement` quality bit and is counted.

State per site is the pipeline's snapshot bytes plus a small JSON document (packets seen, open
accounting pairs, day quality bits): deterministic, so a replay rewrites the same cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
import numpy as np
import numpy.typing as npt
import orjson
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from carbonstream.config import Config
from carbonstream.core import InputError, StateError, cems, hj212
from carbonstream.metrics import CEMS_QUALITY, CEMS_RECORDS
from carbonstream.products import cems_specs, to_ns
from connectors.hj212.connector import register_sites
from connectors.hj212.settings import FLOW_CODE, FLOW_UNITS_PER_HOUR, SiteSettings
from connectors.hj212.sites import channel_row_id, effective_sites
from storage.codec import PayloadError
from storage.journal import JournalRecord
from storage.metadata import DeadLetter, MetadataDB
from storage.products import CEMS_AXIS, ProductSpec
from storage.records import HJ212_PACKETS, decode_hj212_packets
from stream.items import CellBatch
from stream.pipeline import FlowOutput, KindPipeline

log = logging.getLogger(__name__)

SOURCE = "flow.cems"
MS_PER_HOUR = 3_600_000
MS_PER_MIN = 60_000
SEEN_KEEP_MS = 15 * MS_PER_MIN
"""Packets are recognised as sent twice (a logger resending what got no answer) within this span
of data time; later copies are late for the pipeline anyway."""
ACCOUNTING_KEEP_HOURS = 72
"""Hours (and days) an unmatched monitoring or accounting value waits for its other half."""
Q_ACCOUNTING = 16
QUALITY_NAMES = {
    cems.Q_FLATLINE: "flatline",
    cems.Q_JUMP: "jump",
    cems.Q_CALIBRATION: "calibration",
    cems.Q_REPEATED: "repeated",
}
# Columns of hours' flag_minutes: N F M S D C T B, no reading.
_F_MAINT, _F_MANUAL, _F_FAULT, _F_CAL, _F_COMMS, _F_MISSING = 2, 3, 4, 5, 7, 8


def _packet_key(t_ms: int, cn: int, pno: int) -> int:
    """Identity of a packet's data: its DataTime (seconds), CN and part number (parts of a split
    payload share the time), as one integer that fits the JSON state."""
    return ((t_ms // 1000) * 16_384 + cn) * 1_024 + min(pno, 1_023)


def _merge_parts(
    rows: npt.NDArray[np.intp], t_ms: npt.NDArray[np.int64], values: Any, flags: Any
) -> tuple[npt.NDArray[np.intp], Any, Any]:
    """Rows of the same minute (the parts of a split minute packet) merged into the first: the
    first present reading of each column wins."""
    values, flags = values.copy(), flags.copy()
    keep: list[int] = []
    first: dict[int, int] = {}
    for k, t in enumerate(t_ms[rows].tolist()):
        j = first.get(t)
        if j is None:
            first[t] = len(keep)
            keep.append(k)
            continue
        dst = keep[j]
        empty = np.isnan(values[dst]) & (flags[dst] == 0)
        values[dst, empty] = values[k, empty]
        flags[dst, empty] = flags[k, empty]
    sel = np.array(keep, dtype=np.intp)
    return rows[sel], values[sel], flags[sel]


def stack_spec(site: SiteSettings) -> cems.StackSpec:
    """The Rust pipeline configuration of a site."""
    nan = math.nan
    chans = site.channels
    scale = FLOW_UNITS_PER_HOUR[site.flow_unit]

    def factor(i: int) -> float:
        c = chans[i]
        if not c.is_mass:
            return nan
        return cems.mass_factor(c.effective_unit, molar_mass_g_mol=c.molar_mass_g_mol)

    def opt(v: float | None, k: float = 1.0) -> float:
        return nan if v is None else v * k

    return cems.StackSpec(
        [factor(i) for i in range(len(chans))],
        policy=site.policy,
        rules=dict(site.rules),
        upper_limit=[opt(c.upper_limit) for c in chans],
        max_potential=[opt(c.max_potential_per_hour) for c in chans],
        flow_source=site.flow_basis,
        flow_scale=scale,
        flow_upper_limit=None if site.flow_upper_limit is None else site.flow_upper_limit * scale,
        atmospheric_kpa=site.atmospheric_kpa,
        area_m2=opt(site.duct_area_m2),
        k_v=site.velocity_coefficient,
        conditions=(
            site.condition_index("temperature"),
            site.condition_index("pressure"),
            site.condition_index("moisture"),
            site.condition_index("velocity"),
        ),
        utc_offset_minutes=site.offset_minutes,
        min_valid_samples=site.min_valid_samples,
        flatline_minutes=site.flatline_minutes,
        repeat_packets=site.repeat_packets,
        flatline_tolerance=[0.0] + [opt(c.flatline_tolerance) for c in chans],
        max_step_abs=[opt(site.flow_max_step, scale)] + [opt(c.max_step) for c in chans],
        max_step_rel=[site.flow_max_step_rel] + [c.max_step_rel for c in chans],
    )


@dataclass(frozen=True)
class SiteBatch:
    """The packets of one site in one journal record."""

    site: str
    partition: int
    offset: int
    ingest_ns: int
    rows: list[int]
    frames: list[bytes]


@dataclass(frozen=True)
class CemsStepSettings:
    minute: ProductSpec
    hour: ProductSpec
    day: ProductSpec
    future_tolerance_ms: int
    sites: dict[str, SiteSettings]


@dataclass
class _Cells:
    """Cells of one product and variable group, accumulated over a batch."""

    rows: list[npt.NDArray[np.int64]] = field(default_factory=list)
    slots: list[npt.NDArray[np.int64]] = field(default_factory=list)
    values: dict[str, list[npt.NDArray[Any]]] = field(default_factory=dict)

    def add(
        self, rows: npt.NDArray[np.int64], slots: npt.NDArray[np.int64], **values: npt.NDArray[Any]
    ) -> None:
        if rows.size == 0:
            return
        self.rows.append(rows)
        self.slots.append(slots)
        for k, v in values.items():
            self.values.setdefault(k, []).append(v)

    def batch(self, product: str) -> CellBatch | None:
        if not self.rows:
            return None
        return CellBatch(
            product,
            np.concatenate(self.rows),
            np.concatenate(self.slots),
            {k: np.concatenate(v) for k, v in self.values.items()},
        )


State = dict[str, bytes]


class StackIntegration(StatefulBatchLogic[SiteBatch, FlowOutput, State]):
    """The pipeline of one site."""

    def __init__(
        self,
        settings: CemsStepSettings,
        site: SiteSettings,
        rows: npt.NDArray[np.int64],
        resume: State | None,
    ) -> None:
        self._s = settings
        self._site = site
        self._rows = rows  # registry row of each variable: flow, then channels
        self._spec = stack_spec(site)
        self._codes = site.codes
        self._n = len(site.channels)
        self._fuel_cols = [1 + self._n + i for i in range(len(site.fuel_meters))]
        self._fuel_factors = [f.factors() for f in site.fuel_meters]
        self._co2_var = next(
            (i + 1 for i, c in enumerate(site.channels) if c.code == "a05001" and c.is_mass), None
        )
        self._mass_vars = [i + 1 for i, c in enumerate(site.channels) if c.is_mass]
        # Part 75 CO2 mass is in short tons; the accounting method gives kg.
        self._co2_kg_per_unit = 1.0
        if self._co2_var and site.channels[self._co2_var - 1].effective_unit == "part75_co2":
            self._co2_kg_per_unit = 907.18474
        self._minute0 = settings.minute.origin_ns // 1_000_000 // MS_PER_MIN
        self._hour0 = settings.hour.origin_ns // 1_000_000 // MS_PER_HOUR
        self._day0 = settings.day.origin_ns // 1_000_000 // (24 * MS_PER_HOUR)
        self._origin_ms = settings.minute.origin_ns // 1_000_000
        self._pipe = cems.StackPipeline(self._spec)
        self._seen: dict[int, None] = {}
        self._acct_hours: dict[str, list[float | None]] = {}
        self._acct_days: dict[str, list[float]] = {}
        self._day_bits: dict[str, int] = {}
        # The last minute of minute data, held until a later minute or the hour's end: its
        # other parts (a split packet) may come in the next journal record.
        self._pending: dict[str, Any] | None = None
        if resume:
            try:
                self._pipe = cems.StackPipeline.restore(self._spec, resume["pipe"])
            except StateError as exc:
                log.warning(
                    "cems site %s: state made under another configuration (%s): starting afresh",
                    site.id,
                    exc,
                )
            else:
                doc = orjson.loads(resume["py"])
                self._seen = dict.fromkeys(doc["seen"])
                self._acct_hours = doc["acct_hours"]
                self._acct_days = doc["acct_days"]
                self._day_bits = doc["day_bits"]
                self._pending = doc.get("pending")

    # -- one batch ---------------------------------------------------------------------------

    def on_batch(self, values: list[SiteBatch]) -> tuple[Iterable[FlowOutput], bool]:
        out: list[FlowOutput] = []
        frames = [f for b in values for f in b.frames]
        if not frames:
            return out, StatefulBatchLogic.RETAIN
        where = [(b, r) for b in values for r in b.rows]
        ingest_ms = np.array([b.ingest_ns // 1_000_000 for b in values for _ in b.rows])
        x = hj212.extract(frames, self._codes, self._site.offset_minutes)
        cells = _BatchCells()
        site = self._site.id
        status, cn, t_ms = x["status"], x["cn"], x["t_ms"]
        kind = np.full(len(frames), "", dtype=object)
        for i in np.flatnonzero(status != 0).tolist():
            reason = ("", "bad_frame", "bad_packet", "no_data_time")[int(status[i])]
            out.append(self._letter(where[i], reason, x["messages"].get(i, reason)))
            kind[i] = "x"
        ok = status == 0
        early = ok & (t_ms < self._origin_ms)
        future = ok & (t_ms > ingest_ms + self._s.future_tolerance_ms)
        for i in np.flatnonzero(early).tolist():
            out.append(self._letter(where[i], "before_origin", "DataTime is before the grid"))
        for i in np.flatnonzero(future).tolist():
            out.append(
                self._letter(where[i], "future", "DataTime is later than its arrival (clock?)")
            )
        kind[early | future] = "x"
        for i in np.flatnonzero(kind == "").tolist():
            key = _packet_key(int(t_ms[i]), int(cn[i]), int(x["pno"][i]))
            if key in self._seen:
                kind[i] = "duplicate"
                continue
            self._seen[key] = None
            c = int(cn[i])
            if c == 2011:
                kind[i] = "realtime" if self._site.minutes_from == "realtime" else "ignored"
            elif c == 2051:
                kind[i] = "minute" if self._site.minutes_from == "minute_packets" else "ignored"
            elif c == 2061:
                kind[i] = "hourly"
            else:
                kind[i] = "ignored_cn"
        for k in np.unique(kind[kind != "x"]):
            CEMS_RECORDS.labels(site, str(k)).inc(int((kind == k).sum()))
        for w_i, w in x["warnings"].items():
            if kind[w_i] in ("realtime", "minute", "hourly"):
                out.append(self._letter(where[w_i], "field_warning", w))
        self._prune_seen(t_ms[ok])
        # Runs of samples/minutes go to the kernel together; an hourly packet closes its hour.
        pos, n = 0, len(frames)
        while pos < n:
            k = kind[pos]
            if k in ("realtime", "minute"):
                end = pos
                while end < n and kind[end] in (k, "duplicate", "ignored", "ignored_cn", "x"):
                    end += 1
                sel = np.flatnonzero(kind[pos:end] == k) + pos
                self._push(k, sel, x, where, cells, out)
                pos = end
            elif k == "hourly":
                self._flush_pending(cells, out)
                self._hourly(pos, x, cells)
                res = self._pipe.close_until(int(t_ms[pos]) + MS_PER_HOUR)
                self._collect(res, cells)
                pos += 1
            else:
                pos += 1
        out.extend(cells.batches(self._s))
        return out, StatefulBatchLogic.RETAIN

    def _prune_seen(self, t_ms: npt.NDArray[np.int64]) -> None:
        """Forgets keys older than the newest time seen minus SEEN_KEEP_MS. Keys were added in
        journal order, which is data-time order but for stragglers: pop from the front."""
        if t_ms.size == 0:
            return
        cutoff = _packet_key(int(t_ms.max()) - SEEN_KEEP_MS, 0, 0)
        while self._seen:
            first = next(iter(self._seen))
            if first >= cutoff:
                break
            del self._seen[first]

    def _push(
        self,
        kind: str,
        sel: npt.NDArray[np.intp],
        x: Any,
        where: list[tuple[SiteBatch, int]],
        cells: _BatchCells,
        out: list[FlowOutput],
    ) -> None:
        t_ms = x["t_ms"][sel]
        values = (x["rtd"] if kind == "realtime" else x["avg"])[sel]
        flags = x["flag"][sel]
        places = [where[i] for i in sel.tolist()]
        if kind == "realtime":
            self._kernel(kind, t_ms, values, flags, x["fingerprint"][sel], places, cells, out)
            return
        if self._pending is not None:
            p = self._pending
            pv = np.array([np.nan if v is None else v for v in p["values"]], np.float64)
            t_ms = np.concatenate([[p["t_ms"]], t_ms])
            values = np.concatenate([pv[None, :], values])
            flags = np.concatenate([np.array(p["flags"], np.uint8)[None, :], flags])
            b = SiteBatch(self._site.id, p["where"][0], p["where"][1], 0, [], [])
            places = [(b, p["where"][2]), *places]
        keep, values, flags = _merge_parts(np.arange(t_ms.size), t_ms, values, flags)
        t_ms, places = t_ms[keep], [places[i] for i in keep.tolist()]
        last = t_ms.size - 1
        b, row = places[last]
        self._pending = {
            "t_ms": int(t_ms[last]),
            "values": [None if np.isnan(v) else float(v) for v in values[last].tolist()],
            "flags": [int(f) for f in flags[last].tolist()],
            "where": [b.partition, b.offset, row],
        }
        fp = np.zeros(last, np.uint64)
        self._kernel(kind, t_ms[:last], values[:last], flags[:last], fp, places[:last], cells, out)

    def _flush_pending(self, cells: _BatchCells, out: list[FlowOutput]) -> None:
        """Pushes the held minute (the logger's hourly packet says its hour is over)."""
        p = self._pending
        if p is None:
            return
        self._pending = None
        values = np.array([[np.nan if v is None else v for v in p["values"]]], np.float64)
        flags = np.array([p["flags"]], np.uint8)
        b = SiteBatch(self._site.id, p["where"][0], p["where"][1], 0, [], [])
        t_ms = np.array([p["t_ms"]], np.int64)
        fp = np.zeros(1, np.uint64)
        self._kernel("minute", t_ms, values, flags, fp, [(b, p["where"][2])], cells, out)

    def _kernel(
        self,
        kind: str,
        t_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        flags: npt.NDArray[np.uint8],
        fingerprint: npt.NDArray[np.uint64],
        places: list[tuple[SiteBatch, int]],
        cells: _BatchCells,
        out: list[FlowOutput],
    ) -> None:
        if t_ms.size == 0:
            return
        ch = slice(1, 1 + self._n)
        flow = np.ascontiguousarray(values[:, 0])
        flow_flag = np.ascontiguousarray(flags[:, 0])
        v = np.ascontiguousarray(values[:, ch])
        f = np.ascontiguousarray(flags[:, ch])
        # A reading sent without a flag is taken as normal (N), the logger's default.
        flow_flag[(flow_flag == 0) & ~np.isnan(flow)] = ord("N")
        f[(f == 0) & ~np.isnan(v)] = ord("N")
        t_ms = np.ascontiguousarray(t_ms)
        if kind == "realtime":
            status, messages, res = self._pipe.push_samples(
                t_ms, flow, flow_flag, v, f, np.ascontiguousarray(fingerprint)
            )
        else:
            status, messages, res = self._pipe.push_minutes(
                t_ms // MS_PER_MIN, flow, flow_flag, v, f
            )
        jumps = np.flatnonzero(status == 3)
        if jumps.size:
            # Silent longer than the fill limit (a year): history that old no longer applies.
            # Start the stack afresh from the first such row (after emitting what came before).
            k = int(jumps[0])
            log.warning("cems site %s: %s; starting its state afresh", self._site.id, messages[k])
            CEMS_RECORDS.labels(self._site.id, "state_reset").inc()
            status[k:] = 0
            self._collect(res, cells)
            self._pipe = cems.StackPipeline(self._spec)
            self._pending = None
            rest = slice(k, None)
            self._kernel(
                kind,
                t_ms[rest],
                values[rest],
                flags[rest],
                fingerprint[rest],
                places[k:],
                cells,
                out,
            )
        for k in np.flatnonzero(status).tolist():
            reason = ("", "late", "duplicate_minute", "time_jump", "refused")[int(status[k])]
            CEMS_RECORDS.labels(self._site.id, reason).inc()
            out.append(self._letter(places[k], reason, messages.get(k, reason)))
        if not jumps.size:
            self._collect(res, cells)

    # -- outputs -> cells --------------------------------------------------------------------

    def _collect(self, res: dict[str, dict[str, npt.NDArray[Any]]], cells: _BatchCells) -> None:
        site = self._site.id
        m = res["minutes"]
        if m["minute"].size:
            q = m["quality"]
            for bit, name in QUALITY_NAMES.items():
                hits = int(np.count_nonzero((q & bit) != 0))
                if hits:
                    CEMS_QUALITY.labels(site, name).inc(hits)
            cells.minute.add(
                self._rows[m["var"]],
                m["minute"] - self._minute0,
                value=m["value"],
                flag=m["flag"],
                mass=m["mass"],
                quality=q,
            )
        h = res["hours"]
        if h["hour"].size:
            var = h["var"]
            rule = np.full(var.size, 254, np.uint8)
            rule[np.isin(var, self._mass_vars)] = cems.RULE_PENDING
            fm = h["flag_minutes"].astype(np.uint8)
            cells.hour.add(
                self._rows[var],
                h["hour"] - self._hour0,
                value=h["value"],
                status=h["status"],
                valid_minutes=h["valid_minutes"],
                operating_minutes=h["operating_minutes"],
                calibration_minutes=fm[:, _F_CAL],
                maintenance_minutes=fm[:, _F_MAINT],
                fault_minutes=fm[:, _F_FAULT] + fm[:, _F_MANUAL] + fm[:, _F_COMMS],
                missing_minutes=fm[:, _F_MISSING],
                flow_total=h["flow_total"],
                measured_mass=h["measured_mass"],
                rule=rule,
                quality=h["quality"],
            )
            days = (h["hour"] * 60 + self._site.offset_minutes) // 1440
            for d, v, b in zip(days.tolist(), var.tolist(), h["quality"].tolist(), strict=True):
                if b:
                    key = f"{v}:{d}"
                    self._day_bits[key] = self._day_bits.get(key, 0) | b
        r = res["resolved"]
        if r["hour"].size:
            cells.resolved.add(
                self._rows[r["var"]],
                r["hour"] - self._hour0,
                mass=r["mass"],
                rule=r["rule"],
                availability=r["availability"].astype(np.float32),
            )
            if self._co2_var is not None:
                co2 = r["var"] == self._co2_var
                for hour, mass in zip(
                    r["hour"][co2].tolist(), r["mass"][co2].tolist(), strict=True
                ):
                    self._accounting(hour, monitored=mass, accounted=None, cells=cells)
        d = res["days"]
        if d["day"].size:
            bits = np.array(
                [
                    self._day_bits.pop(f"{v}:{day}", 0)
                    for v, day in zip(d["var"].tolist(), d["day"].tolist(), strict=True)
                ],
                dtype=np.uint8,
            )
            if self._co2_var is not None:
                for v, day, b in zip(d["var"].tolist(), d["day"].tolist(), bits, strict=True):
                    if v == self._co2_var:
                        ledger = self._acct_days.setdefault(str(day), [0.0, 0.0, 0.0, 0.0])
                        ledger[2], ledger[3] = float(int(b)), 1.0
                        bits[(d["var"] == v) & (d["day"] == day)] |= self._day_flag(ledger)
            cells.day.add(
                self._rows[d["var"]],
                d["day"] - self._day0,
                value=d["value"],
                status=d["status"],
                flow_total=d["flow_total"],
                mass=d["mass"],
                measured_hours=d["measured_hours"],
                substituted_hours=d["substituted_hours"],
                not_operating_hours=d["not_operating_hours"],
                missing_hours=d["missing_hours"],
                quality=bits,
            )

    def _hourly(self, i: int, x: Any, cells: _BatchCells) -> None:
        """The logger's hourly packet: its own totals, and the fuel burnt."""
        hour = int(x["t_ms"][i]) // MS_PER_HOUR
        cou = x["cou"][i]
        totals = np.array([cou[v] for v in self._mass_vars], dtype=np.float64)
        sent = np.isfinite(totals)  # a part of a split packet carries some codes only
        rows = self._rows[self._mass_vars][sent]
        cells.logger.add(
            rows, np.full(rows.size, hour - self._hour0, np.int64), logger_mass=totals[sent]
        )
        if self._fuel_cols and self._co2_var is not None:
            qty = [float(cou[c]) for c in self._fuel_cols]
            if all(math.isfinite(q) and q >= 0 for q in qty):
                uses = [(q, *f) for q, f in zip(qty, self._fuel_factors, strict=True)]
                acc_kg = cems.accounting_co2_t(uses) * 1000.0
                self._accounting(hour, monitored=None, accounted=acc_kg, cells=cells)

    def _day_flag(self, ledger: list[float]) -> int:
        mon, acc = ledger[0], ledger[1]
        if acc <= 0 or mon < 0:
            return 0
        _, flagged = cems.compare(mon / 1000, acc / 1000, self._site.agreement_threshold)
        return Q_ACCOUNTING if flagged else 0

    def _accounting(
        self, hour: int, monitored: float | None, accounted: float | None, cells: _BatchCells
    ) -> None:
        """Pairs the monitored and accounted CO2 of an hour; writes the hour's comparison and the
        running comparison of its local day once both halves are in."""
        pair = self._acct_hours.setdefault(str(hour), [None, None])
        if monitored is not None:
            # NaN (an hour left missing) is kept as -1: JSON state has no NaN.
            pair[0] = monitored if math.isfinite(monitored) else -1.0
        if accounted is not None:
            pair[1] = accounted
        co2_row = self._rows[self._co2_var : self._co2_var + 1] if self._co2_var else None
        assert co2_row is not None
        slot = np.array([hour - self._hour0], np.int64)
        if accounted is not None:
            cells.acct_hour.add(
                co2_row,
                slot,
                accounting_mass=np.array([accounted]),
                accounting_error=np.array([np.nan]),
            )
        mon, acc = pair
        if mon is not None:
            mon = mon * self._co2_kg_per_unit if mon >= 0 else math.nan
        if mon is None or acc is None:
            self._prune_accounting(hour)
            return
        del self._acct_hours[str(hour)]
        error = math.nan
        if acc > 0 and math.isfinite(mon) and mon >= 0:
            error, _ = cems.compare(mon / 1000, acc / 1000, self._site.agreement_threshold)
        cells.acct_hour.add(
            co2_row, slot, accounting_mass=np.array([acc]), accounting_error=np.array([error])
        )
        if not math.isfinite(mon):
            return
        day = (hour * 60 + self._site.offset_minutes) // 1440
        ledger = self._acct_days.setdefault(str(day), [0.0, 0.0, 0.0, 0.0])
        was_flagged = self._day_flag(ledger)
        ledger[0] += mon
        ledger[1] += acc
        day_error = (ledger[0] - ledger[1]) / ledger[1] if ledger[1] > 0 else math.nan
        flag = self._day_flag(ledger)
        if flag and not was_flagged:
            CEMS_QUALITY.labels(self._site.id, "accounting_disagreement").inc()
        day_slot = np.array([day - self._day0], np.int64)
        cells.acct_day.add(
            co2_row,
            day_slot,
            accounting_mass=np.array([ledger[1]]),
            accounting_error=np.array([day_error]),
        )
        if ledger[3]:  # the day is closed: its quality cell was written, update it
            bits = np.array([int(ledger[2]) | flag], np.uint8)
            cells.day_quality.add(co2_row, day_slot, quality=bits)
        self._prune_accounting(hour)

    def _prune_accounting(self, hour: int) -> None:
        if len(self._acct_hours) > ACCOUNTING_KEEP_HOURS:
            self._acct_hours = {
                k: v for k, v in self._acct_hours.items() if int(k) > hour - ACCOUNTING_KEEP_HOURS
            }
        day = hour // 24
        if len(self._acct_days) > ACCOUNTING_KEEP_HOURS // 24 + 1:
            self._acct_days = {
                k: v
                for k, v in self._acct_days.items()
                if int(k) > day - ACCOUNTING_KEEP_HOURS // 24
            }

    def _letter(self, where: tuple[SiteBatch, int], reason: str, message: str) -> DeadLetter:
        b, row = where
        return DeadLetter(
            id=f"{SOURCE}:{b.partition}:{b.offset}:{row}",
            source=SOURCE,
            stream=b.site,
            reason=reason,
            detail={
                "message": message,
                "site": b.site,
                "journal": {"partition": b.partition, "offset": b.offset, "row": row},
            },
        )

    def snapshot(self) -> State:
        doc = {
            "seen": list(self._seen),
            "acct_hours": self._acct_hours,
            "acct_days": self._acct_days,
            "day_bits": self._day_bits,
            "pending": self._pending,
        }
        return {"pipe": bytes(self._pipe.snapshot()), "py": orjson.dumps(doc)}


@dataclass
class _BatchCells:
    """Every cell group of one batch, emitted in an order that keeps later writes later."""

    minute: _Cells = field(default_factory=_Cells)
    hour: _Cells = field(default_factory=_Cells)
    resolved: _Cells = field(default_factory=_Cells)
    logger: _Cells = field(default_factory=_Cells)
    acct_hour: _Cells = field(default_factory=_Cells)
    day: _Cells = field(default_factory=_Cells)
    acct_day: _Cells = field(default_factory=_Cells)
    day_quality: _Cells = field(default_factory=_Cells)

    def batches(self, s: CemsStepSettings) -> list[CellBatch]:
        groups = (
            (self.minute, s.minute.name),
            (self.hour, s.hour.name),
            (self.resolved, s.hour.name),
            (self.logger, s.hour.name),
            (self.acct_hour, s.hour.name),
            (self.day, s.day.name),
            (self.acct_day, s.day.name),
            (self.day_quality, s.day.name),
        )
        return [b for cells, name in groups if (b := cells.batch(name)) is not None]


def split_by_site(rec: JournalRecord) -> list[SiteBatch | DeadLetter]:
    """A journal record's packets, one batch per site (records may mix sites)."""
    try:
        frame = decode_hj212_packets(rec.payload)
    except PayloadError as exc:
        return [
            DeadLetter(
                id=f"{SOURCE}:{rec.partition}:{rec.offset}",
                source=SOURCE,
                stream=rec.stream,
                reason="bad_payload",
                detail={
                    "message": str(exc),
                    "journal": {"partition": rec.partition, "offset": rec.offset},
                },
            )
        ]
    sites = frame["site"].to_list()
    frames = frame["frame"].to_list()
    by_site: dict[str, list[int]] = {}
    for i, s in enumerate(sites):
        by_site.setdefault(s or "", []).append(i)
    return [
        SiteBatch(s, rec.partition, rec.offset, rec.ingest_ns, rows, [frames[i] for i in rows])
        for s, rows in by_site.items()
    ]


def _build(prefix: str, records: Stream[JournalRecord], config: Config) -> Stream[FlowOutput]:
    """Keyed by site: a site's packets always come from the same journal partition, in order."""
    specs = cems_specs(config)
    sites = {s.id: s for s in effective_sites(config)}
    settings = CemsStepSettings(
        minute=specs["cems/minute"],
        hour=specs["cems/hour"],
        day=specs["cems/day"],
        future_tolerance_ms=to_ns(config.cems.products.future_tolerance_s) // 1_000_000,
        sites=sites,
    )
    register_sites(config)
    split = op.flat_map(f"{prefix}_split_by_site", records, split_by_site)
    batches = op.filter_map(
        f"{prefix}_site_batches", split, lambda x: x if isinstance(x, SiteBatch) else None
    )
    letters = op.filter_map(
        f"{prefix}_payload_letters", split, lambda x: x if isinstance(x, DeadLetter) else None
    )
    known = op.branch(f"{prefix}_known_site", batches, lambda b: b.site in sites)
    unknown = op.flat_map(f"{prefix}_unknown_site", known.falses, _unknown_site)
    keyed = op.key_on(f"{prefix}_by_site", known.trues, lambda b: b.site)

    def build(resume: State | None) -> StatefulBatchLogic[SiteBatch, FlowOutput, State]:
        # Built lazily on the worker that owns the key; the key is not passed, so the site is
        # read from the first batch (see _LazySite).
        return _LazySite(settings, config, resume)

    results = op.key_rm(f"{prefix}_unkey", op.stateful_batch(f"{prefix}_integrate", keyed, build))
    return op.merge(f"{prefix}_outputs", results, letters, unknown)


def _unknown_site(b: SiteBatch) -> list[FlowOutput]:
    return [
        DeadLetter(
            id=f"{SOURCE}:{b.partition}:{b.offset}:{row}",
            source=SOURCE,
            stream=b.site,
            reason="unknown_site",
            detail={
                "message": f"site {b.site!r} is not configured (any more)",
                "journal": {"partition": b.partition, "offset": b.offset, "row": row},
            },
        )
        for row in b.rows
    ]


class _LazySite(StatefulBatchLogic[SiteBatch, FlowOutput, State]):
    """Creates the site's `StackIntegration` when its first batch says which site it is (Bytewax
    does not hand the key to the builder); snapshots pass through."""

    def __init__(self, settings: CemsStepSettings, config: Config, resume: State | None) -> None:
        self._settings = settings
        self._config = config
        self._resume = resume
        self._inner: StackIntegration | None = None

    def _site(self, site_id: str) -> StackIntegration:
        if self._inner is None:
            site = self._settings.sites[site_id]
            db = MetadataDB(self._config.storage.layout.metadata_db)
            try:
                ids = [channel_row_id(site_id, FLOW_CODE)] + [
                    channel_row_id(site_id, c.code) for c in site.channels
                ]
                found = {s.id: s.idx for s in db.streams(CEMS_AXIS, ids)}
            finally:
                db.close()
            rows = np.array([found[i] for i in ids], dtype=np.int64)
            self._inner = StackIntegration(self._settings, site, rows, self._resume)
            self._resume = None
        return self._inner

    def on_batch(self, values: list[SiteBatch]) -> tuple[Iterable[FlowOutput], bool]:
        site = self._site(values[0].site)
        try:
            return site.on_batch(values)
        except (InputError, ValueError) as exc:
            # Input the checks above did not foresee: the batch becomes a dead letter instead
            # of stopping the flow (a replay meets it at the same place: still deterministic).
            log.exception("cems site %s: batch refused", values[0].site)
            b = values[0]
            letter = DeadLetter(
                id=f"{SOURCE}:{b.partition}:{b.offset}:batch",
                source=SOURCE,
                stream=b.site,
                reason="refused_batch",
                detail={
                    "message": f"{type(exc).__name__}: {exc}",
                    "journal": {"partition": b.partition, "offset": b.offset},
                    "records": len(values),
                },
            )
            return [letter], StatefulBatchLogic.RETAIN

    def snapshot(self) -> State:
        if self._inner is None:
            return self._resume or {}
        return self._inner.snapshot()


PIPELINE = KindPipeline(
    kind=HJ212_PACKETS,
    products=lambda config: list(cems_specs(config).values()),
    build=_build,
)
