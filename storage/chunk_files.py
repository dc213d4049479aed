"""Whole chunks of local Zarr arrays written straight to their files, several at a time.

Why: zarr-python spends 3-4 ms of event-loop work on every chunk write (selection, codec
pipeline, thread hops), however small the chunk. A minute's close of 2,048 CEMS stacks touches
~900 chunks, so a flush took 2.7-6 s, and the dataflow (every alert with it) waits for its
flushes. A chunk written whole needs none of that machinery: its file is the chunk's C-order
bytes passed through the array's codecs. This module does exactly that for the one codec chain
carbonstream creates (`bytes`, then `zstd`, default chunk keys) and answers None for any other
array, which then keeps going through zarr. The files it writes are the files zarr writes
(tests/storage/test_chunk_files.py reads them back through zarr).

Every file is written durably (temporary name, fsync, rename), and several are in flight at once
so their fsyncs overlap.
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import Zstd
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.core.metadata.v3 import ArrayV3Metadata

WRITERS = 4
"""Chunk files in flight at once: enough to overlap fsyncs on a local disk."""


def durable_put(path: Path, data: Any, exclusive: bool) -> None:
    """Writes `data` under a temporary name, fsyncs it, renames it into place (zarr's own put
    skips the fsync, so after a power cut or a filesystem error a renamed chunk can be empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # FileExistsError if it exists, as zarr expects
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ChunkEncoding:
    """How one array's chunks become files: where they are named and how their bytes are made."""

    array_path: str
    """The array's path inside the store ('cems/minute/value')."""
    chunk_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    """The stored dtype, byte order included."""
    separator: str
    zstd: Zstd
    fill_value: Any
    """A chunk holding only this is not stored (zarr's default, `write_empty_chunks` False): the
    file is removed instead, so stores written here and through zarr hold the same files."""

    def key(self, coords: tuple[int, ...]) -> str:
        """The store key of the chunk at `coords` (Zarr v3 default encoding: c/i/j)."""
        chunk = self.separator.join(["c", *map(str, coords)])
        return f"{self.array_path}/{chunk}" if self.array_path else chunk

    def is_empty(self, chunk: np.ndarray) -> bool:
        if isinstance(self.fill_value, float) and np.isnan(self.fill_value):
            return bool(np.isnan(chunk).all())
        return bool((chunk == self.fill_value).all())

    def decode(self, data: bytes) -> np.ndarray:
        """A chunk's values from its file's bytes, in the native byte order (writable)."""
        raw = np.frombuffer(self.zstd.decode(data), dtype=self.dtype)
        return raw.reshape(self.chunk_shape).astype(self.dtype.newbyteorder("="))

    def encode(self, chunk: np.ndarray) -> bytes:
        if chunk.shape != self.chunk_shape:
            raise ValueError(
                f"{self.array_path}: a whole chunk is {self.chunk_shape}, got {chunk.shape}"
            )
        raw = np.ascontiguousarray(chunk, dtype=self.dtype)
        return bytes(self.zstd.encode(raw))


def chunk_encoding(array: Any) -> ChunkEncoding | None:
    """The encoding of `array`'s chunks if it is the chain this module writes, else None."""
    meta = array.metadata
    if not isinstance(meta, ArrayV3Metadata) or meta.storage_transformers:
        return None
    if not isinstance(meta.chunk_grid, RegularChunkGrid):
        return None
    if not isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding):
        return None
    codecs = meta.codecs
    if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec):
        return None
    if not isinstance(codecs[1], ZstdCodec):
        return None
    native = np.dtype(meta.data_type.to_native_dtype())
    if native.kind not in "biuf":  # strings and objects have codecs of their own
        return None
    endian = codecs[0].endian
    if native.itemsize > 1:
        if endian is None:
            return None
        native = native.newbyteorder("<" if endian.value == "little" else ">")
    return ChunkEncoding(
        array_path=array.path,
        chunk_shape=tuple(meta.chunk_grid.chunk_shape),
        dtype=native,
        separator=meta.chunk_key_encoding.separator,
        zstd=Zstd(level=codecs[1].level, checksum=codecs[1].checksum),
        fill_value=np.asarray(meta.fill_value, dtype=native).item(),
    )


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _writers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="chunk-files")
        return _pool


def read_chunk(root: Path, encoding: ChunkEncoding, coords: tuple[int, ...]) -> np.ndarray | None:
    """The chunk at `coords` under `root`; None when it has no file (never written, or only
    fill values). One file read: zarr reads a chunk through its codec pipeline (3-4 ms), and
    needs handles whose metadata it parsed, which cost the first flush of ec/flux_2min (72
    variables) 0.1-0.3 s per row block it opened."""
    try:
        data = (root / encoding.key(coords)).read_bytes()
    except FileNotFoundError:
        return None
    return encoding.decode(data)


def submit_chunk(
    root: Path, encoding: ChunkEncoding, coords: tuple[int, ...], chunk: np.ndarray
) -> Future[Path]:
    """Starts writing one whole chunk under `root` (or removing its file, if the chunk is
    empty); the future gives the file's path.

    The caller must not change `chunk` until the future is done (it is encoded in the pool)."""

    def write() -> Path:
        path = root / encoding.key(coords)
        if encoding.is_empty(chunk):
            path.unlink(missing_ok=True)  # durable once the caller syncs its directory
        else:
            durable_put(path, encoding.encode(chunk), False)
        return path

    return _writers().submit(write)
