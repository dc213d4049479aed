"""One 30-min 20 Hz period through the full Express pipeline: the Rust kernel (through its Python
binding, GIL released) vs the vectorised numpy implementation of the same steps, same run.

Input: the two 15-min TOA5 reference files back to back (36,000 samples: u, v, w, Ts, CO2, H2O,
pressure, sonic diagnostic), settings from the EddyPro metadata with a 30-min averaging period.
Targets (issue 3): kernel median <= 3 ms on one core (EddyPro: 2,600 ms) and >= 3x numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.ec import express_period
from carbonstream.core import ec
from connectors.ec.processing import load_site, make_processor
from connectors.ec.readers import read_raw_file

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "ec" / "TOA5-open-path"

Columns = dict[str, npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def period() -> tuple[ec.EcProcessor, Columns]:
    files = sorted(DATA.glob("TOA5_*.dat"))
    site = load_site(DATA / "instrument.metadata", files, period_min=30)
    tables = [read_raw_file(f, site) for f in files]
    cols = {k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns}
    assert cols["u"].size == 36_000
    return make_processor(site), cols


def test_reference_agrees_with_the_kernel(period: tuple[ec.EcProcessor, Columns]) -> None:
    processor, cols = period
    ours, _ = processor.process(cols)
    ref = express_period(cols)
    for name in ("FC", "LE", "H", "USTAR"):
        assert ref[name] == pytest.approx(ours[name], rel=0.10), name


@pytest.mark.benchmark(group="ec-period-30min-20hz")
def test_rust_kernel(benchmark: BenchmarkFixture, period: tuple[ec.EcProcessor, Columns]) -> None:
    processor, cols = period
    values, _ = benchmark(processor.process, cols)
    assert np.isfinite(values["FC"])


@pytest.mark.benchmark(group="ec-period-30min-20hz")
def test_numpy_reference(
    benchmark: BenchmarkFixture, period: tuple[ec.EcProcessor, Columns]
) -> None:
    _, cols = period
    values = benchmark(express_period, cols)
    assert np.isfinite(values["FC"])
