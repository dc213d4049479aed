"""The flow role: runs the dataflow in this process with the configured workers and recovery."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from carbonstream.config import Config
from stream.dataflow import build_dataflow
from stream.entity_alerts import EntityAlerts
from stream.rollup import RollupMaterializer, RollupStats
from stream.watchdog import start_watchdog

log = logging.getLogger(__name__)


def run_flow(config: Config, stop_at_end: bool = False) -> int:
    """Runs the dataflow (and the roll-up thread) until stopped; with `stop_at_end`, until the
    journal as it is now has been processed and every roll-up it caused is done."""
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
    log.info(
        "dataflow: %d worker(s), %d journal partition(s), epoch %.1f s, recovery %s",
        config.flow.workers,
        config.journal.partitions,
        r.snapshot_interval_s,
        "on" if recovery else "off",
    )
    stop = threading.Event()
    if config.flow.stall_exit_s > 0 and recovery is not None:  # beats come from snapshots
        start_watchdog(config.flow.stall_exit_s, stop)
    materializer = RollupMaterializer(config) if config.rollups.enabled else None
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
        )
    finally:
        stop.set()
    if stop_at_end and materializer is not None and rollup_thread is not None:
        rollup_thread.join()  # the one writer of the entity products finishes its cycle first
        while True:
            stats = materializer.run_once()
            if entity_alerts is not None:
                entity_alerts.evaluate(stats.closed_before_ns)
            if not stats.chunks:
                break
    return 0


def _judging(alerts: EntityAlerts) -> Callable[[RollupStats], object]:
    return lambda stats: alerts.evaluate(stats.closed_before_ns)
