"""A full or read-only disk: the service stops acknowledging instead of acknowledging and dropping,
says why, survives, and loses nothing it acknowledged.

The real service runs with its whole data directory (journal, metadata, Zarr store, Bytewax
recovery, metrics) on a small filesystem of its own; a utility pushes meter readings over HTTP
and an HJ 212 data logger sends minute packets over TCP, both keeping and re-sending whatever was
not acknowledged, as real senders do. Then the disk fills up (a filler file takes most of it, the
senders' own data the rest), or goes read-only under the running service (ext4 with
errors=remount-ro, after a filesystem error: what a failing disk does). While the disk refuses:
every push answers 503 problem+json naming the reason, the logger gets no 9014 (so it re-sends),
/health answers 503 naming the disk, /metrics counts the refused writes, and no role process
dies (same pids: no crash loop). Once space returns, acknowledging resumes in the same processes,
and every acknowledged reading and packet is found in the products.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.conftest import free_port
from tests.e2e.service import Service
from tests.reliability.live import (
    MINUTE,
    LoggerSender,
    MeterSender,
    S,
    ext4,
    fill,
    fsck,
    metric,
    role_pids,
    tmpfs,
    trigger_fs_error,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root"),
]

METERS = [f"m{i:02d}" for i in range(20)]
MN, PASSWORD = "STACKA000001", "123456"
PUSH_START = 1_772_323_200 * S  # 2026-03-01T00:00Z
GRID_ORIGIN = 1_577_836_800 * S  # 2020-01-01T00:00Z, first period of meters/interval
REFUSED = "carbonstream_storage_refused_writes_total"

CONFIG = """
[storage]
data_dir = "{data_dir}"
# A reserve as in production (scaled to the small disks here): without one, senders re-sending at
# full rate fill the space the filler gave back before the flow can store what it owes, and the
# flow then waits on a disk full of its own backlog.
min_free_bytes = 16777216
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[flow]
stall_exit_s = 10
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[ec.simulator]
enabled = false
[[cems.sites]]
id = "stack-a"
mn = "STACKA000001"
password = "123456"
minutes_from = "minute_packets"
"""


def write_config(cwd: Path, data_dir: Path) -> Path:
    path = cwd / "carbonstream.toml"
    meters = "".join(f'[[streams.meters]]\nid = "{m}"\n' for m in METERS)
    path.write_text(CONFIG.replace("{data_dir}", str(data_dir)) + meters)
    return path


@contextmanager
def service(cwd: Path, data_dir: Path, hj212_port: int, port: int = 0) -> Iterator[Service]:
    svc = Service.start(
        cwd,
        port or free_port(),
        write_config(cwd, data_dir),
        env={"CARBONSTREAM_CEMS__SERVER__PORT": str(hj212_port)},
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/meters") or None, timeout_s=90)
        svc.wait_for(
            "three roles",
            lambda: role_pids(svc.proc.pid) if len(role_pids(svc.proc.pid)) == 3 else None,
        )
        yield svc
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


def assert_front_roles_kept(svc: Service, pids: dict[str, int]) -> None:
    """Ingest and API ride out the disk; the flow too, unless Bytewax's own snapshot (outside our
    reach) found the disk full, which kills its worker thread: then its watchdog exits and the
    supervisor restarts it from the last snapshot (the products are checked all the same)."""
    now = role_pids(svc.proc.pid)
    for role in ("ingest", "api"):
        assert now.get(role) == pids[role], f"{role} was restarted:\n" + svc.log_tail()


def senders(svc: Service, hj212_port: int, start_k: int = 0) -> tuple[MeterSender, LoggerSender]:
    # Packets of minutes a month ago: in the past, inside the year a stack's state is kept.
    logger_start = (time.time_ns() // MINUTE - 30 * 1440) * MINUTE
    meters = MeterSender(svc.base_url, svc.token("ingest"), METERS, PUSH_START)
    logger = LoggerSender("127.0.0.1", hj212_port, MN, PASSWORD, logger_start)
    return meters, logger


def wait_until(what: str, cond: object, timeout_s: float, svc: Service) -> None:
    assert callable(cond)
    svc.wait_for(what, lambda: True if cond() else None, timeout_s=timeout_s)


def health(svc: Service) -> tuple[int, dict[str, object]]:
    with svc.client(token="") as c:
        r = c.get("/health")
        return r.status_code, r.json()


def metrics_text(svc: Service) -> str:
    with svc.client(token="") as c:
        return c.get("/metrics").text


def assert_refusing(svc: Service, meters: MeterSender, logger: LoggerSender, reason: str) -> None:
    """What a sender and an operator see while the disk refuses writes."""
    refused_from = len(meters.refusals)
    unanswered_from = logger.unanswered
    wait_until("push refusals", lambda: len(meters.refusals) >= refused_from + 5, 30, svc)
    wait_until("unanswered packets", lambda: logger.unanswered >= unanswered_from + 2, 30, svc)
    for r in meters.refusals[refused_from:]:
        assert r.status == 503, r
        assert r.content_type == "application/problem+json"
        assert r.body["reason"] == f"storage_{reason}", r.body
        assert r.retry_after is not None
    acked_before = (len(meters.acked), len(logger.answered))
    time.sleep(3)  # still refusing: nothing is acknowledged while the disk refuses
    assert (len(meters.acked), len(logger.answered)) == acked_before

    status, body = health(svc)
    assert status == 503, body
    problems = body["problems"]
    assert isinstance(problems, list)
    assert f"storage {reason.replace('_', '-')}" in problems[0], problems
    text = metrics_text(svc)
    assert metric(text, REFUSED, component="api", reason=reason) > 0, text
    assert metric(text, REFUSED, component="hj212", reason=reason) > 0, text


def assert_products_hold(
    data_dir: Path, svc: Service, meters: MeterSender, logger: LoggerSender
) -> None:
    """Every acknowledged reading is the `reading` of its meter's minute; every acknowledged
    packet's CO2 average is its minute's value (once the flow has caught up)."""
    wait_until(
        "the flow to catch up",
        lambda: health(svc)[1]["journal"]["lag_records"] == 0,  # type: ignore[index]
        90,
        svc,
    )

    def meters_hold() -> bool:
        ds = xr.open_zarr(data_dir / "products.zarr", group="meters/interval")
        reading = ds["reading"]
        for m in METERS:
            mine = sorted((t, v) for (mm, t), v in meters.acked.items() if mm == m)
            slots = [(t - GRID_ORIGIN) // MINUTE for t, _ in mine]
            got = reading.sel(stream=m).isel(time=slots).values
            np.testing.assert_allclose(got, [v for _, v in mine], err_msg=f"meter {m}")
        return True

    def settled() -> bool:
        # Lag 0 is recorded when the journal reader snapshots, which can precede the Zarr flush
        # of that epoch by a moment: the last cells are given a few seconds to be stored.
        # Until that flush, a meter can also be missing from the product's rows (KeyError).
        try:
            return meters_hold()
        except (AssertionError, IndexError, KeyError):
            return False

    deadline = time.monotonic() + 15
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.5)
    meters_hold()  # raises what is still wrong

    # The CEMS step holds the newest minute of minute packets until a later one arrives (a split
    # packet's other half may follow), so the last packet sent is not in the product yet.
    times = sorted(logger.answered)[:-1]
    step = 600
    for i in range(0, len(times), step):
        chunk = times[i : i + step]
        rows = svc.get_json(
            "/v1/cems/stack-a/minutes",
            start=iso(chunk[0]),
            end=iso(chunk[-1] + MINUTE),
            code="a05001",
        )["minutes"]
        got = {r["minute_start"]: r["value"] for r in rows}
        for t in chunk:
            assert got.get(iso(t)) == pytest.approx(logger.answered[t]), iso(t)


def iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_full_disk_refuses_then_recovers_without_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hj212_port = free_port()
    with tmpfs(data, 128 << 20), service(tmp_path, data, hj212_port) as svc:
        pids = role_pids(svc.proc.pid)
        meters, logger = senders(svc, hj212_port)
        meters.start()
        logger.start()
        try:
            wait_until(
                "acknowledgements",
                lambda: meters.batches_acked >= 5 and len(logger.answered) >= 20,
                60,
                svc,
            )
            filler = fill(data, leave_bytes=1 << 20)  # the senders fill the rest
            assert_refusing(svc, meters, logger, "full")
            assert_front_roles_kept(svc, pids)

            filler.unlink()
            acked = (meters.batches_acked, len(logger.answered))
            wait_until(
                "acknowledgements again",
                lambda: (
                    meters.batches_acked > acked[0] + 3 and len(logger.answered) > acked[1] + 10
                ),
                60,
                svc,
            )
        finally:
            meters.stop()
            logger.stop()
        assert_front_roles_kept(svc, pids)
        assert_products_hold(data, svc, meters, logger)
        wait_until("healthy again", lambda: health(svc)[0] == 200, 90, svc)
        assert not meters.errors, meters.errors


def test_read_only_disk_refuses_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    """A filesystem error turns the disk read-only under the running service. It cannot come
    back read-write while mounted (the kernel keeps it read-only until it is checked), so the
    operator's way back is taken: stop, fsck, mount, start; the senders re-send what was not
    acknowledged, and everything acknowledged before and after is in the products."""
    data, image = tmp_path / "data", tmp_path / "disk.img"
    hj212_port, port = free_port(), free_port()
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    with ext4(data, image, 160 << 20), service(tmp_path / "before", data, hj212_port, port) as svc:
        pids = role_pids(svc.proc.pid)
        meters, logger = senders(svc, hj212_port)
        meters.start()
        logger.start()
        try:
            wait_until(
                "acknowledgements",
                lambda: meters.batches_acked >= 5 and len(logger.answered) >= 20,
                60,
                svc,
            )
            trigger_fs_error(data)
            assert_refusing(svc, meters, logger, "read_only")
            assert_front_roles_kept(svc, pids)
        finally:
            meters.stop()
            logger.stop()
    acked = (meters.batches_acked, len(logger.answered))

    fsck(image)
    with ext4(data, image, 160 << 20), service(tmp_path / "after", data, hj212_port, port) as svc:
        meters.start()
        logger.start()
        try:
            wait_until(
                "acknowledgements after the repair",
                lambda: (
                    meters.batches_acked > acked[0] + 3 and len(logger.answered) > acked[1] + 10
                ),
                60,
                svc,
            )
        finally:
            meters.stop()
            logger.stop()
        assert_products_hold(data, svc, meters, logger)
        assert not meters.errors, meters.errors
