"""The flow as a Bytewax cluster on one 2-core host: throughput with 1, 2 and 4 processes, and
what moving one item between processes costs.

Throughput: the real `carbonstream flow --stop-at-end` over a fixed journal of meter readings
(8 journal partitions, 8 Zarr sink partitions, recovery on, roll-ups off), every process of the
cluster on this host. Each process count is paired with the same command over an empty journal
(start-up, cluster connection, shutdown), which is subtracted: samples/s = samples / (full -
empty). Results are ratios to 1 process; absolute numbers vary with what else runs here.

Exchange: benchmarks/exchange_flow.py in a 2-process cluster, with items staying on their worker
vs redistributed (half of them cross to the other process), for several item sizes. Cost per
crossing item = (exchange - local) / crossing items, start-up cancelling out.

Results go to benchmarks/results/cluster.json and the benchmarks' extra_info.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from carbonstream.backends import open_journal
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import load_config
from storage.journal import JournalEntry
from storage.metadata import MetadataDB
from storage.products import METERS_AXIS
from storage.records import METER_READINGS, encode_meter_readings
from tests.servers import cluster_addresses

RESULTS = Path(__file__).parent / "results" / "cluster.json"
S = 10**9
START = 1_772_323_200 * S
METERS, MINUTES, EVERY_S = 4_000, 360, 30
PARTITIONS = 8

_CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 8
read_batch = 4
[recovery]
snapshot_interval_s = 1.0
[flow]
sink_partitions = 8
[rollups]
enabled = false
[connectors.meter_simulator]
enabled = false
"""


def _record(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**old, **results}, indent=2) + "\n")


def _data_dir(root: Path, with_input: bool, processes: int) -> Path:
    root.mkdir(parents=True)
    cluster = ""
    if processes > 1:
        addresses = ", ".join(f'"{a}"' for a in cluster_addresses(processes))
        cluster = f"[flow.cluster]\naddresses = [{addresses}]\n"
    (root / "c.toml").write_text(_CONFIG.replace("{data_dir}", str(root / "data")) + cluster)
    config = load_config(root / "c.toml", environ={})
    prepare_data_dir(config)
    ids = [f"m{i:05d}" for i in range(METERS)]
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(METERS_AXIS, {m: {} for m in ids})
    db.close()
    if with_input:
        journal = open_journal(config)
        rng = np.random.default_rng(0)
        t = START + np.arange(0, MINUTES * 60, EVERY_S) * S
        part = np.array([journal.partition_for(m) for m in ids])
        reg = np.cumsum(rng.uniform(0, 0.5, (METERS, t.size)), axis=1)
        for w0 in range(0, t.size, 10):
            for p in range(PARTITIONS):
                sel = np.flatnonzero(part == p)
                ms = [ids[i] for i in sel for _ in range(10)]
                payload = encode_meter_readings(
                    ms, np.tile(t[w0 : w0 + 10], sel.size), reg[sel, w0 : w0 + 10].ravel()
                )
                journal.append(p, [JournalEntry("bench", METER_READINGS, payload)])
        journal.close()
    return root


def _run_flow(root: Path, processes: int) -> float:
    cmd = [sys.executable, "-m", "carbonstream", "flow", "--stop-at-end"]
    cmd += ["--config", str(root / "c.toml")]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            cmd + (["--process-id", str(i)] if processes > 1 else []),
            stdout=subprocess.DEVNULL,
            stderr=(root / f"flow{i}.log").open("ab"),
        )
        for i in range(processes)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0] * processes, (root / "flow0.log").read_text()[-2000:]
    return time.perf_counter() - started


@pytest.mark.parametrize("processes", [1, 2, 4])
@pytest.mark.benchmark(group="cluster-throughput")
def test_flow_throughput_by_processes(
    benchmark: BenchmarkFixture, tmp_path: Path, processes: int
) -> None:
    samples = METERS * MINUTES * 60 // EVERY_S
    rounds = iter(range(100))
    empty = [
        _run_flow(_data_dir(tmp_path / f"empty{k}", False, processes), processes) for k in range(3)
    ]

    def full_input() -> tuple[tuple[Path, int], dict[str, Any]]:
        return (_data_dir(tmp_path / f"full{next(rounds)}", True, processes), processes), {}

    benchmark.pedantic(_run_flow, setup=full_input, rounds=3)
    overhead = float(np.median(empty))
    work = benchmark.stats.stats.median - overhead
    result = {
        "processes": processes,
        "samples": samples,
        "full_run_s_median": round(benchmark.stats.stats.median, 3),
        "empty_run_s_median": round(overhead, 3),
        "work_s": round(work, 3),
        "samples_per_s": round(samples / work),
    }
    benchmark.extra_info.update(result)
    _record({f"flow_{processes}_processes": result})


def _exchange_run(items: int, size: int, mode: str) -> float:
    addresses = ";".join(cluster_addresses(2))
    spec = f"benchmarks.exchange_flow:build({items}, {size}, {mode!r})"
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bytewax.run", spec, "-i", str(i), "-a", addresses],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    return time.perf_counter() - started


@pytest.mark.parametrize("size", [10, 1_000, 10_000])
@pytest.mark.benchmark(group="cluster-exchange")
def test_exchange_cost_per_item(benchmark: BenchmarkFixture, size: int) -> None:
    items = {10: 400_000, 1_000: 200_000, 10_000: 40_000}[size]

    def paired() -> tuple[float, float]:
        return _exchange_run(items, size, "local"), _exchange_run(items, size, "exchange")

    local_s, exchange_s = [], []
    for _ in range(3):
        a, b = paired()
        local_s.append(a)
        exchange_s.append(b)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    crossing = items / 2  # 2 workers in 2 processes: a random worker is the other one half the time
    cost = (float(np.median(exchange_s)) - float(np.median(local_s))) / crossing
    result = {
        "item_bytes": size * 8,
        "items": items,
        "local_s_median": round(float(np.median(local_s)), 3),
        "exchange_s_median": round(float(np.median(exchange_s)), 3),
        "cost_us_per_crossing_item": round(cost * 1e6, 2),
        "crossing_mb_per_s": round(size * 8 / cost / 1e6, 1) if cost > 0 else None,
    }
    benchmark.extra_info.update(result)
    _record({f"exchange_{size * 8}_bytes": result})
