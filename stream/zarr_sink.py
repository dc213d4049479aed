"""Bytewax sink writing product cells to Zarr, with exactly one writer per chunk.

Cells are routed by row block (`chunk_streams` rows): block b goes to sink partition
b mod partitions, and Bytewax runs each partition on exactly one worker, so a chunk is only ever
written by one writer. A partition stages cells in memory and flushes them at every snapshot:
results are on disk before the epoch that produced them is committed, so a replay after a crash
starts from data that is already stored and only rewrites the same cells with the same values.

A disk that refuses a flush (full, read-only) makes the snapshot wait and retry
(stream/storage_wait.py) instead of failing: the epoch is committed only once its cells are on
disk, and only when there is room left for Bytewax's own recovery snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from functools import partial
from pathlib import Path

import numpy as np
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from carbonstream.metrics import ZARR_CHUNKS_WRITTEN, ZARR_FLUSH_SECONDS
from storage.database import DbLocation
from storage.growth import GrowthAhead
from storage.metadata import STATUS_ZARR, MetadataDB
from storage.object_store import StoreLocation
from storage.products import ProductSpec
from storage.zarr_store import ProductStore, ProductWriter, RegistryLabels
from stream.items import CellBatch
from stream.storage_wait import until_stored, wait_for_room

log = logging.getLogger(__name__)
SLOW_FLUSH_S = 0.5
"""Flushes longer than this are logged: the flow stands still while it writes."""


def route_by_chunk(batch: CellBatch, chunk_streams: int) -> list[tuple[str, CellBatch]]:
    """Splits a batch by row block; the key names the block so `part_fn` can place it."""
    blocks = batch.rows // chunk_streams
    out = []
    for b in np.unique(blocks):
        out.append((f"{batch.product}#{int(b)}", batch.select(np.flatnonzero(blocks == b))))
    return out


class ZarrSink(FixedPartitionedSink[CellBatch, None]):
    """Writes the products in `specs`; changes of those in `rolled_up` are marked for roll-up."""

    def __init__(
        self,
        store_root: StoreLocation,
        lock_dir: Path,
        metadata_db: DbLocation,
        specs: dict[str, ProductSpec],
        partitions: int,
        rolled_up: frozenset[str] = frozenset(),
        min_free_bytes: int = 0,
    ) -> None:
        self._root = store_root
        self._min_free_bytes = min_free_bytes
        self._db_path = metadata_db
        self._partitions = partitions
        self._rolled_up = rolled_up
        self._shared = _SharedStores(store_root, lock_dir, specs)

    def list_parts(self) -> list[str]:
        return [f"zarr-{i:04d}" for i in range(self._partitions)]

    def part_fn(self, item_key: str) -> int:
        return int(item_key.rsplit("#", 1)[1])

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ZarrPartition:
        return _ZarrPartition(
            for_part,
            self._root,
            MetadataDB(self._db_path),
            self._shared,
            self._rolled_up,
            self._min_free_bytes,
        )


class _SharedStores:
    """The product stores of one process, shared by its sink partitions, and the thread that
    grows the time axis of live products ahead of their data (storage/growth.py) while any
    partition is open.

    Shared because each store holds the group's open arrays: with one store per partition,
    each of the 4 partitions opened (and consolidated) every array of a product itself at its
    first flush, one after the other on the dataflow's thread.

    The growth thread runs for a local store only. On an object store every growth re-reads
    the metadata of every array over the network (the consolidation) under one store-wide lock
    shared by every process; there the flushes grow what they need, as before."""

    def __init__(
        self,
        root: StoreLocation,
        lock_dir: Path,
        specs: dict[str, ProductSpec],
    ) -> None:
        self._root, self._lock_dir, self._specs = root, lock_dir, specs
        self._lock = threading.Lock()
        self._stores: dict[str, ProductStore] | None = None
        self._users = 0
        self._growth: GrowthAhead | None = None
        self._newest: dict[str, int] = {}
        """Product -> newest period any partition of the process has staged."""

    def acquire(self) -> dict[str, ProductStore]:
        """The stores, for a partition that calls `release` when it closes."""
        with self._lock:
            if self._stores is None:
                self._stores = {
                    p: ProductStore(self._root, spec, self._lock_dir)
                    for p, spec in self._specs.items()
                }
            if self._users == 0 and isinstance(self._root, Path):
                owner = weakref.ref(self)
                self._growth = GrowthAhead(
                    list(self._stores.values()), self._newest.get, alive=lambda: owner() is not None
                ).start()
            self._users += 1
            return self._stores

    def saw(self, product: str, slot: int) -> None:
        """A partition staged `slot` of `product` (tells the growth whether its data is live)."""
        if slot > self._newest.get(product, -1):
            self._newest[product] = slot

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            growth = self._growth if self._users == 0 else None
            if growth is not None:
                self._growth = None
        if growth is not None:
            growth.stop()


class _ZarrPartition(StatefulSinkPartition[CellBatch, None]):
    def __init__(
        self,
        name: str,
        root: StoreLocation,
        db: MetadataDB,
        shared: _SharedStores,
        rolled_up: frozenset[str],
        min_free_bytes: int,
    ) -> None:
        self._name = name
        self._root = root
        self._min_free_bytes = min_free_bytes
        self._db = db
        self._rolled_up = rolled_up
        self._shared = shared
        self._writers = {
            product: ProductWriter(store, RegistryLabels(db, store.spec))
            for product, store in shared.acquire().items()
        }
        self._max_slot: dict[str, int] = {}

    def write_batch(self, values: list[CellBatch]) -> None:
        for batch in values:
            self._writers[batch.product].stage(batch.rows, batch.slots, batch.values)
            top = int(batch.slots.max())
            if top > self._max_slot.get(batch.product, -1):
                self._max_slot[batch.product] = top
                self._shared.saw(batch.product, top)

    def snapshot(self) -> None:
        component = "flow.zarr"
        dirty: list[tuple[str, list[tuple[int, int]]]] = []
        status: list[tuple[str, dict[str, int]]] = []
        for product, writer in self._writers.items():
            chunks = writer.dirty_keys
            if not chunks:
                continue
            # A flush cut short by the disk leaves the unwritten chunks dirty; the retry writes
            # them, and `chunks` (taken before) still names every chunk this epoch changed.
            stats = until_stored(component, self._root, writer.flush)
            ZARR_CHUNKS_WRITTEN.labels(product).inc(len(chunks))
            ZARR_FLUSH_SECONDS.labels(product).observe(stats.seconds)
            if stats.seconds > SLOW_FLUSH_S:  # the flow (and every alert) waited this long
                log.info(
                    "slow flush: %s, %d chunk(s) in %.2f s", product, len(chunks), stats.seconds
                )
            if product in self._rolled_up:
                dirty.append((product, chunks))
            status.append(
                (
                    f"{product}#{self._name}",
                    {
                        "max_slot": self._max_slot.get(product, -1),
                        "flushed_ns": time.time_ns(),
                        "chunks": len(chunks),
                    },
                )
            )
        if status:
            until_stored(
                component,
                self._root,
                partial(self._db.record_flushes, dirty, STATUS_ZARR, status),
            )
        wait_for_room(component, self._root, self._min_free_bytes)
        return None

    def close(self) -> None:
        try:
            self.snapshot()
        finally:
            self._db.close()
            self._shared.release()
