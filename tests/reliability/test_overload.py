"""Inputs faster than the flow: the journal takes the burst, the flow's memory does not.

The real service runs with its flow slowed down (`CARBONSTREAM_SLOW_AT`: every journal batch it
reads costs a second, as on an overloaded machine) while two utilities push readings over HTTP
as fast as the API takes them. Ingest does not slow down with the flow: every push is
acknowledged (202) once journaled, and the backlog waits in the journal. /health shows the lag
growing and turns degraded once it passes `flow.max_lag_s`. The flow reads the journal in bounded
batches (`journal.read_batch`), so its memory stays flat however large the backlog is: the burst
goes on until the backlog's encoded size is three times the memory growth allowed, so a flow that
took it into memory would fail. When the burst ends (and the slowness with it), the flow catches
up: lag back to 0, every acknowledged reading processed once (counted by the flow's metrics, no
dead letters), and each meter's register in the product equals what was sent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import load_config
from storage.metadata import MetadataDB
from storage.products import METERS_AXIS
from tests.conftest import free_port
from tests.e2e.service import Service
from tests.reliability.live import MINUTE, MeterSender, S, metric, role_pids, rss_bytes

pytestmark = pytest.mark.e2e

METERS = [f"ov{i:03d}" for i in range(200)]
START = 1_772_323_200 * S  # 2026-03-01T00:00Z
GRID_ORIGIN = 1_577_836_800 * S  # first period of meters/interval
PER_BATCH = 60  # one reading per meter per second: a batch is a minute of 200 meters
WARMUP_BATCHES = 20  # at full speed, before memory is measured
FLOW_RSS_GROWTH_BOUND = 12 << 20  # measured: 1-3 MB
BACKLOG_BYTES = 3 * FLOW_RSS_GROWTH_BOUND  # the burst ends once the journal holds this much...
BURST_MAX_S = 30.0  # ...or after this long on a machine too loaded to push that much
MAX_LAG_S = 3.0

CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
read_batch = 4
[recovery]
snapshot_interval_s = 0.5
[flow]
max_lag_s = {max_lag_s}
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[ec.simulator]
enabled = false
"""


def prepare(cwd: Path) -> Path:
    """A data directory with the meters registered (as a utility's meters would be)."""
    path = cwd / "carbonstream.toml"
    path.write_text(
        CONFIG.replace("{data_dir}", str(cwd / "data")).replace("{max_lag_s}", str(MAX_LAG_S))
    )
    config = load_config(path, environ={})
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(METERS_AXIS, {m: {} for m in METERS})
    db.close()
    return path


class RssSampler:
    """Samples a process's resident memory every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.samples.append(rss_bytes(self.pid))
            except (OSError, ValueError):  # gone (the test failed and the service stopped)
                return

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join()
        return self.samples


def test_a_burst_waits_in_the_journal_and_is_processed_in_full(tmp_path: Path) -> None:
    slow = tmp_path / "flow-is-slow"  # absent: the flow runs at its own speed
    svc = Service.start(
        tmp_path,
        free_port(),
        prepare(tmp_path),
        env={
            "CARBONSTREAM_SLOW_AT": "flow.source.batch:1.0",
            "CARBONSTREAM_SLOW_WHILE": str(slow),
        },
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/meters") or None, timeout_s=90)
        pids = svc.wait_for(
            "three roles",
            lambda: role_pids(svc.proc.pid) if len(role_pids(svc.proc.pid)) == 3 else None,
            timeout_s=60,
        )
        token = svc.token("ingest")
        # Two utilities with 100 meters each: each keeps its own meters in time order.
        senders = [
            MeterSender(svc.base_url, token, METERS[h::2], START, PER_BATCH, S, keep_rows=False)
            for h in range(2)
        ]

        # Warm-up at full speed: the flow's first batches load the kernels, open the Zarr
        # groups and fill its caches. Memory grown by the burst is measured from there.
        for s in senders:
            s.start()
        svc.wait_for(
            "a warm-up",
            lambda: True if all(s.next_batch >= WARMUP_BATCHES for s in senders) else None,
        )
        for s in senders:
            s.stop()
        caught_up(svc, timeout_s=60)
        baseline = rss_bytes(pids["flow"])
        sampler = RssSampler(pids["flow"])

        slow.touch()  # from the next journal batch on, the flow is slower than its inputs
        for s in senders:
            s.start()

        lag_seen: list[dict[str, Any]] = []
        degraded: dict[str, Any] | None = None
        backlog = 0
        deadline = time.monotonic() + BURST_MAX_S
        while time.monotonic() < deadline and (degraded is None or backlog < BACKLOG_BYTES):
            status, body = _health(svc)
            lag_seen.append(body["journal"])
            if status == 503 and degraded is None:
                degraded = body
            backlog = backlog_bytes(tmp_path / "data", body["journal"]["partitions"])
            time.sleep(0.5)
        for s in senders:
            s.stop()
        burst_rows = sum(s.rows_acked for s in senders)
        peak_lag = max(int(j["lag_records"]) for j in lag_seen)
        backlog = backlog_bytes(tmp_path / "data", _health(svc)[1]["journal"]["partitions"])

        # Ingest did not slow down with the flow: every push was acknowledged, none refused.
        assert all(not s.refusals and not s.errors for s in senders), [
            (s.refusals[:1], s.errors[:1]) for s in senders
        ]
        assert peak_lag > 0
        assert degraded is not None, lag_seen[-1]
        assert any("journal lag" in p for p in degraded["problems"]), degraded
        assert degraded["journal"]["lag_seconds"] > MAX_LAG_S

        slow.unlink()  # the burst is over: the flow runs at its own speed again
        caught_up(svc, timeout_s=120)
        rss = sampler.stop()
        assert role_pids(svc.proc.pid) == pids, svc.log_tail()

        # Memory: bounded by `read_batch` records in flight, not by the backlog. Had the flow
        # taken the backlog into memory, it would have grown by at least its encoded size.
        growth = max(rss) - baseline
        assert backlog > 2 * FLOW_RSS_GROWTH_BOUND, f"backlog of {backlog >> 20} MB too small"
        assert growth < FLOW_RSS_GROWTH_BOUND, (
            f"flow RSS grew {growth >> 20} MB over {baseline >> 20} MB "
            f"with a backlog of {peak_lag} records ({backlog >> 20} MB) in the journal"
        )

        # Every acknowledged reading processed once, none turned into a dead letter.
        with svc.client(token="") as c:
            text = c.get("/metrics").text
        assert metric(text, "carbonstream_meter_readings_total") == burst_rows
        assert metric(text, "carbonstream_dead_letters_total") == 0

        # The product: each minute's `reading` is the register sent at its last second.
        ds = xr.open_zarr(tmp_path / "data" / "products.zarr", group="meters/interval")
        slot0 = (START - GRID_ORIGIN) // MINUTE
        minutes = max(s.next_batch for s in senders)  # a batch is one minute
        rows = {str(m): r for r, m in enumerate(ds["stream"].values)}
        got = ds["reading"].isel(time=slice(slot0, slot0 + minutes)).values
        for s in senders:
            last_k = np.arange(s.next_batch) * PER_BATCH + PER_BATCH - 1
            expected = [[s.value(i, int(k)) for k in last_k] for i in range(len(s.meters))]
            mine = got[[rows[m] for m in s.meters], : s.next_batch]
            np.testing.assert_allclose(mine, expected)

        svc.wait_for("healthy", lambda: True if _health(svc)[0] == 200 else None, timeout_s=30)
    finally:
        slow.unlink(missing_ok=True)
        code = svc.stop()
        assert code == 0, svc.log_tail()


def caught_up(svc: Service, timeout_s: float) -> None:
    svc.wait_for(
        "the flow to catch up",
        lambda: True if _health(svc)[1]["journal"]["lag_records"] == 0 else None,
        timeout_s=timeout_s,
    )


def backlog_bytes(data_dir: Path, partitions: list[dict[str, int]]) -> int:
    """Encoded size of the journal records the flow has not yet consumed."""
    total = 0
    for p in partitions:
        path = data_dir / "journal" / f"p{p['partition']:04d}.sqlite"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(length(payload)), 0) FROM records WHERE offset > ?",
                (p["consumed"],),
            ).fetchone()
        total += int(row[0])
    return total


def _health(svc: Service) -> tuple[int, Any]:
    """/health's status and body (503 is an answer here, not an error)."""
    with svc.client(token="") as c:
        r = c.get("/health")
        return r.status_code, r.json()
