"""What the sink pays at an epoch snapshot while 100,000 meters' readings of a minute arrive:
one `ProductWriter.flush` of meters/interval after one new period of every meter was staged,
for the chunkings a deployment can choose (meters per chunk x periods per chunk).

A flush rewrites the whole open time chunk of every touched row block, one fsync'd file per
variable: the bytes grow with periods per chunk, the files (and fsyncs) with the number of row
blocks. The reference is the chunking the capacity benchmark's deployment used until
2026-11-22 (1,024 x 240); it now uses 1,024 x 60. Meters per chunk stay at 1,024 because a
read of one meter's day decompresses (meters per chunk) x 1,440 cells per variable whatever
the periods per chunk: fewer, wider row blocks would make fewer files per flush but every
single-meter read dearer.

Each round flushes a period in the middle of its time chunk, the periods before it filled, as
a chunk is on average; the store is a real directory on the local disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from storage.products import meters_interval
from storage.zarr_store import ProductStore, ProductWriter

METERS = 100_000
ORIGIN_NS = 1_767_225_600 * 10**9  # 2026-01-01 00:00 UTC
STEP_NS = 60 * 10**9
CHUNKINGS = {"1024x240": (1024, 240), "1024x60": (1024, 60), "1024x30": (1024, 30)}
"""Name: (meters per chunk, periods per chunk)."""


class _Registry:
    """Stream labels as the registry gives them: with a version, so a flush looks them up
    only when meters were added (the flushes measured here add none)."""

    def __call__(self, first: int, stop: int) -> dict[str, list[str]]:
        ids = [f"m{i:06d}" if i < METERS else "" for i in range(first, stop)]
        return {
            "stream": ids,
            "commodity": ["electricity" if i else "" for i in ids],
            "unit": ["kWh" if i else "" for i in ids],
        }

    def version(self) -> int:
        return 1


def _period(rng: np.random.Generator, slot: int) -> dict[str, np.ndarray]:
    """One period of every meter, at the resolution a register gives (0.01 kWh)."""
    consumption = np.round(rng.gamma(2.0, 0.05, METERS), 2)
    return {
        "consumption": consumption,
        "co2": consumption * 0.5703,
        "coverage": np.ones(METERS, np.float32),
        "reading": np.round(1000.0 + slot * 0.1 + consumption, 2),
    }


class _Minutes:
    """A writer part-way through a time chunk, staging one more period per call."""

    def __init__(self, root: Path, chunk_streams: int, chunk_time: int) -> None:
        spec = meters_interval(ORIGIN_NS, STEP_NS, chunk_streams, chunk_time)
        self.writer = ProductWriter(
            ProductStore(root / "store.zarr", spec, root / "locks"), _Registry()
        )
        self._rows = np.arange(METERS, dtype=np.int64)
        self._rng = np.random.default_rng(0)
        first = 2 * chunk_time
        self._slots: Iterator[int] = itertools.count(first)
        for _ in range(chunk_time // 2):  # half the chunk already written
            self.stage()
        self.writer.flush()

    def stage(self) -> None:
        slot = next(self._slots)
        slots = np.full(METERS, slot, dtype=np.int64)
        self.writer.stage(self._rows, slots, _period(self._rng, slot))


def _bench(benchmark: BenchmarkFixture, tmp_path: Path, name: str) -> None:
    minutes = _Minutes(tmp_path, *CHUNKINGS[name])
    stats = benchmark.pedantic(minutes.writer.flush, setup=minutes.stage, rounds=8, warmup_rounds=1)
    blocks = -(-METERS // CHUNKINGS[name][0])
    assert len(stats.chunks) == blocks  # every row block rewritten, nothing else
    benchmark.extra_info["files_per_flush"] = blocks * len(minutes.writer.spec.variables)


@pytest.mark.benchmark(group="meter-flush-100k")
def test_chunking_reference_1024x240(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    _bench(benchmark, tmp_path, "1024x240")


@pytest.mark.benchmark(group="meter-flush-100k")
@pytest.mark.parametrize("name", ["1024x60", "1024x30"])
def test_chunking(benchmark: BenchmarkFixture, tmp_path: Path, name: str) -> None:
    _bench(benchmark, tmp_path, name)
