"""Meter counter integration: the Rust kernel vs the numpy reference, same input, same run.

Input: 1,000 meters x 100 readings (15 s apart, every meter interleaved as a fleet poll delivers
them), integrated onto a 1-minute grid. The reference is what a user would write with numpy: per
meter, interpolate the register at period boundaries and difference it.
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.meters import interval_consumption
from carbonstream.core import meters

METERS = 1_000
READINGS = 100
ORIGIN = 1_767_225_600 * 10**9
STEP = 60 * 10**9


@pytest.fixture(scope="module")
def fleet_batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = ORIGIN + (np.arange(READINGS) * 15 + rng.uniform(0, 5, (METERS, READINGS))) * 1e9
    v = 1_000 + np.cumsum(rng.uniform(0, 0.1, (METERS, READINGS)), axis=1)
    stream = np.repeat(np.arange(METERS, dtype=np.uint32), READINGS)
    order = np.lexsort((t.ravel(), stream))[
        np.argsort(np.tile(np.arange(READINGS), METERS), kind="stable")
    ]
    return {
        "stream": stream[order],
        "seq": np.zeros(METERS * READINGS, np.uint32),
        "t": t.ravel().astype(np.int64)[order],
        "v": v.ravel()[order],
        "f": np.full(METERS * READINGS, 0.5306),
    }


@pytest.mark.benchmark(group="meters-counter")
def test_rust_kernel(benchmark: BenchmarkFixture, fleet_batch: dict[str, np.ndarray]) -> None:
    b = fleet_batch

    def run() -> int:
        it = meters.IntervalIntegrator(ORIGIN, STEP, 15 * STEP)
        (rows, *_), _ = it.integrate(b["stream"], b["seq"], b["t"], b["v"], b["f"])
        return int(rows.size)

    assert benchmark(run) > METERS * 20


@pytest.mark.benchmark(group="meters-counter")
def test_numpy_reference(benchmark: BenchmarkFixture, fleet_batch: dict[str, np.ndarray]) -> None:
    b = fleet_batch

    def run() -> int:
        order = np.lexsort((b["t"], b["stream"]))
        stream, t, v = b["stream"][order], b["t"][order], b["v"][order]
        bounds = np.flatnonzero(np.diff(stream)) + 1
        cells = 0
        for s, e in zip(np.r_[0, bounds], np.r_[bounds, stream.size], strict=True):
            slots, cons, _ = interval_consumption(t[s:e], v[s:e], ORIGIN, STEP)
            _co2 = cons * b["f"][s]
            cells += slots.size
        return cells

    assert benchmark(run) > METERS * 20
