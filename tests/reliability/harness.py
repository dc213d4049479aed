"""Fixed inputs and store comparison for the reliability tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from carbonstream.backends import open_journal
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config, load_config
from storage.alerts import AlertStore
from storage.journal import JournalEntry
from storage.metadata import MetadataDB
from storage.object_store import ObjectStoreLocation
from storage.products import ENTITIES_AXIS, METERS_AXIS
from storage.records import METER_READINGS, encode_meter_readings
from tests.servers import cluster_addresses

S = 10**9
START = 1_772_323_200 * S  # 2026-03-01T00:00Z

CONFIG = """
[storage]
data_dir = "{data_dir}"
{storage_keys}[journal]
partitions = 3
read_batch = 2
[recovery]
snapshot_interval_s = 0.2
[flow]
sink_partitions = 2
[products.meters_interval]
chunk_streams = 8
chunk_time = 30
[rollups]
interval_s = 0.3
utc_offset = "+08:00"
chunk_entities = 4
[connectors.meter_simulator]
enabled = false
[[alerts.rules]]
id = "busy-meters"
product = "meters/interval"
variable = "consumption"
subject = "m00*"
threshold = 0.55
clear = 0.45
"""


_DEPLOYMENT = "deployment.toml"


def write_config(directory: Path, deployment: str | None = None) -> Path:
    """The test configuration in `directory`, plus `deployment` (TOML: the journal backend, a
    cluster, ...), which is kept beside it so that `clone` carries it to the copy."""
    if deployment is not None:
        (directory / _DEPLOYMENT).write_text(deployment)
    extra = directory / _DEPLOYMENT
    path = directory / "carbonstream.toml"
    storage_keys, rest = _split_storage_keys(extra.read_text() if extra.exists() else "")
    text = CONFIG.replace("{storage_keys}", storage_keys) + rest
    path.write_text(text.replace("{data_dir}", str(directory / "data")))
    return path


def _split_storage_keys(deployment: str) -> tuple[str, str]:
    """(keys of the deployment's `[storage]` table, the rest): those keys join the table CONFIG
    opens (a TOML table is defined once); sub-tables (`[storage.object_store]`) stay apart."""
    lines = deployment.splitlines(keepends=True)
    if "[storage]\n" not in lines:
        return "", deployment
    start = lines.index("[storage]\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return "".join(lines[start + 1 : end]), "".join(lines[:start] + lines[end:])


def fixed_input(
    directory: Path,
    meters: int = 24,
    minutes: int = 150,
    seed: int = 3,
    deployment: str | None = None,
) -> Config:
    """A data directory whose journal holds a fixed simulated input, not yet processed: meters
    in an entity tree reading every 30 s, one record per partition every 5 minutes, and a few
    bad rows that must end as dead letters. `deployment`: extra configuration (see
    `write_config`), e.g. a Kafka journal or a cluster."""
    config = load_config(write_config(directory, deployment), environ={})
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(
        ENTITIES_AXIS,
        {
            "city": {"kind": "city"},
            "east": {"kind": "district", "parent": "city"},
            "west": {"kind": "district", "parent": "city"},
            **{
                f"ent-{k}": {"kind": "enterprise", "parent": "east" if k < 3 else "west"}
                for k in range(6)
            },
        },
    )
    ids = [f"m{i:03d}" for i in range(meters)]
    db.register_streams(METERS_AXIS, {m: {"entity": f"ent-{i % 6}"} for i, m in enumerate(ids)})
    db.close()
    rng = np.random.default_rng(seed)
    t = START + np.arange(0, minutes * 60, 30) * S
    registers = 1_000 * np.arange(1, meters + 1)[:, None] + np.cumsum(
        rng.uniform(0, 0.5, (meters, t.size)), axis=1
    )
    journal = open_journal(config)
    part = np.array([journal.partition_for(m) for m in ids])
    for w0 in range(0, t.size, 10):  # 10 readings = 5 minutes per record
        for p in range(config.journal.partitions):
            sel = np.flatnonzero(part == p)
            ms = [ids[i] for i in sel for _ in range(min(10, t.size - w0))]
            ts = np.tile(t[w0 : w0 + 10], sel.size)
            vs = registers[sel, w0 : w0 + 10].ravel()
            if sel.size:
                journal.append(
                    p, [JournalEntry("fixed", METER_READINGS, encode_meter_readings(ms, ts, vs))]
                )
    bad = encode_meter_readings(
        ["m001", "ghost", "m002"],
        np.array([t[-1] + S, START, 0]),
        np.array([float("nan"), 1.0, 1.0]),
    )
    journal.append(0, [JournalEntry("fixed", METER_READINGS, bad)])
    journal.close()
    return config


def clone(config_dir: Path, to: Path) -> Path:
    """A copy of a data directory (and its configuration, pointed at the copy)."""
    shutil.copytree(config_dir / "data", to / "data")
    if (config_dir / _DEPLOYMENT).exists():
        shutil.copy(config_dir / _DEPLOYMENT, to / _DEPLOYMENT)
    write_config(to)
    return to


def run_flow(
    directory: Path,
    crash_at: str | None = None,
    kill_after_s: float | None = None,
    slow_batches_s: float | None = None,
) -> int:
    """Runs `carbonstream flow --stop-at-end` (every process of the cluster when one is
    configured); returns its exit status, -9 when killed. `slow_batches_s`: a sleep after every
    journal batch the flow reads (`CARBONSTREAM_SLOW_AT`), so that reading the input spans many
    epochs and flushes whatever the machine's speed.

    In a cluster, a process that dies takes its peers down (they cannot go on without it); a
    peer still alive a few seconds later is killed as well, as `carbonstream run --cluster`
    restarts the whole group."""
    config = load_config(directory / "carbonstream.toml", environ={})
    cluster = config.flow.cluster
    ids: list[int | None] = list(range(cluster.processes)) if cluster else [None]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONSTREAM_")}
    if crash_at:
        env["CARBONSTREAM_CRASH_AT"] = crash_at
    if slow_batches_s is not None:
        env["CARBONSTREAM_SLOW_AT"] = f"flow.source.batch:{slow_batches_s}"
    procs = []
    for pid in ids:
        cmd = [sys.executable, "-m", "carbonstream", "flow", "--stop-at-end"]
        cmd += ["--config", str(directory / "carbonstream.toml")]
        if pid is not None:
            cmd += ["--process-id", str(pid)]
        procs.append(
            subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(directory / "flow.log").open("ab"),
            )
        )
    try:
        deadline = time.monotonic() + (kill_after_s if kill_after_s is not None else 240)
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs):
                break  # one died: give its peers a moment to notice, then kill them
            time.sleep(0.05)
        if any(p.poll() is None for p in procs):
            grace = 5.0 if any(p.returncode not in (None, 0) for p in procs) else 0.0
            end = time.monotonic() + grace
            while time.monotonic() < end and any(p.poll() is None for p in procs):
                time.sleep(0.05)
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
        codes = [p.wait(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return -9 if -9 in codes else next((c for c in codes if c != 0), 0)


def store_contents(directory: Path) -> dict[str, Any]:
    """Every stored chunk and metadata document of the Zarr store (bytes), and the dead letters.

    Comparing bytes is stronger than comparing values, and cheap: the arrays span every period
    since the grid origin, but only written chunks exist. Temporary files a kill left behind
    (`*.partial`, never renamed into place) are not part of the store and are left out. The
    store and the database are those of the directory's configuration (a bucket and PostgreSQL
    when it says so)."""
    layout = load_config(directory / "carbonstream.toml", environ={}).storage.layout
    out: dict[str, Any] = {}
    store = layout.zarr_store
    if isinstance(store, ObjectStoreLocation):
        import obstore

        s3 = store.obstore()
        for batch in obstore.list(s3):
            for meta in batch:
                out[meta["path"]] = bytes(obstore.get(s3, meta["path"]).bytes())
        out = dict(sorted(out.items()))
    else:
        for path in sorted(store.rglob("*")):
            if path.is_file() and not path.name.endswith(".partial"):
                out[str(path.relative_to(store))] = path.read_bytes()
    db = MetadataDB(layout.metadata_db)
    out["dead_letters"] = sorted((d["id"], d["reason"]) for d in db.dead_letters(limit=10_000))
    db.close()
    alerts = AlertStore(layout.metadata_db)
    out["alert_history"] = alerts.history()
    alerts.close()
    return out


def wait_gone(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def deployment_toml(request: pytest.FixtureRequest, kind: str) -> str:
    """Configuration of a deployment kind: '' (local journal, one process), a Kafka journal on
    the session's broker (a topic of its own), or a cluster of processes on loopback ports."""
    if kind == "local":
        return ""
    if kind == "kafka":
        broker: str = request.getfixturevalue("kafka_broker")
        topic = f"crash-{uuid.uuid4().hex[:8]}"
        # Short time-outs: a re-send whose first copy's appender was killed mid-append waits
        # for the claim to go stale (> the ack time-out) before taking it over.
        return (
            f'[journal.kafka]\nbootstrap_servers = "{broker}"\ntopic = "{topic}"\n'
            "ack_timeout_s = 5\ndedupe_claim_timeout_s = 6\n"
        )
    if kind.startswith("cluster"):
        n = int(kind.removeprefix("cluster"))
        addresses = ", ".join(f'"{a}"' for a in cluster_addresses(n))
        return f"[flow.cluster]\naddresses = [{addresses}]\n"
    raise ValueError(kind)
