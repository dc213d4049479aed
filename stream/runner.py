"""The flow role: runs the dataflow in this process with the configured workers and recovery."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from carbonstream.config import Config
from storage.metadata import MetadataDB
from stream.cluster import STATUS_CLUSTER, check_process_id, wait_for_peers
from stream.dataflow import build_dataflow
from stream.entity_alerts import EntityAlerts
from stream.rollup import RollupMaterializer, RollupStats
from stream.watchdog import start_watchdog

log = logging.getLogger(__name__)


def run_flow(config: Config, stop_at_end: bool = False, process_id: int | None = None) -> int:
    """Runs the dataflow (and the roll-up thread) until stopped; with `stop_at_end`, until the
    journal as it is now has been processed and every roll-up it caused is done.

    With `[flow.cluster]`, this is process `process_id` of the cluster (stream/cluster.py): it
    runs its share of the work, and only process 0 runs the roll-ups."""
    cluster = config.flow.cluster
    check_process_id(cluster, process_id)
    started_ns = time.time_ns()
    flow = build_dataflow(config, stop_at_end)
    r = config.recovery
    recovery = (
        RecoveryConfig(
            str(config.storage.layout.recovery_dir),
            backup_interval=timedelta(seconds=r.backup_interval_s),
        )
        if r.enabled
        else None
    )
    where: dict[str, Any] = {}
    if cluster is not None:
        where = {"process_id": process_id, "addresses": cluster.addresses}
    log.info(
        "dataflow: %s%d worker(s), %d journal partition(s), epoch %.1f s, recovery %s",
        f"process {process_id} of {cluster.processes}, " if cluster else "",
        config.flow.workers,
        config.journal.partitions,
        r.snapshot_interval_s,
        "on" if recovery else "off",
    )
    stop = threading.Event()
    if config.flow.stall_exit_s > 0 and recovery is not None:  # beats come from snapshots
        start_watchdog(config.flow.stall_exit_s, stop)
    rolls_up = config.rollups.enabled and not process_id  # one writer: process 0 or the only one
    materializer = RollupMaterializer(config) if rolls_up else None
    entity_alerts = EntityAlerts(config) if materializer is not None else None
    rollup_thread = None
    if materializer is not None and entity_alerts is not None:
        rollup_thread = threading.Thread(
            target=materializer.run_forever,
            args=(stop, config.rollups.interval_s, _judging(entity_alerts)),
            name="rollup",
            daemon=True,
        )
        rollup_thread.start()
    try:
        cli_main(
            flow,
            workers_per_process=config.flow.workers,
            epoch_interval=timedelta(seconds=r.snapshot_interval_s),
            recovery_config=recovery,
            **where,
        )
    finally:
        stop.set()
    if cluster is not None and stop_at_end:
        _finish_in_cluster(config, process_id or 0, started_ns)
    if stop_at_end and materializer is not None and rollup_thread is not None:
        rollup_thread.join()  # the one writer of the entity products finishes its cycle first
        while True:
            stats = materializer.run_once()
            if entity_alerts is not None:
                entity_alerts.evaluate(stats.closed_before_ns)
            if not stats.chunks:
                break
    return 0


def _finish_in_cluster(config: Config, process_id: int, started_ns: int) -> None:
    """Peers record that they finished; process 0 waits for them before its last roll-up, so
    it rolls up their final writes too."""
    cluster = config.flow.cluster
    assert cluster is not None
    db = MetadataDB(config.storage.layout.metadata_db)
    try:
        if process_id:
            db.put_status(STATUS_CLUSTER, str(process_id), {"finished_ns": time.time_ns()})
            return
        deadline = time.monotonic() + cluster.peer_wait_s
        while waiting := wait_for_peers(db.status(STATUS_CLUSTER), cluster.processes, started_ns):
            if time.monotonic() > deadline:
                log.warning("cluster: processes %s did not finish; rolling up anyway", waiting)
                break
            time.sleep(0.1)
    finally:
        db.close()


def _judging(alerts: EntityAlerts) -> Callable[[RollupStats], object]:
    return lambda stats: alerts.evaluate(stats.closed_before_ns)
