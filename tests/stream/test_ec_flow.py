"""The EC dataflow on real Bytewax runs: journal of raw tower batches -> kernel -> ec/flux_* Zarr.

Simulated towers' samples are journaled in 1-s batches (plus one record of each kind of bad input),
the flow runs to the end of the journal, and every closed period in the store must equal the
kernel run directly on that period's samples, whatever the worker count, after a stop and resume,
and after a full replay of the journal. A last test measures the period buffers of 1,000 towers.
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import cluster_main, run_main

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from carbonstream.core import ec as ec_core
from carbonstream.products import ec_flux_specs
from connectors.ec.settings import site_columns
from connectors.simulators.ec_towers import TowerFleet
from storage.journal import Journal, JournalEntry
from storage.metadata import MetadataDB
from storage.products import EC_AXIS
from storage.records import EC_RAW, encode_ec_raw
from storage.zarr_store import ProductReader, ProductStore
from stream.dataflow import build_dataflow
from stream.ec_periods import PeriodBuffer

S = 10**9
START = 1_772_323_200 * S  # 2026-03-01T00:00Z
PERIODS = 4  # the last one stays open (no later sample closes it)

EC_TOML = """
[journal]
partitions = 2
[flow]
sink_partitions = 2
[recovery]
snapshot_interval_s = 0.2
[connectors.meter_simulator]
enabled = false
[rollups]
enabled = false
[ec]
chunk_streams = 2
chunk_time = 4
[ec.simulator]
count = 3
sampling_hz = 10
averaging_min = 0.5
"""

Record = tuple[str, bytes]


def tower_records(config: Config) -> list[Record]:
    fleet = TowerFleet(config.ec.simulator)
    out: list[Record] = []
    for t in range(START, START + PERIODS * fleet.period_ns, S):
        for i, site in enumerate(fleet.ids):
            ts, cols = fleet.samples(i, t, t + S)
            out.append((site, encode_ec_raw(ts, cols)))
    return out


def bad_records(config: Config) -> list[Record]:
    fleet = TowerFleet(config.ec.simulator)
    ts, cols = fleet.samples(0, START + 2 * S, START + 3 * S)  # period 0, after it closed
    return [
        ("nowhere-tower", encode_ec_raw(ts, cols)),
        (fleet.ids[1], b"not arrow"),
        (fleet.ids[0], encode_ec_raw(ts, cols)),
    ]


def append(config: Config, records: list[Record]) -> None:
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    journal.append_routed([JournalEntry(s, EC_RAW, p) for s, p in records])
    journal.close()


def run_flow(config: Config, workers: int = 1) -> None:
    flow = build_dataflow(config, stop_at_end=True)
    recovery = RecoveryConfig(str(config.storage.layout.recovery_dir))
    epoch = timedelta(seconds=config.recovery.snapshot_interval_s)
    if workers == 1:
        run_main(flow, epoch_interval=epoch, recovery_config=recovery)
    else:
        cluster_main(
            flow, [], 0, epoch_interval=epoch, recovery_config=recovery,
            worker_count_per_proc=workers,
        )  # fmt: skip


def expected(config: Config) -> dict[str, list[dict[str, float]]]:
    fleet = TowerFleet(config.ec.simulator)
    p0 = START // fleet.period_ns
    out = {}
    for i, site in enumerate(config.ec.all_sites()):
        proc = ec_core.EcProcessor(site.kernel_config())
        cols = site_columns(site)
        out[site.id] = [
            proc.process({k: v for k, v in fleet.period(i, p0 + k).items() if k in cols})[0]
            for k in range(PERIODS - 1)
        ]
    return out


def check_store(config: Config) -> None:
    layout = config.storage.layout
    (spec,) = ec_flux_specs(config).values()
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(EC_AXIS)}
    reader = ProductReader(ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"))
    slot0 = spec.slot_of(START)
    for site, periods in expected(config).items():
        got = reader.read([rows[site]], slot0, slot0 + PERIODS)
        for k, values in enumerate(periods):
            for name in ("FC", "LE", "H", "TAU", "USTAR", "ZL", "FC_SSITC_TEST", "N_SAMPLES"):
                assert math.isfinite(values[name])
                assert got[name][0, k] == pytest.approx(values[name], rel=1e-12), (site, k, name)
            assert got["CO2_TLAG_ACTUAL"][0, k] == pytest.approx(config.ec.simulator.lag_s)
        assert np.isnan(got["FC"][0, PERIODS - 1]), "the open period is not written"
    letters = {reason: n for (_, reason), n in db.dead_letter_counts().items()}
    assert letters == {"unknown_site": 1, "bad_payload": 1, "late_samples": 1}
    db.close()


@pytest.fixture
def ec_config(make_config: Callable[[str], Config]) -> Config:
    config = make_config(EC_TOML)
    prepare_data_dir(config)
    return config


@pytest.mark.parametrize("workers", [1, 2])
def test_flow_fluxes_equal_the_kernel_on_each_period(ec_config: Config, workers: int) -> None:
    records = tower_records(ec_config)
    append(ec_config, records[: len(records) // 2] + bad_records(ec_config))
    append(ec_config, records[len(records) // 2 :])
    run_flow(ec_config, workers)
    check_store(ec_config)


def test_stop_and_resume_gives_the_same_store(ec_config: Config) -> None:
    records = tower_records(ec_config)
    cut = len(records) * 2 // 5  # inside an open period: its samples live in the snapshot
    append(ec_config, records[:cut] + bad_records(ec_config))
    run_flow(ec_config)
    append(ec_config, records[cut:])
    run_flow(ec_config, workers=2)
    check_store(ec_config)


def test_a_replayed_journal_changes_nothing(ec_config: Config) -> None:
    append(ec_config, tower_records(ec_config) + bad_records(ec_config))
    run_flow(ec_config)
    recovery = ec_config.storage.layout.recovery_dir
    for f in recovery.glob("*"):
        f.unlink()
    init_db_dir(recovery, ec_config.recovery.partitions)
    run_flow(ec_config)
    check_store(ec_config)


def test_buffers_of_1000_towers_stay_under_1_5x_raw_float32() -> None:
    """1,000 towers x 30 min at 20 Hz x 8 columns (u, v, w, ts, co2, h2o, pressure, diagnostic)."""
    towers, columns, rate, period_s = 1000, 8, 20.0, 1800.0
    names = [f"c{k}" for k in range(columns)]
    raw = towers * columns * round(rate * period_s) * 4
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    buffers = [PeriodBuffer(names, rate, period_s) for _ in range(towers)]
    # A whole period for each tower (every page written), in 1-s batches for the first one.
    batch_ts = START + np.arange(20, dtype=np.int64) * (S // 20)
    batch = {n: np.ones(20, dtype=np.float32) for n in names}
    for b in buffers[:1]:
        for s in range(0, 1800):
            b.add(batch_ts + s * S, batch, lambda *_: None)
    for b in buffers[1:]:
        b.data[:] = 1.0
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    held = sum(b.nbytes for b in buffers)
    assert buffers[0].received == 36_000
    print(f"1000 towers: raw float32 {raw / 2**20:.0f} MiB, buffers {held / 2**20:.0f} MiB, "
          f"traced {used / 2**20:.0f} MiB ({used / raw:.3f}x)")  # fmt: skip
    assert held <= 1.5 * raw
    assert used <= 1.5 * raw
