"""Chunks written as files (storage/chunk_files.py) are the files zarr writes, and a flush that
writes them keeps its promises: a chunk whose file failed stays dirty, and its presence variable
is not written before its values."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec

import storage.chunk_files as chunk_files
from storage.chunk_files import chunk_encoding, submit_chunk
from storage.zarr_store import ProductReader, ProductStore, ProductWriter
from tests.storage.test_zarr_store import cells, labels, spec

DTYPES = ["float64", "float32", "uint8", "int64", "uint16"]


def _chunk(dtype: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = (rng.random(shape) * 200).astype(dtype)
    if data.dtype.kind == "f":
        data[rng.random(shape) < 0.3] = np.nan  # fill values among data, as in products
    return data


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_chunk_file_is_byte_for_byte_what_zarr_writes(tmp_path: Path, dtype: str) -> None:
    fill = np.nan if np.dtype(dtype).kind == "f" else 7  # as products: NaN, or a number
    by_zarr, ours = (
        zarr.create_array(p, shape=(8, 12), chunks=(4, 6), dtype=dtype, fill_value=fill)
        for p in (tmp_path / "a.zarr", tmp_path / "b.zarr")
    )
    encoding = chunk_encoding(ours)
    assert encoding is not None
    for coords in [(0, 0), (1, 1), (0, 1)]:
        block = _chunk(dtype, (4, 6), seed=coords[0] * 2 + coords[1])
        r, t = coords[0] * 4, coords[1] * 6
        by_zarr[r : r + 4, t : t + 6] = block
        submit_chunk(tmp_path / "b.zarr", encoding, coords, block).result()
        key = encoding.key(coords)
        assert key == f"c/{coords[0]}/{coords[1]}"
        assert (tmp_path / "b.zarr" / key).read_bytes() == (tmp_path / "a.zarr" / key).read_bytes()
    # A chunk of fill values only is not stored (zarr's default), and one that was is removed.
    empty = np.full((4, 6), fill, dtype=dtype)
    for coords in [(1, 0), (0, 1)]:
        r, t = coords[0] * 4, coords[1] * 6
        by_zarr[r : r + 4, t : t + 6] = empty
        submit_chunk(tmp_path / "b.zarr", encoding, coords, empty).result()

    def stored_chunks(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / "c").rglob("*") if p.is_file())

    stored = stored_chunks(tmp_path / "b.zarr")
    assert stored == stored_chunks(tmp_path / "a.zarr") == ["c/0/0", "c/1/1"]
    assert not (tmp_path / "b.zarr" / "c" / "0" / "1").exists()
    back = zarr.open_array(tmp_path / "b.zarr", mode="r")
    np.testing.assert_array_equal(back[:], by_zarr[:])


def test_arrays_of_other_codec_chains_are_left_to_zarr(tmp_path: Path) -> None:
    blosc = zarr.create_array(
        tmp_path / "c.zarr", shape=(4,), chunks=(2,), dtype="float64", compressors=BloscCodec()
    )
    raw = zarr.create_array(
        tmp_path / "d.zarr", shape=(4,), chunks=(2,), dtype="float64", compressors=None
    )
    big_endian = zarr.create_array(
        tmp_path / "e.zarr",
        shape=(4,),
        chunks=(2,),
        dtype="float64",
        serializer=BytesCodec(endian="big"),
    )
    sharded = zarr.create_array(
        tmp_path / "f.zarr", shape=(8,), chunks=(2,), shards=(4,), dtype="float64"
    )
    text = zarr.create_array(tmp_path / "g.zarr", shape=(4,), chunks=(2,), dtype=str)
    assert chunk_encoding(blosc) is None and chunk_encoding(raw) is None
    assert chunk_encoding(sharded) is None and chunk_encoding(text) is None
    encoding = chunk_encoding(big_endian)  # the chain is ours; the byte order is honoured
    assert encoding is not None and encoding.dtype == np.dtype(">f8")
    submit_chunk(tmp_path / "e.zarr", encoding, (1,), np.array([1.5, -2.0])).result()
    back = np.asarray(zarr.open_array(tmp_path / "e.zarr", mode="r")[2:])
    assert back.tolist() == [1.5, -2.0]


def test_a_part_of_a_chunk_is_refused(tmp_path: Path) -> None:
    a = zarr.create_array(tmp_path / "a.zarr", shape=(8,), chunks=(4,), dtype="float64")
    encoding = chunk_encoding(a)
    assert encoding is not None
    with pytest.raises(ValueError, match=r"a whole chunk is \(4,\), got \(3,\)"):
        encoding.encode(np.zeros(3))


def test_a_chunk_whose_file_failed_stays_dirty_and_gets_no_presence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    presence = dataclasses.replace(spec(), written_last="q")
    root = tmp_path / "store.zarr"
    w = ProductWriter(ProductStore(root, presence, tmp_path / "locks"), labels)
    w.stage(*cells([0, 5], [1, 1], [1.0, 2.0]))  # chunks (0, 0) and (1, 0)
    real_put = chunk_files.durable_put

    def disk_refuses_block_1(path: Path, data: object, exclusive: bool) -> None:
        if path.parts[-3:] == ("c", "1", "0") and path.parts[-4] == "x":
            raise OSError(28, "No space left on device")
        real_put(path, data, exclusive)

    monkeypatch.setattr(chunk_files, "durable_put", disk_refuses_block_1)
    with pytest.raises(OSError, match="No space left"):
        w.flush()
    assert w.dirty_keys == [(1, 0)]
    r = ProductReader(ProductStore(root, presence, tmp_path / "locks"), refresh_s=0)
    got = r.read([0, 5], 1, 2)
    assert got["x"][0, 0] == 1.0 and got["q"][0, 0] == np.float32(0.5)
    assert np.isnan(got["q"][1, 0])  # no presence without the values it vouches for

    monkeypatch.setattr(chunk_files, "durable_put", real_put)
    w.flush()
    assert w.dirty_keys == []
    got = r.read([0, 5], 1, 2)
    assert list(got["x"][:, 0]) == [1.0, 2.0] and list(got["q"][:, 0]) == [0.5, 0.5]
    assert not list(root.rglob("*.partial"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_chunk_read_from_its_file_is_what_zarr_reads(tmp_path: Path, dtype: str) -> None:
    fill = np.nan if np.dtype(dtype).kind == "f" else 7
    array = zarr.create_array(
        tmp_path / "a.zarr", shape=(8, 12), chunks=(4, 6), dtype=dtype, fill_value=fill
    )
    array[4:8, 0:6] = _chunk(dtype, (4, 6), seed=3)
    encoding = chunk_encoding(array)
    assert encoding is not None
    got = chunk_files.read_chunk(tmp_path / "a.zarr", encoding, (1, 0))
    assert got is not None and got.dtype == np.dtype(dtype) and got.flags.writeable
    np.testing.assert_array_equal(got, array[4:8, 0:6])
    assert chunk_files.read_chunk(tmp_path / "a.zarr", encoding, (0, 1)) is None, "never written"


def test_a_writer_reloads_an_evicted_chunk_from_its_files_without_reopening_the_group(
    tmp_path: Path,
) -> None:
    store = ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks")
    block_bytes = 12 * 4 * 8  # one block of spec(): (4 x 8) cells of float64 + float32
    w = ProductWriter(store, labels, cache_bytes=block_bytes)  # one clean block kept
    w.stage(*cells([0, 1], [0, 1], [1.0, 2.0]))
    w.flush()
    w.stage(*cells([0], [8], [3.0]))  # the next time chunk: (0, 0) is evicted
    w.flush()
    opened = 0
    original = store.open_arrays

    def counting() -> dict[str, Any] | None:
        nonlocal opened
        opened += 1
        return original()

    store.open_arrays = counting  # type: ignore[method-assign]
    w.stage(*cells([1], [2], [4.0]))  # back in (0, 0): loaded from its files
    w.flush()
    assert opened == 0
    got = ProductReader(ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks")).read(
        [0, 1], 0, 3
    )
    np.testing.assert_array_equal(got["x"], [[1.0, np.nan, np.nan], [np.nan, 2.0, 4.0]])
