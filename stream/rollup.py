"""Entity roll-ups, materialized from the stored meters/interval product.

Every entity total is recomputed as a pure function of stored data: an entity's interval value is
its own meters' values plus its children's totals, summed in a fixed order (members by row,
children by row) with the Rust `grouped_nansum`; a day is the sum of its intervals, a month the
sum of its days. Recomputing is therefore idempotent: a crash, a replay, a late reading or a
second run all converge to the same cells, bit for bit, which streaming deltas summed in arrival
order could not promise.

Work is incremental. The Zarr sink marks each meters/interval chunk it flushes as dirty; a cycle
takes the dirty (row block, time chunk) pairs, finds the entities whose meters live in those
blocks and their ancestors, and recomputes those entities for that time chunk, bottom-up, then
their days and months. Markers are cleared at the generation that was computed, so a chunk
changed meanwhile is done again next cycle.

One materializer writes the entity products (the only writer of their chunks); it runs as a
thread of the flow role.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonstream.config import Config
from carbonstream.core import meters as meters_core
from carbonstream.faults import crash_point
from carbonstream.products import entity_specs, meters_interval_spec
from storage.commodities import BY_NAME, COMMODITIES
from storage.entities import EntityTree
from storage.metadata import STATUS_ZARR, MetadataDB
from storage.products import ENTITIES_AXIS, ProductSpec
from storage.zarr_store import ProductReader, ProductStore, ProductWriter, RegistryLabels

log = logging.getLogger(__name__)

NO_GROUP = np.uint32(0xFFFF_FFFF)
SCOPES = (1, 2)
STATUS_KEY = "rollup"
VALUE_VARS = ("co2", "co2_scope1", "co2_scope2", *(c.name for c in COMMODITIES))

Totals = dict[str, npt.NDArray[np.float64]]
"""Variable -> values over a run of periods; 'meters_reporting' holds counts (as float)."""


@dataclass(frozen=True)
class RollupStats:
    chunks: int
    entities: int
    seconds: float
    closed_before_ns: int | None = None
    """Every meter interval ending by then was flushed before the cycle began, hence rolled up:
    entity periods ending by then are complete for the fleet (what entity alerts judge)."""


def _nan_sum_rows(parts: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """Element-wise sum of equally long rows, NaN where every row is NaN (fixed order)."""
    stacked = np.ascontiguousarray(np.vstack(parts))
    sums, _ = meters_core.grouped_nansum(stacked, np.zeros(len(parts), np.uint32), 1)
    total: npt.NDArray[np.float64] = sums[0]
    return total


class RollupMaterializer:
    def __init__(self, config: Config) -> None:
        layout = config.storage.layout
        locks = layout.data_dir / "locks"
        self._db = MetadataDB(layout.metadata_db)
        self._meters = meters_interval_spec(config)
        self._registry_cache: (
            tuple[tuple[int, int], EntityTree, dict[int, tuple[int, int]]] | None
        ) = None
        self._meter_reader = ProductReader(
            ProductStore(layout.zarr_store, self._meters, locks), refresh_s=0
        )
        specs = entity_specs(config)
        self._interval, self._day, self._month = (
            specs["entities/interval"],
            specs["entities/day"],
            specs["entities/month"],
        )
        self._stores = {
            name: ProductStore(layout.zarr_store, s, locks) for name, s in specs.items()
        }
        self._writers = {
            name: ProductWriter(store, RegistryLabels(self._db, store.spec))
            for name, store in self._stores.items()
        }
        self._readers = {
            name: ProductReader(store, refresh_s=0) for name, store in self._stores.items()
        }
        published = self._db.status(STATUS_ZARR)
        self._newest: dict[str, int] = {
            name: int(published[(STATUS_ZARR, f"{name}#{STATUS_KEY}")][0]["max_slot"])
            for name in specs
            if (STATUS_ZARR, f"{name}#{STATUS_KEY}") in published
        }
        """Newest period with a value, per entity product: what `latest` readers look back from."""

    # -- the cycle -----------------------------------------------------------------------------

    def run_once(self) -> RollupStats:
        started = time.perf_counter()
        closed_before = self._fleet_watermark()  # read before the dirty markers: see RollupStats
        dirty = self._db.dirty(self._meters.name)
        if not dirty:
            return RollupStats(0, 0, time.perf_counter() - started, closed_before)
        tree, meter_info = self._registry()
        by_chunk: dict[int, set[int]] = defaultdict(set)
        for block, chunk, _ in dirty:
            by_chunk[chunk].add(block)
        touched: set[str] = set()
        spans: list[tuple[set[str], int, int]] = []
        for chunk, blocks in sorted(by_chunk.items()):
            rows = self._rows_of_blocks(blocks)
            affected = tree.with_ancestors(tree.entities_of_meters(rows))
            if not affected:
                continue
            ct = self._meters.chunk_time
            self._write_intervals(tree, affected, meter_info, chunk * ct, (chunk + 1) * ct)
            spans.append((affected, chunk * ct, (chunk + 1) * ct))
            touched |= affected
        self._writers["entities/interval"].flush()
        crash_point("rollup.between_products")
        days = self._rollup_days(tree, spans)
        self._writers["entities/day"].flush()
        self._rollup_months(tree, days)
        self._writers["entities/month"].flush()
        self._db.clear_dirty(self._meters.name, dirty)
        self._publish(len(by_chunk))
        return RollupStats(
            len(by_chunk), len(touched), time.perf_counter() - started, closed_before
        )

    def _fleet_watermark(self) -> int | None:
        """Start of the newest meters/interval period any sink has flushed (that period may still
        be open; the ones before it are closed for the fleet)."""
        prefix = f"{self._meters.name}#"
        slots = [
            int(value["max_slot"])
            for (_, key), (value, _) in self._db.status(STATUS_ZARR).items()
            if key.startswith(prefix) and key != f"{prefix}{STATUS_KEY}"
        ]
        newest = max(slots, default=-1)
        return self._meters.slot_start_ns(newest) if newest >= 0 else None

    def _publish(self, chunks: int) -> None:
        """The same status the Zarr sink publishes for the products it writes (last write time,
        newest period), so health and `latest` treat every product alike."""
        now = time.time_ns()
        for name, newest in self._newest.items():
            self._db.put_status(
                STATUS_ZARR,
                f"{name}#{STATUS_KEY}",
                {"max_slot": newest, "flushed_ns": now, "chunks": chunks},
            )

    def run_forever(
        self,
        stop: threading.Event,
        interval_s: float,
        after_cycle: Callable[[RollupStats], object] | None = None,
    ) -> None:
        """Cycles until `stop`; `after_cycle` sees each cycle's stats (entity alerts)."""
        while not stop.wait(interval_s):
            try:
                stats = self.run_once()
                if stats.chunks:
                    log.debug("roll-up: %s", stats)
                if after_cycle is not None:
                    after_cycle(stats)
            except Exception:  # the flow must go on; the dirty markers stay for the next cycle
                log.exception("roll-up cycle failed; retrying next cycle")

    # -- interval totals ---------------------------------------------------------------------

    def _rows_of_blocks(self, blocks: Iterable[int]) -> list[int]:
        cs = self._meters.chunk_streams
        return [r for b in blocks for r in range(b * cs, (b + 1) * cs)]

    def _registry(self) -> tuple[EntityTree, dict[int, tuple[int, int]]]:
        """The entity tree and the meters' groups, rebuilt only when the registry of meters or
        entities has changed: reading 64,000 meters every cycle took a third of the flow
        process's CPU (py-spy), and this thread shares the GIL with the flow."""
        versions = (
            self._db.registry_version(self._meters.axis),
            self._db.registry_version(ENTITIES_AXIS),
        )
        if self._registry_cache is None or self._registry_cache[0] != versions:
            self._registry_cache = (versions, EntityTree.load(self._db), self._meter_groups())
        return self._registry_cache[1], self._registry_cache[2]

    def _meter_groups(self) -> dict[int, tuple[int, int]]:
        """Meter row -> (scope position or -1, commodity position or -1 when its unit is not the
        commodity's canonical unit)."""
        out = {}
        names = [c.name for c in COMMODITIES]
        for s in self._db.streams(self._meters.axis):
            commodity = BY_NAME.get(str(s.attrs.get("commodity", "electricity")))
            if commodity is None:
                out[s.idx] = (-1, -1)
                continue
            scope = SCOPES.index(commodity.scope) if commodity.scope in SCOPES else -1
            same_unit = s.attrs.get("unit", commodity.unit) == commodity.unit
            out[s.idx] = (scope, names.index(commodity.name) if same_unit else -1)
        return out

    def _direct_totals(
        self,
        tree: EntityTree,
        eids: list[str],
        meter_info: dict[int, tuple[int, int]],
        slot0: int,
        slot1: int,
    ) -> dict[str, Totals]:
        """Each entity's own meters, summed per scope and per commodity."""
        members = [(i, int(r)) for i, e in enumerate(eids) for r in tree.direct_meters[e]]
        if not members:
            return {}
        rows = [r for _, r in members]
        data = self._meter_reader.read(rows, slot0, slot1, ["consumption", "co2"])
        n, nc = len(eids), len(COMMODITIES)
        ent = np.array([i for i, _ in members], dtype=np.uint32)
        info = np.array([meter_info.get(r, (-1, -1)) for r in rows], dtype=np.int64).reshape(-1, 2)
        scope_group = np.where(info[:, 0] >= 0, ent * 2 + info[:, 0], NO_GROUP).astype(np.uint32)
        comm_group = np.where(info[:, 1] >= 0, ent * nc + info[:, 1], NO_GROUP).astype(np.uint32)
        co2 = np.ascontiguousarray(data["co2"])
        cons = np.ascontiguousarray(data["consumption"])
        by_scope, _ = meters_core.grouped_nansum(co2, scope_group, n * 2)
        by_comm, _ = meters_core.grouped_nansum(cons, comm_group, n * nc)
        _, reporting = meters_core.grouped_nansum(cons, ent, n)
        out = {}
        for i, e in enumerate(eids):
            if tree.direct_meters[e].size == 0:
                continue
            t: Totals = {
                "co2_scope1": by_scope[i * 2],
                "co2_scope2": by_scope[i * 2 + 1],
                "meters_reporting": reporting[i].astype(np.float64),
            }
            t["co2"] = _nan_sum_rows([t["co2_scope1"], t["co2_scope2"]])
            for k, c in enumerate(COMMODITIES):
                t[c.name] = by_comm[i * nc + k]
            out[e] = t
        return out

    def _write_intervals(
        self,
        tree: EntityTree,
        affected: set[str],
        meter_info: dict[int, tuple[int, int]],
        slot0: int,
        slot1: int,
    ) -> None:
        order = tree.bottom_up(affected)
        results = self._direct_totals(tree, order, meter_info, slot0, slot1)
        width = slot1 - slot0
        for e in order:
            parts = [results[e]] if e in results else []
            for child in tree.children[e]:
                parts.append(
                    results[child]
                    if child in results
                    else self._stored_interval(tree, child, slot0, slot1)
                )
            if not parts:
                total = {v: np.full(width, np.nan) for v in VALUE_VARS}
                total["meters_reporting"] = np.zeros(width)
            else:
                total = {v: _nan_sum_rows([p[v] for p in parts]) for v in VALUE_VARS}
                total["meters_reporting"] = np.sum([p["meters_reporting"] for p in parts], axis=0)
            total["completeness"] = total["meters_reporting"] / max(1, tree.member_count(e))
            results[e] = total
        self._stage(self._interval.name, tree, order, results, slot0, slot1)

    def _stored_interval(self, tree: EntityTree, eid: str, slot0: int, slot1: int) -> Totals:
        data = self._readers["entities/interval"].read(
            [tree.nodes[eid].row], slot0, slot1, [*VALUE_VARS, "meters_reporting"]
        )
        return {k: v[0].astype(np.float64) for k, v in data.items()}

    def _stage(
        self,
        product: str,
        tree: EntityTree,
        eids: list[str],
        totals: dict[str, Totals],
        slot0: int,
        slot1: int,
    ) -> None:
        writer = self._writers[product]
        width = slot1 - slot0
        rows = np.repeat(tree.rows(eids), width)
        slots = np.tile(np.arange(slot0, slot1, dtype=np.int64), len(eids))
        values: dict[str, npt.NDArray[np.generic]] = {}
        for v in writer.spec.variables:
            column = np.concatenate([totals[e][v.name] for e in eids])
            values[v.name] = column.astype(v.dtype)
        writer.stage(rows, slots, values)
        present = np.zeros(len(rows), dtype=bool)
        for name in VALUE_VARS:
            present |= ~np.isnan(values[name].astype(np.float64))
        if present.any():
            newest = int(slots[present].max())
            self._newest[product] = max(self._newest.get(product, -1), newest)

    # -- days and months -----------------------------------------------------------------------

    def _rollup_days(
        self, tree: EntityTree, spans: list[tuple[set[str], int, int]]
    ) -> dict[int, set[str]]:
        """Recomputes each day overlapping the recomputed interval spans once, for every entity
        any of them touched; returns those days and entities. A cycle often has several spans
        in one day (one per dirty time chunk); recomputed per span, the day was read again for
        each (on an object store: one GET per chunk and variable of the whole day)."""
        days: dict[int, set[str]] = defaultdict(set)
        for eids, slot0, slot1 in spans:
            first = self._day.slot_of(self._interval.slot_start_ns(slot0))
            last = self._day.slot_of(self._interval.slot_start_ns(slot1) - 1)
            for day in range(first, last + 1):
                days[day] |= eids
        for day, eids in sorted(days.items()):
            self._recompute_coarse(
                tree, sorted(eids), self._day, day, self._interval, "entities/interval"
            )
        return days

    def _rollup_months(self, tree: EntityTree, days: dict[int, set[str]]) -> None:
        """Recomputes each month holding a recomputed day once (as `_rollup_days`)."""
        months: dict[int, set[str]] = defaultdict(set)
        for day, eids in days.items():
            months[self._month.slot_of(self._day.slot_start_ns(day))] |= eids
        for month, eids in sorted(months.items()):
            self._recompute_coarse(
                tree, sorted(eids), self._month, month, self._day, "entities/day"
            )

    def _recompute_coarse(
        self,
        tree: EntityTree,
        eids: list[str],
        coarse: ProductSpec,
        period: int,
        fine: ProductSpec,
        fine_name: str,
    ) -> None:
        """One coarse period (a day, a month) of each entity from the finer product's values."""
        start, end = coarse.slot_start_ns(period), coarse.slot_start_ns(period + 1)
        f0, f1 = fine.slot_of(start), fine.slot_of(end - 1) + 1
        from_intervals = fine_name == "entities/interval"
        quality = "meters_reporting" if from_intervals else "completeness"
        data = self._readers[fine_name].read(list(tree.rows(eids)), f0, f1, [*VALUE_VARS, quality])
        sums = {}
        for v in VALUE_VARS:
            block = data[v]
            s = np.nansum(block, axis=1)
            s[np.isnan(block).all(axis=1)] = np.nan
            sums[v] = s
        if from_intervals:
            members = np.array([max(1, tree.member_count(e)) for e in eids], dtype=np.float64)
            completeness = data[quality].sum(axis=1) / (members * (f1 - f0))
        else:
            # A day that has no value counts as empty.
            completeness = np.nansum(data[quality], axis=1) / (f1 - f0)
        totals: dict[str, Totals] = {
            e: {
                **{v: sums[v][i : i + 1] for v in VALUE_VARS},
                "completeness": completeness[i : i + 1],
            }
            for i, e in enumerate(eids)
        }
        self._stage(coarse.name, tree, eids, totals, period, period + 1)
