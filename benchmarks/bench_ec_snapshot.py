"""What one tower costs at every epoch snapshot: its open period's journal offsets (what the flow
snapshots, stream/ec_replay.py) vs the period's samples themselves (the design it replaced, still
read from old recovery stores), both pickled as Bytewax does.

The tower is 28 minutes into a 30-min period at 20 Hz with 8 columns, in 1-s journal records
that share their partition with ~500 other towers (offset gaps of ~500). Bytewax snapshots every
key that changed in the epoch, so this is paid per tower every `recovery.snapshot_interval_s`.
"""

from __future__ import annotations

import array
import pickle

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from stream.ec_periods import PeriodBuffer
from stream.ec_replay import OpenRecords

RATE, PERIOD_S, ELAPSED_S = 20.0, 1800.0, 1680
COLUMNS = ["u", "v", "w", "ts", "co2", "h2o", "pressure_pa", "diag_sonic"]
NS = 1_000_000_000


@pytest.fixture(scope="module")
def buffer() -> PeriodBuffer:
    b = PeriodBuffer(COLUMNS, RATE, PERIOD_S)
    rng = np.random.default_rng(0)
    step = NS // int(RATE)
    for s in range(ELAPSED_S):
        ts = s * NS + np.arange(int(RATE), dtype=np.int64) * step
        b.add(ts, {c: rng.random(ts.size, dtype=np.float32) for c in COLUMNS}, lambda *_: None)
    assert b.received == ELAPSED_S * RATE
    return b


@pytest.fixture(scope="module")
def records() -> OpenRecords:
    rng = np.random.default_rng(1)
    offsets = 10_000_000 + np.cumsum(rng.integers(450, 550, ELAPSED_S))
    return OpenRecords(0, array.array("Q", offsets.tolist()))


@pytest.mark.benchmark(group="ec-snapshot-per-tower")
def test_journal_offsets(benchmark: BenchmarkFixture, records: OpenRecords) -> None:
    blob = benchmark(lambda: pickle.dumps(records.pack()))
    assert OpenRecords.unpack(pickle.loads(blob)) == records
    benchmark.extra_info["bytes"] = len(blob)


@pytest.mark.benchmark(group="ec-snapshot-per-tower")
def test_samples_reference(benchmark: BenchmarkFixture, buffer: PeriodBuffer) -> None:
    blob = benchmark(lambda: pickle.dumps(buffer.snapshot()))
    assert len(blob) > ELAPSED_S * RATE * len(COLUMNS) * 4
    benchmark.extra_info["bytes"] = len(blob)
