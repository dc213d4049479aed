"""The emission factor of every reading of a batch (stream/meter_lookup.py), as the meter step
asks for it: 3,000 readings of distinct meters out of 100,000 registered (about what one journal
batch holds at 100,000 meters), all factors already looked up once.

Reference: the lookup it replaced, one cached Python call per distinct (meter, year) of the
batch. Both must give the same factors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from storage.factors import FactorTable
from storage.metadata import MetadataDB
from stream.meter_lookup import MeterLookup

METERS, BATCH, YEAR = 100_000, 3_000, 2023
Batch = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""(registry rows, years) of the readings of one batch."""


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> MeterLookup:
    path: Path = tmp_path_factory.mktemp("meter-lookup") / "metadata.sqlite"
    db = MetadataDB(path)
    db.register_streams(
        "meters",
        {f"m{i:06d}": {"commodity": "electricity", "unit": "kWh"} for i in range(METERS)},
    )
    factors = FactorTable(path)
    out = MeterLookup(db, factors, factors.ensure_seeded(), "meters")
    out.factors(np.arange(METERS, dtype=np.int64), np.full(METERS, YEAR))  # all looked up once
    return out


@pytest.fixture(scope="module")
def batch() -> Batch:
    rows = np.random.default_rng(0).permutation(METERS)[:BATCH].astype(np.int64)
    return rows, np.full(BATCH, YEAR, dtype=np.int64)


def per_distinct_key(
    lookup: MeterLookup, cache: dict[tuple[int, int], float], rows: np.ndarray, years: np.ndarray
) -> npt.NDArray[np.float64]:
    """One dictionary lookup per distinct (row, year), then spread back to the readings."""
    unique, inverse = np.unique(rows * 10_000 + years, return_inverse=True)
    values = []
    for k in unique.tolist():
        key = (k // 10_000, k % 10_000)
        if key not in cache:
            cache[key] = lookup.factors(np.array([key[0]]), np.array([key[1]]))[0]
        values.append(cache[key])
    return np.array(values)[inverse.reshape(-1)]


@pytest.mark.benchmark(group="meter-factors-batch")
def test_factor_arrays(benchmark: BenchmarkFixture, lookup: MeterLookup, batch: Batch) -> None:
    got = benchmark(lookup.factors, *batch)
    assert np.isfinite(got).all() and got.shape == (BATCH,)


@pytest.mark.benchmark(group="meter-factors-batch")
def test_per_meter_reference(
    benchmark: BenchmarkFixture, lookup: MeterLookup, batch: Batch
) -> None:
    cache: dict[tuple[int, int], float] = {}
    per_distinct_key(lookup, cache, *batch)  # warm, as the replaced lookup was
    got = benchmark(per_distinct_key, lookup, cache, *batch)
    np.testing.assert_array_equal(got, lookup.factors(*batch))
