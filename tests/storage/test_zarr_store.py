"""Zarr product groups: position-addressed whole-chunk writes, growth, labels, xarray access."""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from storage.metadata import MetadataDB
from storage.products import ProductSpec, Variable, entities_interval, meters_interval
from storage.zarr_store import (
    ChunkingMismatch,
    ProductReader,
    ProductStore,
    ProductWriter,
    RegistryLabels,
)

ORIGIN = 1_700_000_000 * 10**9
STEP = 60 * 10**9


def spec() -> ProductSpec:
    return ProductSpec(
        name="test/interval",
        axis="test",
        origin_ns=ORIGIN,
        step_ns=STEP,
        chunk_streams=4,
        chunk_time=8,
        variables=(
            Variable("x", "float64", {"units": "kWh", "long_name": "x"}),
            Variable("q", "float32", {"units": "1", "long_name": "q"}),
        ),
        stream_attrs=("unit",),
        attrs={"title": "test"},
    )


def labels(first: int, stop: int) -> dict[str, list[str]]:
    ids = [f"s{i}" if i < 10 else "" for i in range(first, stop)]
    return {"stream": ids, "unit": ["kWh" if i else "" for i in ids]}


def writer(root: Path) -> ProductWriter:
    return ProductWriter(ProductStore(root / "store.zarr", spec(), root / "locks"), labels)


def reader(root: Path) -> ProductReader:
    return ProductReader(ProductStore(root / "store.zarr", spec(), root / "locks"), refresh_s=0)


def cells(
    rows: list[int], slots: list[int], x: list[float]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    r, s = np.array(rows, dtype=np.int64), np.array(slots, dtype=np.int64)
    return r, s, {"x": np.array(x), "q": np.full(len(x), 0.5, dtype=np.float32)}


def store_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "store.zarr").rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_cells_are_written_where_they_belong_and_nan_elsewhere(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.stage(*cells([0, 5, 5], [3, 3, 17], [1.0, 2.0, 3.0]))
    stats = w.flush()
    assert sorted(stats.chunks) == [(0, 0), (1, 0), (1, 2)]
    out = reader(tmp_path).read([0, 5, 9], 0, 20)
    expected = np.full((3, 20), np.nan)
    expected[0, 3], expected[1, 3], expected[1, 17] = 1.0, 2.0, 3.0
    np.testing.assert_array_equal(out["x"], expected)
    assert out["q"][1, 17] == np.float32(0.5)


def test_later_values_overwrite_and_rewrites_are_idempotent(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.stage(*cells([1], [2], [1.0]))
    w.flush()
    w.stage(*cells([1], [2], [4.0]))
    w.flush()
    first = store_digest(tmp_path)
    # A replay: a new writer (cold cache) rewrites the same cells with the same values.
    again = writer(tmp_path)
    again.stage(*cells([1], [2], [4.0]))
    again.flush()
    assert store_digest(tmp_path) == first
    assert reader(tmp_path).read([1], 2, 3)["x"][0, 0] == 4.0


def test_growth_is_in_whole_chunks_and_time_coordinate_is_the_grid(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.stage(*cells([6], [9], [1.0]))
    w.flush()
    assert reader(tmp_path).shape() == (8, 16)
    ds = xr.open_zarr(tmp_path / "store.zarr", group="test/interval")
    expected_time = ORIGIN + STEP * np.arange(16)
    np.testing.assert_array_equal(
        ds["time"].values.astype("datetime64[ns]").astype(np.int64), expected_time
    )
    # The owner of a row block labels it when it first writes data there; a block nobody wrote
    # yet keeps empty labels (its streams have no data in this product).
    assert list(ds["stream"].values) == ["", "", "", "", "s4", "s5", "s6", "s7"]
    assert list(ds["unit"].values[4:]) == ["kWh"] * 4
    assert ds["x"].dims == ("stream", "time")
    assert ds["x"].attrs["units"] == "kWh"
    assert float(ds["x"].sel(stream="s6").isel(time=9)) == 1.0
    assert ds.attrs["product"] == "test/interval" and ds.attrs["time_step_ns"] == STEP


def test_one_flush_labels_runs_of_row_blocks_and_leaves_the_gaps(tmp_path: Path) -> None:
    """Blocks 0, 1 and 3 get data in one flush (0-1 consecutive, written by one assignment per
    coordinate); block 2 keeps empty labels; streams registered later are labelled on the next
    flush of their block."""
    registered = 10
    w = ProductWriter(
        ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks"),
        lambda a, b: {
            "stream": [f"s{i}" if i < registered else "" for i in range(a, b)],
            "unit": ["kWh" if i < registered else "" for i in range(a, b)],
        },
    )
    w.stage(*cells([1, 5, 13], [0, 0, 0], [1.0, 2.0, 3.0]))
    assert w.flush().label_chunks == 3
    ds = xr.open_zarr(tmp_path / "store.zarr", group="test/interval")
    want = [f"s{i}" for i in range(8)] + [""] * 4 + ["", "", "", ""]
    assert list(ds["stream"].values) == want  # s12.. are not registered yet
    registered = 16
    w.stage(*cells([1, 13], [1, 1], [1.0, 3.0]))
    assert w.flush().label_chunks == 1  # only block 3 has new streams
    ds = xr.open_zarr(tmp_path / "store.zarr", group="test/interval")
    assert list(ds["stream"].values)[12:] == ["s12", "s13", "s14", "s15"]
    assert list(ds["stream"].values)[8:12] == [""] * 4
    assert list(ds["unit"].values)[:8] == ["kWh"] * 8


def test_registry_labels_are_looked_up_only_when_the_registry_moved(tmp_path: Path) -> None:
    """With the registry's labels, a flush into blocks already labelled does not read the
    registry unless its version moved; then new streams and changed attributes are written."""
    db = MetadataDB(tmp_path / "meta.sqlite")
    db.register_streams("test", {f"s{i}": {"unit": "kWh"} for i in range(6)})
    labels = RegistryLabels(db, spec())
    lookups = 0

    def counted(first: int, stop: int) -> dict[str, list[str]]:
        nonlocal lookups
        lookups += 1
        return labels(first, stop)

    counted.version = labels.version  # type: ignore[attr-defined]
    w = ProductWriter(ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks"), counted)
    w.stage(*cells([1, 5], [0, 0], [1.0, 2.0]))
    assert w.flush().label_chunks == 2 and lookups == 2
    w.stage(*cells([1, 5], [1, 1], [1.0, 2.0]))
    assert w.flush().label_chunks == 0 and lookups == 2  # registry unchanged: not read
    db.register_streams("test", {"s6": {"unit": "kWh"}, "s0": {"unit": "MWh"}})
    w.stage(*cells([1, 5], [2, 2], [1.0, 2.0]))
    assert w.flush().label_chunks == 2  # block 0: s0's unit changed; block 1: s6 is new
    ds = xr.open_zarr(tmp_path / "store.zarr", group="test/interval")
    assert list(ds["stream"].values) == ["s0", "s1", "s2", "s3", "s4", "s5", "s6", ""]
    assert list(ds["unit"].values[:2]) == ["MWh", "kWh"]
    db.close()


def test_a_writer_keeps_its_array_handles_while_they_cover_what_it_writes(
    tmp_path: Path,
) -> None:
    """Reopening the group reads every array's metadata: done only to grow."""
    w = writer(tmp_path)
    w.stage(*cells([0], [0], [1.0]))
    w.flush()
    opened = 0
    original = w.store.open_arrays

    def counting() -> dict[str, Any] | None:
        nonlocal opened
        opened += 1
        return original()

    w.store.open_arrays = counting  # type: ignore[method-assign]
    w.stage(*cells([1], [3], [2.0]))  # inside the first chunk: covered
    w.flush()
    assert opened == 0
    w.stage(*cells([1], [9], [3.0]))  # the next time chunk: the arrays grow
    w.flush()
    assert opened >= 1
    np.testing.assert_array_equal(reader(tmp_path).read([1], 3, 10)["x"][0, [0, 6]], [2.0, 3.0])


def test_negative_slots_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="before the origin"):
        writer(tmp_path).stage(*cells([0], [-1], [1.0]))


def test_a_time_coordinate_left_unfinished_by_a_crash_is_repaired(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.stage(*cells([0], [1], [1.0]))
    w.flush()
    store = ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks")
    arrays = store.open_arrays()
    assert arrays is not None
    arrays["time"].resize((24,))  # as if killed between resize and write
    fresh = ProductStore(tmp_path / "store.zarr", spec(), tmp_path / "locks")
    repaired = fresh.ensure_shape(4, 20)
    np.testing.assert_array_equal(repaired["time"][:], ORIGIN + STEP * np.arange(24))


def _write_block(root: str, row: int, n: int) -> None:
    w = writer(Path(root))
    for k in range(n):
        w.stage(*cells([row], [k * 8], [float(row * 1000 + k)]))
        w.flush()


def test_writers_of_different_row_blocks_in_different_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_block, args=(str(tmp_path), row, 6)) for row in (0, 4, 8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    out = reader(tmp_path).read([0, 4, 8], 0, 48)["x"]
    for i, row in enumerate((0, 4, 8)):
        np.testing.assert_array_equal(out[i, ::8], row * 1000 + np.arange(6))


def read_overtaken_by_a_flush(
    root: Path, product: ProductSpec, values: Callable[[float], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Reads cells 0-1 of row 0 with a flush of cell 1 run to the end after the reader's first
    variable: the order a reader and a concurrent flush can interleave in."""
    store = root / "store.zarr"

    def no_labels(first: int, stop: int) -> dict[str, list[str]]:
        return {n: [""] * (stop - first) for n in ("stream", *product.stream_attrs)}

    w = ProductWriter(ProductStore(store, product, root / "locks"), no_labels)
    one = np.zeros(1, dtype=np.int64)
    w.stage(one, one, values(1.0))
    w.flush()
    r = ProductReader(ProductStore(store, product, root / "locks"), refresh_s=60)
    arrays = r._current()
    assert arrays is not None
    first_read = True

    def overtaken(array: object) -> None:
        original = array.get_orthogonal_selection  # type: ignore[attr-defined]

        def read_then_flush(*args: object, **kwargs: object) -> object:
            nonlocal first_read
            got = original(*args, **kwargs)
            if first_read:
                first_read = False
                w.stage(one, one + 1, values(2.0))
                w.flush()
            return got

        array.get_orthogonal_selection = read_then_flush  # type: ignore[attr-defined]

    for a in arrays.values():
        overtaken(a)
    got = r.read([0], 0, 2)
    assert not first_read
    return got


def test_a_flush_overtaking_a_reader_never_shows_a_row_without_its_values(tmp_path: Path) -> None:
    """`q` is the presence variable (written last): whatever the reader returns, a cell it
    shows present (q) has its x. Reading q last, it returned q new and x old."""
    presence = dataclasses.replace(spec(), written_last="q")
    got = read_overtaken_by_a_flush(tmp_path, presence, lambda x: cells([0], [0], [x])[2])
    shown = ~np.isnan(got["q"][0])
    assert shown[0] and np.all(~np.isnan(got["x"][0][shown])), got


def test_a_meter_period_shown_covered_has_its_values_under_a_concurrent_flush(
    tmp_path: Path,
) -> None:
    """CI caught the service serving every pushed period with a coverage and a null
    consumption: the reader read consumption just before a flush and coverage just after it.
    Every written cell has a coverage, so coverage is the presence variable, written last."""
    product = meters_interval(ORIGIN, STEP, chunk_streams=4, chunk_time=8)

    def meter_cell(x: float) -> dict[str, np.ndarray]:
        return {
            "consumption": np.array([x]),
            "co2": np.array([x * 0.5]),
            "coverage": np.ones(1, dtype=np.float32),
            "reading": np.array([100.0 + x]),
            "factor_version": np.ones(1, dtype=np.int16),
        }

    got = read_overtaken_by_a_flush(tmp_path, product, meter_cell)
    shown = ~np.isnan(got["coverage"][0])
    assert shown[0], got
    for name in ("consumption", "co2", "reading"):
        assert np.all(~np.isnan(got[name][0][shown])), (name, got)


def test_an_entity_period_shown_complete_has_its_co2_under_a_concurrent_flush(
    tmp_path: Path,
) -> None:
    """The roll-ups had the meters' race: co2 read before a flush, completeness after it."""
    product = entities_interval(ORIGIN, STEP, chunk_streams=4, chunk_time=8)

    def entity_cell(x: float) -> dict[str, np.ndarray]:
        return {
            v.name: np.array([x], dtype=v.dtype) if v.name != "completeness" else np.ones(1)
            for v in product.variables
        }

    got = read_overtaken_by_a_flush(tmp_path, product, entity_cell)
    shown = ~np.isnan(got["completeness"][0])
    assert shown[0], got
    assert np.all(~np.isnan(got["co2"][0][shown])), got


def test_a_configuration_with_another_chunking_than_the_store_is_refused_by_name(
    tmp_path: Path,
) -> None:
    """Chunking is fixed when a group is created: configured otherwise later (a default
    changed by an upgrade, a setting raised for a bigger fleet), every flush would fail on
    blocks that no longer match the chunks. Opening the group says what to configure."""
    w = writer(tmp_path)
    w.stage(*cells([0], [0], [1.0]))
    w.flush()
    wider = dataclasses.replace(spec(), chunk_streams=8)
    other = ProductStore(tmp_path / "store.zarr", wider, tmp_path / "locks")
    with pytest.raises(ChunkingMismatch, match="created with chunks of 4 streams x 8 periods"):
        other.open_arrays()
    with pytest.raises(ChunkingMismatch, match="configuration asks for 8 x 8"):
        ProductWriter(other, labels).stage(*cells([0], [1], [2.0]))  # loading its block
