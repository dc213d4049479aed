"""Zarr v3 product groups: position-addressed writes by chunk owners, and range reads.

Writes: a `ProductWriter` stages cell updates in whole-chunk blocks held in memory and writes each
touched chunk whole on `flush`. Whole-chunk writes need no read-modify-write inside zarr, and since
exactly one writer owns each chunk (the dataflow routes rows by chunk), no two processes ever
write the same chunk. Every file is written to a temporary name, synced, then renamed, and
`flush` syncs the directories before it returns: a crash of the process, the machine or the disk
(a filesystem turned read-only by an error) never leaves a torn or empty chunk, and what a flush
wrote is on disk before the dataflow commits the epoch that produced it. A write the disk refuses
raises (OSError) with nothing half-done; the next flush writes it again.

Growth: arrays grow (never shrink) in whole chunks, under a file lock, because the shape lives in
one metadata document shared by every writer. The new part of the time coordinate is written in
the same step, and the store's consolidated metadata (at the root, where xarray looks for it) is
refreshed. One lock serves the whole store, so a consolidation never captures another product's
half-finished growth. carbonstream's own readers and writers read array metadata directly.

Labels: the `stream` coordinate (and per-stream attributes) of a row block are written by the
block's owner when it flushes data there, so they obey the same one-writer rule; the rows of a
block that holds no data yet keep empty labels.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import numpy as np
import zarr

from carbonstream.faults import crash_point
from storage.chunk_files import (
    ChunkEncoding,
    chunk_encoding,
    durable_put,
    read_chunk,
    submit_chunk,
)
from storage.metadata import MetadataDB
from storage.object_store import ObjectStoreLocation, StoreLocation, growth_lock, open_zarr_store
from storage.products import ProductSpec

ZArray = zarr.Array[Any]
_Held = TypeVar("_Held", bound=Mapping[str, ZArray])
"""Array handles, as a caller holds them (a dict or a read-only mapping)."""

Labels = Callable[[int, int], dict[str, list[str]]]
"""(first_row, stop_row) -> coordinate name -> one label per row ('' where no stream is there)."""

_TIME_ATTRS: dict[str, Any] = {
    "standard_name": "time",
    "long_name": "start of the period",
    "units": "nanoseconds since 1970-01-01",
    "calendar": "proleptic_gregorian",
}


TIME_COORD_CHUNK = 1 << 20
"""Entries per chunk of the `time` coordinate. It spans every period since the origin (3.6 M
minutes from 2020 to 2026), so it gets large chunks of its own: a few files, not thousands."""


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class ChunkingMismatch(ValueError):
    """The configured chunking of a product is not the one its existing group has."""


class _DurableLocalStore(zarr.storage.LocalStore):
    """A LocalStore whose writes survive a crash of the machine: files are synced before their
    rename, and `sync_dirs` makes the renames (and deletions) themselves durable."""

    def __init__(self, root: Path | str, *, read_only: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self._dirs: set[Path] = set()
        self._dirs_lock = threading.Lock()

    def touched(self, path: Path) -> None:
        """Records a file written under the root outside zarr, so `sync_dirs` covers it."""
        with self._dirs_lock:
            d = path.parent
            while d != self.root.parent.parent and d not in self._dirs:
                self._dirs.add(d)  # new directories need their own parent synced too
                d = d.parent

    async def _set(self, key: str, value: Any, exclusive: bool = False) -> None:
        if not self._is_open:
            await self._open()
        self._check_writable()
        path = self.root / key
        await asyncio.to_thread(durable_put, path, value.as_buffer_like(), exclusive)
        self.touched(path)

    def set_sync(self, key: str, value: Any) -> None:
        self._ensure_open_sync()
        self._check_writable()
        path = self.root / key
        durable_put(path, value.as_buffer_like(), False)
        self.touched(path)

    async def delete(self, key: str) -> None:
        await super().delete(key)
        self.touched(self.root / key)

    def sync_dirs(self) -> None:
        """fsyncs every directory written to since the last call; kept for the next call if
        the disk refuses (the caller retries before committing anything)."""
        # Taken out before syncing: a file another thread renames meanwhile records its
        # directory again, and the next call syncs it (removing it afterwards would lose that).
        with self._dirs_lock:
            dirs = sorted(self._dirs, key=lambda d: len(d.parts), reverse=True)
            self._dirs.clear()
        for i, d in enumerate(dirs):
            if not d.exists():
                continue
            try:
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except BaseException:
                with self._dirs_lock:
                    self._dirs.update(dirs[i:])
                raise


class ProductStore:
    """Opens, creates and grows the arrays of one product group."""

    def __init__(self, root: StoreLocation, spec: ProductSpec, lock_dir: Path) -> None:
        """`root`: a directory, or a store on S3-compatible object storage
        (storage/object_store.py, which also says how growth is locked there)."""
        self.root = root
        self.spec = spec
        self._lock_path = lock_dir / f"{root.name}.grow.lock"
        self._store = (
            open_zarr_store(root)
            if isinstance(root, ObjectStoreLocation)
            else _DurableLocalStore(root)
        )
        self._verified_time_len = 0
        self._handles: dict[str, ZArray] | None = None
        """The newest handles this process opened or grew: every writer of the product in the
        process (one per sink partition) starts from them instead of opening its own."""
        self._growing = threading.Lock()
        """Serialises growth within the process (the file lock serialises processes)."""
        self._consolidated = False
        """This process has made the consolidated metadata (what xarray reads) match the arrays.
        False at start: a growth whose consolidation failed (a crash, a disk turned read-only)
        left it stale, and the arrays already being big enough would never trigger it again."""

    def sync(self) -> None:
        """Makes every write of this store so far durable (see `_DurableLocalStore`; an object
        store's put is durable when it returns, and has no directories)."""
        if isinstance(self._store, _DurableLocalStore):
            self._store.sync_dirs()

    def chunk_encodings(self, arrays: Mapping[str, ZArray]) -> dict[str, ChunkEncoding] | None:
        """Encodings of the variables' chunks, for writing them as files (storage/chunk_files.py);
        None where that is not possible (an object store, a codec chain zarr must apply)."""
        if not isinstance(self._store, _DurableLocalStore):
            return None
        out = {}
        for v in self.spec.variables:
            encoding = chunk_encoding(arrays[v.name])
            if encoding is None:
                return None
            out[v.name] = encoding
        return out

    def read_chunk(self, encoding: ChunkEncoding, coords: tuple[int, int]) -> np.ndarray | None:
        """One whole chunk from its file (a local store only: see `chunk_encodings`)."""
        assert isinstance(self._store, _DurableLocalStore)
        return read_chunk(self._store.root, encoding, coords)

    def put_chunk(
        self, encoding: ChunkEncoding, coords: tuple[int, int], chunk: np.ndarray
    ) -> Future[Path]:
        """Starts writing one whole chunk file (a local store only: see `chunk_encodings`)."""
        assert isinstance(self._store, _DurableLocalStore)
        return submit_chunk(self._store.root, encoding, coords, chunk)

    def touched(self, path: Path) -> None:
        assert isinstance(self._store, _DurableLocalStore)
        self._store.touched(path)

    def coordinate_names(self) -> tuple[str, ...]:
        return ("stream", *self.spec.stream_attrs)

    def array_names(self) -> list[str]:
        return [v.name for v in self.spec.variables] + ["time", *self.coordinate_names()]

    def open_arrays(self) -> dict[str, ZArray] | None:
        """Fresh handles (re-reading metadata) to every array of the group; None until all exist
        (another process may be creating the group right now)."""
        try:
            group = zarr.open_group(
                self._store, path=self.spec.name, mode="r+", use_consolidated=False
            )
        except FileNotFoundError:
            return None
        arrays = {}
        for n in self.array_names():
            try:
                a = group[n]
            except KeyError:
                return None
            assert isinstance(a, zarr.Array)
            arrays[n] = a
        self._check_chunking(arrays)
        return arrays

    def _check_chunking(self, arrays: Mapping[str, ZArray]) -> None:
        """A group's chunking is fixed when it is created; a configuration asking for another
        one would have every flush refused (its blocks no longer match the chunks)."""
        s = self.spec
        wanted = (s.chunk_streams, s.chunk_time)
        for v in s.variables:
            stored = tuple(arrays[v.name].chunks)
            if stored != wanted:
                raise ChunkingMismatch(
                    f"{s.name} in {self.root} was created with chunks of {stored[0]} streams x "
                    f"{stored[1]} periods, but the configuration asks for {wanted[0]} x "
                    f"{wanted[1]}: configure the chunking the store was created with (a new "
                    "data directory or store can have another one)"
                )

    def ensure_shape(
        self, n_streams: int, n_slots: int, current: Mapping[str, ZArray] | None = None
    ) -> dict[str, ZArray]:
        """Grows the group (creating it first if needed) to at least the given shape.

        `current`: handles the caller already holds, kept when they cover the shape (arrays
        never shrink); else the store's newest ones, if they do. Opening the group reads and
        parses every array's metadata: a flow that flushes every epoch spent a few tenths of a
        second per flush on it at 50,000 meters, and each of 4 sink partitions opening the 76
        arrays of ec/flux_2min for itself took 0.3-0.5 s."""
        for held in (current, self._handles):
            if self._serves(held, n_streams, n_slots):
                return dict(held)
        with self._growing:
            arrays = self._open_or_grow(n_streams, n_slots)
            self._handles = arrays
            return dict(arrays)

    def _serves(self, held: _Held | None, n_streams: int, n_slots: int) -> TypeGuard[_Held]:
        """`held` can be written through as they are: they cover the shape, and this process
        has consolidated the group's metadata."""
        return held is not None and self._consolidated and self._covers(held, n_streams, n_slots)

    def handles(self) -> dict[str, ZArray] | None:
        """The newest handles this process holds, opened now if it holds none (None while the
        group does not exist). Their shapes may be behind another process's growth."""
        held = self._handles
        if held is None:
            held = self._handles = self.open_arrays()
        return held

    def _open_or_grow(self, n_streams: int, n_slots: int) -> dict[str, ZArray]:
        if self._serves(self._handles, n_streams, n_slots):
            return self._handles  # grown by another thread while this one waited
        arrays = self.open_arrays()
        if self._serves(arrays, n_streams, n_slots):
            return arrays
        with growth_lock(self.root, self._lock_path):
            arrays = self.open_arrays() or self._create()
            if self._covers(arrays, n_streams, n_slots):
                if not self._consolidated:
                    self._consolidate()
                return arrays
            self._consolidated = False
            s = self.spec
            # Sizes are taken over every array: a crash during an earlier growth may have left
            # some arrays grown and others not.
            grown_streams = max(arrays[v.name].shape[0] for v in s.variables)
            grown_slots = max(arrays[v.name].shape[1] for v in s.variables)
            new_streams = max(grown_streams, _round_up(n_streams, s.chunk_streams))
            new_slots = max(grown_slots, _round_up(n_slots, s.chunk_time))
            for v in s.variables:
                arrays[v.name].resize((new_streams, new_slots))
            for c in self.coordinate_names():
                arrays[c].resize((new_streams,))
            # Rewritten from the start in the rare case a crash left its end unwritten.
            old_time = arrays["time"].shape[0] if self._time_complete(arrays["time"]) else 0
            arrays["time"].resize((new_slots,))
            arrays["time"][old_time:new_slots] = s.slot_starts(old_time, new_slots)
            self._consolidate()
            return arrays

    def _consolidate(self) -> None:
        with warnings.catch_warnings():
            # Consolidated metadata is not in the v3 spec yet; xarray uses it when present.
            warnings.simplefilter("ignore", category=UserWarning)
            zarr.consolidate_metadata(self._store)
        self._consolidated = True

    def _covers(self, arrays: Mapping[str, ZArray], n_streams: int, n_slots: int) -> bool:
        """Every handle covers the shape. Handles opened while another process grows the group
        can disagree (some already grown, some not): then this is False and the caller reopens
        them under the lock, where no growth runs."""
        for v in self.spec.variables:
            rows, slots = arrays[v.name].shape
            if rows < n_streams or slots < n_slots:
                return False
        if any(arrays[c].shape[0] < n_streams for c in self.coordinate_names()):
            return False
        return arrays["time"].shape[0] >= n_slots and self._time_complete(arrays["time"])

    def _time_complete(self, time_coord: ZArray) -> bool:
        """The time coordinate is resized before its new values are written; a crash in between
        would leave fill values at its end. Checked once per length, then trusted."""
        n = time_coord.shape[0]
        if n == 0 or n <= self._verified_time_len:
            return True
        ok = int(np.asarray(time_coord[n - 1])) == self.spec.slot_start_ns(n - 1)
        if ok:
            self._verified_time_len = n
        return ok

    def _create(self) -> dict[str, ZArray]:
        """Creates what is missing of the group (a crash may have left it half made)."""
        s = self.spec
        root = zarr.open_group(self._store, mode="a", use_consolidated=False)
        group = root.require_group(s.name)
        existing = set(group.array_keys())
        group.attrs.update(
            {
                **s.attrs,
                "product": s.name,
                "Conventions": "CF-1.11",
                "time_origin_ns": s.origin_ns,
                "time_step_ns": s.step_ns,
                "time_calendar": s.calendar,
                "time_label": "start of period",
            }
        )
        for name, definition in self._definitions().items():
            if name not in existing:
                group.create_array(name, **definition)
        arrays = self.open_arrays()
        assert arrays is not None
        return arrays

    def _definitions(self) -> dict[str, dict[str, Any]]:
        """Array name -> create_array arguments, for every array of the group."""
        s = self.spec
        defs: dict[str, dict[str, Any]] = {
            v.name: {
                "shape": (0, 0),
                "chunks": (s.chunk_streams, s.chunk_time),
                "dtype": v.dtype,
                "fill_value": v.fill_value,
                "dimension_names": ["stream", "time"],
                "attributes": v.attrs,
            }
            for v in s.variables
        }
        defs["time"] = {
            "shape": (0,),
            "chunks": (TIME_COORD_CHUNK,),
            "dtype": "int64",
            "fill_value": 0,
            "dimension_names": ["time"],
            "attributes": _TIME_ATTRS,
        }
        for c in self.coordinate_names():
            defs[c] = {
                "shape": (0,),
                "chunks": (s.chunk_streams,),
                "dtype": str,
                "dimension_names": ["stream"],
                "attributes": {"long_name": "stream id" if c == "stream" else f"stream {c}"},
            }
        return defs


@dataclass
class _Block:
    """One chunk's worth of every variable, as it will be written."""

    values: dict[str, np.ndarray]
    dirty: bool = False


@dataclass(frozen=True)
class FlushStats:
    chunks: list[tuple[int, int]]
    """(row block, time chunk) of every chunk written."""
    label_chunks: int
    seconds: float


class ProductWriter:
    """Stages cells of the chunks this writer owns and writes them whole on `flush`.

    `cache_bytes` bounds the clean blocks kept after a flush, so the next update of the open
    time chunk does not read it back from disk.
    """

    def __init__(self, store: ProductStore, labels: Labels, cache_bytes: int = 256 << 20) -> None:
        self.store = store
        self.spec = store.spec
        self._labels = labels
        self._labels_version: Callable[[], int] | None = getattr(labels, "version", None)
        self._seen_version: int | None = None
        self._blocks: OrderedDict[tuple[int, int], _Block] = OrderedDict()
        self._arrays: dict[str, ZArray] | None = None
        self._label_fingerprints: dict[int, int] = {}
        """Row block -> fingerprint of the labels written there."""
        self._block_bytes = sum(np.dtype(v.dtype).itemsize for v in self.spec.variables) * (
            self.spec.chunk_streams * self.spec.chunk_time
        )
        self._max_clean_blocks = max(1, cache_bytes // self._block_bytes)

    def stage(self, rows: np.ndarray, slots: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Sets cells (rows[i], slots[i]) of each variable; later values for a cell win."""
        if rows.size == 0:
            return
        if rows.min() < 0 or slots.min() < 0:
            raise ValueError(
                f"{self.spec.name}: negative row or slot (slot < 0 is before the origin)"
            )
        cs, ct = self.spec.chunk_streams, self.spec.chunk_time
        chunk_r, chunk_t = rows // cs, slots // ct
        # One flat key per chunk: np.unique along an axis of a 2-row stack cost ~1 ms per
        # call, 12x the flat one, and the sink stages every routed batch (thousands a minute
        # at 100,000 meters).
        t_first = int(chunk_t.min())
        span = int(chunk_t.max()) - t_first + 1
        flat, inverse = np.unique(chunk_r * span + (chunk_t - t_first), return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(flat.size + 1))
        for k in range(flat.size):
            sel = order[bounds[k] : bounds[k + 1]]
            key = (int(flat[k]) // span, int(flat[k]) % span + t_first)
            block = self._block(key)
            r, t = rows[sel] - key[0] * cs, slots[sel] - key[1] * ct
            for name, arr in values.items():
                block.values[name][r, t] = arr[sel]
            block.dirty = True

    def _block(self, key: tuple[int, int]) -> _Block:
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
            return block
        block = _Block(self._load(key))
        self._blocks[key] = block
        return block

    def _load(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        """Current content of a chunk (fill values where nothing was ever written)."""
        s = self.spec
        out = {
            v.name: np.full((s.chunk_streams, s.chunk_time), v.fill_value, dtype=v.dtype)
            for v in s.variables
        }
        held = self._arrays or self.store.handles()
        encodings = self.store.chunk_encodings(held) if held is not None else None
        if encodings is not None:
            # Straight from the files this writer (the chunk's one owner) wrote: no array
            # metadata to re-read, whatever the shape its handles know.
            for v in s.variables:
                chunk = self.store.read_chunk(encodings[v.name], key)
                if chunk is not None:
                    out[v.name][...] = chunk
            return out
        arrays = self.store.open_arrays()
        if arrays is None:
            return out
        r0, t0 = key[0] * s.chunk_streams, key[1] * s.chunk_time
        for v in s.variables:
            # Clipped per array: each handle has its own view of the (growing) shape, and
            # anything beyond it was never written.
            n_streams, n_slots = arrays[v.name].shape
            r1, t1 = min(r0 + s.chunk_streams, n_streams), min(t0 + s.chunk_time, n_slots)
            if r1 > r0 and t1 > t0:
                out[v.name][: r1 - r0, : t1 - t0] = arrays[v.name][r0:r1, t0:t1]
        return out

    def flush(self) -> FlushStats:
        """Writes every dirty chunk (and the stream labels of their rows); durable on return."""
        started = time.perf_counter()
        dirty = [k for k, b in self._blocks.items() if b.dirty]
        s = self.spec
        labels_written = 0
        if dirty:
            need_rows = (max(k[0] for k in dirty) + 1) * s.chunk_streams
            need_slots = (max(k[1] for k in dirty) + 1) * s.chunk_time
            self._arrays = self.store.ensure_shape(need_rows, need_slots, self._arrays)
            encodings = self.store.chunk_encodings(self._arrays)
            if encodings is None:
                self._write_through_zarr(dirty)
            else:
                self._write_files(dirty, encodings)
            labels_written = self._write_labels(sorted({k[0] for k in dirty}))
        self.store.sync()
        self._evict()
        return FlushStats(dirty, labels_written, time.perf_counter() - started)

    def _write_through_zarr(self, dirty: list[tuple[int, int]]) -> None:
        s = self.spec
        assert self._arrays is not None
        for key in dirty:
            crash_point("zarr.flush.chunk")
            block = self._blocks[key]
            r0, t0 = key[0] * s.chunk_streams, key[1] * s.chunk_time
            for names in s.write_phases():
                for n in names:
                    self._arrays[n][r0 : r0 + s.chunk_streams, t0 : t0 + s.chunk_time] = (
                        block.values[n]
                    )
            block.dirty = False

    def _write_files(
        self, dirty: list[tuple[int, int]], encodings: Mapping[str, ChunkEncoding]
    ) -> None:
        """Every dirty chunk as files, many in flight; the presence variable of a chunk only
        after all its other variables are stored. A chunk stays dirty unless every file of it
        was written; the first error is raised after the others have finished."""
        pending = list(dirty)
        error: BaseException | None = None
        for phase, names in enumerate(self.spec.write_phases()):
            futures: dict[tuple[int, int], list[Future[Path]]] = {}
            for key in pending:
                if phase == 0:
                    crash_point("zarr.flush.chunk")
                block = self._blocks[key].values
                futures[key] = [self.store.put_chunk(encodings[n], key, block[n]) for n in names]
            done = []
            for key, fs in futures.items():
                ok = True
                for f in fs:
                    try:
                        self.store.touched(f.result())
                    except BaseException as e:  # re-raised below, once all have finished
                        ok, error = False, error or e
                if ok:
                    done.append(key)
            pending = done
        for key in pending:
            self._blocks[key].dirty = False
        if error is not None:
            raise error

    def _write_labels(self, row_chunks: list[int]) -> int:
        """Writes the labels of the row blocks whose streams changed; returns how many.

        Labels with a `version` (the registry's) are only looked up when it moved or a block is
        new: at 50,000 meters, looking up every dirty block's streams took the flow's thread
        about half a second per flush when every meter's period closed at once. Consecutive
        blocks are written by one assignment per coordinate: zarr costs a few ms per call
        however small, and a first flush labels every row block at once (at 2,048 stacks,
        1.2-1.6 s per sink partition when written block by block)."""
        version = self._labels_version() if self._labels_version is not None else None
        if (
            version is not None
            and version == self._seen_version
            and all(rc in self._label_fingerprints for rc in row_chunks)
        ):
            return 0
        cs = self.spec.chunk_streams
        changed: list[tuple[int, dict[str, list[str]], int]] = []
        for row_chunk in row_chunks:
            labels = self._labels(row_chunk * cs, (row_chunk + 1) * cs)
            fingerprint = hash(tuple(tuple(v) for v in labels.values()))
            if self._label_fingerprints.get(row_chunk) != fingerprint:
                changed.append((row_chunk, labels, fingerprint))
        self._seen_version = version  # read before the lookups: a change meanwhile is seen next
        if not changed:
            return 0
        assert self._arrays is not None
        arrays = self._arrays
        for run in _consecutive(changed):
            r0, r1 = run[0][0] * cs, (run[-1][0] + 1) * cs
            for name in self.store.coordinate_names():
                values = [x for _, labels, _ in run for x in labels[name]]
                arrays[name][r0:r1] = np.array(values, dtype=object)
            for row_chunk, _, fingerprint in run:
                self._label_fingerprints[row_chunk] = fingerprint
        return len(changed)

    def _evict(self) -> None:
        clean = [k for k, b in self._blocks.items() if not b.dirty]
        excess = len(clean) - self._max_clean_blocks
        for k in clean[: max(0, excess)]:
            del self._blocks[k]

    @property
    def dirty_chunks(self) -> int:
        return sum(1 for b in self._blocks.values() if b.dirty)

    @property
    def dirty_keys(self) -> list[tuple[int, int]]:
        """(row block, time chunk) of the chunks the next flush writes."""
        return [k for k, b in self._blocks.items() if b.dirty]


class ProductReader:
    """Reads (stream rows x slot range) windows of a product, NaN where nothing was written."""

    def __init__(self, store: ProductStore, refresh_s: float = 1.0) -> None:
        self.store = store
        self.spec = store.spec
        self._refresh_s = refresh_s
        self._arrays: dict[str, ZArray] | None = None
        self._opened = 0.0

    def _current(self) -> dict[str, ZArray] | None:
        now = time.monotonic()
        if self._arrays is None or now - self._opened > self._refresh_s:
            self._arrays = self._open_consistent()
            self._opened = now
        return self._arrays

    def _open_consistent(self) -> dict[str, ZArray] | None:
        """Handles that agree on the shape. A writer grows the arrays one after the other, so
        handles opened meanwhile can disagree; a reader keeping them would then serve a new
        period with some variables and not others (a flux row with u* but no FC) until its next
        refresh. Reopened until they agree (a growth takes milliseconds)."""
        arrays = self.store.open_arrays()
        for _ in range(50):
            if arrays is None:
                return None
            if len({arrays[v.name].shape for v in self.spec.variables}) == 1:
                return arrays
            time.sleep(0.01)
            arrays = self.store.open_arrays()
        return arrays

    def shape(self) -> tuple[int, int]:
        arrays = self._current()
        if arrays is None:
            return (0, 0)
        n_streams, n_slots = arrays[self.spec.variables[0].name].shape
        return int(n_streams), int(n_slots)

    def read(
        self, rows: Sequence[int], slot0: int, slot1: int, variables: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Values for `rows` x [slot0, slot1); each result has shape (len(rows), slot1 - slot0)."""
        names = list(variables) if variables is not None else [v.name for v in self.spec.variables]
        width = max(0, slot1 - slot0)
        out: dict[str, Any] = {
            n: np.full(
                (len(rows), width), self.spec.variable(n).fill_value, self.spec.variable(n).dtype
            )
            for n in names
        }
        arrays = self._current()
        if arrays is None or width == 0 or not rows:
            return out
        row_arr = np.asarray(rows, dtype=np.int64)
        # The presence variable first (the write phases in reverse): what it shows present is
        # complete in whatever is read after it. Read last, a flush running meanwhile could
        # overtake the reader: the first variables still old (a flux row without FC), the later
        # ones and the presence variable new.
        others, presence = self.spec.write_phases()
        for n in [n for n in (*presence, *others) if n in names]:
            # Clipped per array: while another process grows the group, handles opened just
            # now can disagree on the shape (some arrays already grown, some not).
            n_streams, n_slots = arrays[n].shape
            present = np.flatnonzero((row_arr >= 0) & (row_arr < n_streams))
            lo, hi = max(slot0, 0), min(slot1, n_slots)
            if present.size == 0 or hi <= lo:
                continue
            part = arrays[n].get_orthogonal_selection((row_arr[present], slice(lo, hi)))
            out[n][present, lo - slot0 : hi - slot0] = part
        return out


def _consecutive(
    blocks: list[tuple[int, dict[str, list[str]], int]],
) -> list[list[tuple[int, dict[str, list[str]], int]]]:
    """Row blocks (sorted by index) split into runs of consecutive indices."""
    runs: list[list[tuple[int, dict[str, list[str]], int]]] = []
    for b in blocks:
        if runs and runs[-1][-1][0] + 1 == b[0]:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


class RegistryLabels:
    """Labels of a product's rows from the stream registry: ids and `spec.stream_attrs`. Its
    `version` is the registry's, so a writer looks labels up again only when it moved."""

    def __init__(self, db: MetadataDB, spec: ProductSpec) -> None:
        self._db, self._spec = db, spec

    def __call__(self, first: int, stop: int) -> dict[str, list[str]]:
        spec = self._spec
        out = {name: [""] * (stop - first) for name in ("stream", *spec.stream_attrs)}
        for info in self._db.streams_by_rows(spec.axis, first, stop):
            out["stream"][info.idx - first] = info.id
            for a in spec.stream_attrs:
                out[a][info.idx - first] = str(info.attrs.get(a, ""))
        return out

    def version(self) -> int:
        return self._db.registry_version(self._spec.axis)
