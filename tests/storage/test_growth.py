"""Product groups grown ahead of the data, off the dataflow's thread (storage/growth.py), and
the product stores the sink partitions of one process share (stream/zarr_sink.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from storage.growth import GrowthAhead
from storage.zarr_store import ProductReader, ProductStore, ProductWriter
from stream.items import CellBatch
from stream.zarr_sink import ZarrSink
from tests.storage.test_zarr_store import ORIGIN, STEP, cells, labels, spec

# the clock in the 4th time chunk (chunk_time 8): slot 27
NOW = ORIGIN + 27 * STEP + STEP // 2


NAME = spec().name


def store(root: Path) -> ProductStore:
    return ProductStore(root / "store.zarr", spec(), root / "locks")


def allocated(s: ProductStore) -> tuple[int, int] | None:
    """(streams, slots) the store's newest handles cover; None before it opened any."""
    held = s._handles
    if held is None:
        return None
    return (
        min(held[v.name].shape[0] for v in s.spec.variables),
        min(held[v.name].shape[1] for v in s.spec.variables),
    )


def counting_growths(s: ProductStore) -> list[tuple[int, int]]:
    """Records every growth `s` does (or looks for under its lock)."""
    calls: list[tuple[int, int]] = []
    original = s._open_or_grow

    def counted(n_streams: int, n_slots: int) -> Any:
        calls.append((n_streams, n_slots))
        return original(n_streams, n_slots)

    s._open_or_grow = counted  # type: ignore[method-assign]
    return calls


def live(product: str) -> int:
    """Data staged up to the clock's period."""
    return 27


def grower(s: ProductStore, newest: Any = live, **kwargs: Any) -> GrowthAhead:
    return GrowthAhead([s], newest, clock_ns=lambda: NOW, **kwargs)


def flushed(s: ProductStore, row: int, slot: int, x: float) -> ProductWriter:
    w = ProductWriter(s, labels)
    w.stage(*cells([row], [slot], [x]))
    w.flush()
    return w


def test_a_live_product_gets_the_time_chunk_after_the_clocks(tmp_path: Path) -> None:
    s = store(tmp_path)
    flushed(s, 5, 26, 1.0)  # the flush grows what it needs: 8 rows, chunks 0-3 (32 slots)
    assert allocated(s) == (8, 32)
    grower(s).grow_once()
    # slot 27 is in chunk 3, so chunks 0-4 (40 slots); the rows are the flushes' business
    assert allocated(s) == (8, 40)
    times = store(tmp_path).open_arrays()
    assert times is not None
    np.testing.assert_array_equal(times["time"][:], ORIGIN + STEP * np.arange(40))


def test_a_flush_into_the_grown_time_chunk_does_not_grow(tmp_path: Path) -> None:
    s = store(tmp_path)
    w = flushed(s, 5, 27, 1.0)
    grower(s).grow_once()
    growths = counting_growths(s)
    w.stage(*cells([5], [33], [4.5]))  # the clock moved on into chunk 4
    w.flush()
    assert growths == []
    assert ProductReader(store(tmp_path), refresh_s=0).read([5], 33, 34)["x"][0, 0] == 4.5
    # Data stamped past the grown chunk still get their room from the flush itself.
    w.stage(*cells([5], [41], [7.0]))
    w.flush()
    assert len(growths) == 1
    assert ProductReader(store(tmp_path), refresh_s=0).read([5], 41, 42)["x"][0, 0] == 7.0


def test_nothing_is_made_for_a_product_without_live_data(tmp_path: Path) -> None:
    """No group before any data, and data far behind the clock (a replay, a backfill) grow
    their own time axis, not stretched to today: the store built from the same input is the
    same whenever and wherever it is built."""
    s = store(tmp_path)
    grower(s, newest=lambda product: None).grow_once()
    assert s.open_arrays() is None
    newest: dict[str, int] = {"test/interval": 3}  # chunk 0, the clock in chunk 3
    flushed(s, 0, 3, 1.0)
    g = grower(s, newest=newest.get)
    g.grow_once()
    assert allocated(s) == (4, 8)
    flushed(s, 0, 20, 2.0)  # the data catch up: chunk 2, the one before the clock's
    newest["test/interval"] = 20
    g.grow_once()
    assert allocated(s) == (4, 40)


def test_a_clock_before_the_origin_grows_nothing(tmp_path: Path) -> None:
    s = store(tmp_path)
    flushed(s, 0, 0, 1.0)
    GrowthAhead([s], live, clock_ns=lambda: ORIGIN - STEP).grow_once()
    assert allocated(s) == (4, 8)


def test_a_failing_growth_is_logged_once_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store(tmp_path)
    flushed(s, 0, 26, 1.0)
    g = grower(s)
    real = s.ensure_shape

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError("No space left on device")

    monkeypatch.setattr(s, "ensure_shape", refused)
    with caplog.at_level("WARNING", logger="storage.growth"):
        g.grow_once()
        g.grow_once()
    assert [r.getMessage() for r in caplog.records] == [
        "growing test/interval ahead of its data failed: No space left on device"
    ]
    monkeypatch.setattr(s, "ensure_shape", real)
    g.grow_once()
    assert allocated(s) == (4, 40)


def test_the_thread_grows_and_stops(tmp_path: Path) -> None:
    s = store(tmp_path)
    flushed(s, 0, 26, 1.0)
    g = grower(s, interval_s=0.05).start()
    try:
        _wait_for(lambda: allocated(s) == (4, 40))
    finally:
        g.stop()
    assert not any(t.name == "zarr-growth" for t in threading.enumerate())


def test_the_thread_ends_when_its_owner_is_gone(tmp_path: Path) -> None:
    owner_alive = True
    g = grower(store(tmp_path), interval_s=0.05, alive=lambda: owner_alive).start()
    owner_alive = False
    _wait_for(lambda: not any(t.name == "zarr-growth" for t in threading.enumerate()))
    g.stop()


def test_the_sink_partitions_of_a_process_share_their_stores_and_one_grower(
    tmp_path: Path,
) -> None:
    sink = ZarrSink(
        tmp_path / "store.zarr", tmp_path / "locks", tmp_path / "meta.db", {"t": spec()}, 2
    )
    first = sink.build_part("sink", "zarr-0000", None)
    second = sink.build_part("sink", "zarr-0001", None)
    assert first._writers["t"].store is second._writers["t"].store
    growers = [t for t in threading.enumerate() if t.name == "zarr-growth"]
    assert len(growers) == 1
    first.close()
    assert growers[0].is_alive()  # the other partition still writes
    second.close()
    assert not growers[0].is_alive()


def test_a_live_partition_gets_the_next_time_chunk_before_it_needs_it(tmp_path: Path) -> None:
    sink = ZarrSink(
        tmp_path / "store.zarr", tmp_path / "locks", tmp_path / "meta.db", {NAME: spec()}, 1
    )
    part = sink.build_part("sink", "zarr-0000", None)
    now_slot = spec().slot_of(time.time_ns())
    part.write_batch([CellBatch(NAME, *cells([0], [now_slot], [1.0]))])
    part.snapshot()  # the first flush grows what it needs, up to the clock's time chunk
    store = part._writers[NAME].store
    chunk = spec().chunk_time
    _wait_for(lambda: (allocated(store) or (0, 0))[1] >= (now_slot // chunk + 2) * chunk)
    growths = counting_growths(store)
    part.write_batch([CellBatch(NAME, *cells([0], [(now_slot // chunk + 1) * chunk], [2.0]))])
    part.snapshot()  # the next time chunk: already there
    assert growths == []
    part.close()


def test_a_directory_renamed_into_while_it_is_synced_is_synced_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitions share a store: a file another thread renames into a directory after that
    directory's fsync must leave it recorded for the next sync."""
    w = ProductWriter(store(tmp_path), labels)
    w.stage(*cells([0], [0], [1.0]))
    w.flush()
    local = w.store._store
    chunk_dir = tmp_path / "store.zarr" / "test/interval/x/c/0"
    w.store.touched(chunk_dir / "0")
    real_fsync = os.fsync
    fsyncs = 0

    def fsync_then_a_rename_there(fd: int) -> None:
        nonlocal fsyncs
        real_fsync(fd)
        fsyncs += 1
        if fsyncs == 1:  # the deepest directory, synced first
            w.store.touched(chunk_dir / "0")

    monkeypatch.setattr(os, "fsync", fsync_then_a_rename_there)
    w.store.sync()
    assert fsyncs >= 1
    assert chunk_dir in local._dirs


def _wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
