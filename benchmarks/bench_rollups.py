"""Roll-up step: the Rust `grouped_nansum` (what stream/rollup.py calls) vs numpy, same input.

Input: one time chunk of meters/interval as the materializer reads it, 20,000 meters x 240
one-minute periods (co2, 10 % of cells missing, 2 % of meters without a scope), summed into 500
entities x 2 scopes. The reference sorts rows by group and reduces each block with
`np.add.reduceat`. Results are asserted equal: counts exactly, sums to 1e-12 relative (reduceat
adds a group's rows in another order than the kernel's row order).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.rollups import NO_GROUP, grouped_nansum
from carbonstream.core import meters

METERS = 20_000
PERIODS = 240
ENTITIES = 500
GROUPS = ENTITIES * 2

Batch = tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]]


@pytest.fixture(scope="module")
def chunk() -> Batch:
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 0.5, (METERS, PERIODS))
    values[rng.random((METERS, PERIODS)) < 0.1] = np.nan
    groups = rng.integers(0, GROUPS, METERS).astype(np.uint32)
    groups[rng.random(METERS) < 0.02] = NO_GROUP
    return np.ascontiguousarray(values), groups


def assert_same(
    a: tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]],
    b: tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]],
) -> None:
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_array_equal(a[1], b[1])
    assert np.isfinite(a[0]).sum() > GROUPS * PERIODS // 2  # mostly values, some NaN
    assert np.isnan(a[0]).any() or (a[1] > 0).all()


@pytest.mark.benchmark(group="rollups-grouped-nansum")
def test_rust_kernel(benchmark: BenchmarkFixture, chunk: Batch) -> None:
    values, groups = chunk
    result = benchmark(meters.grouped_nansum, values, groups, GROUPS)
    assert_same(result, grouped_nansum(values, groups, GROUPS))


@pytest.mark.benchmark(group="rollups-grouped-nansum")
def test_numpy_reference(benchmark: BenchmarkFixture, chunk: Batch) -> None:
    values, groups = chunk
    result = benchmark(grouped_nansum, values, groups, GROUPS)
    assert_same(result, meters.grouped_nansum(values, groups, GROUPS))
