"""Preparing a data directory: idempotent, safe to run from every role at start.

Creates the directories, the journal partitions (refusing a changed partition count), the metadata
schema, the seed emission-factor table, the recovery partitions, and registers the streams the
configuration declares (in sorted order, so their rows are the same on every machine).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from carbonstream.backends import open_journal
from carbonstream.config import Config, EntitySettings, MeterStream
from connectors.ec.settings import EcSiteSettings
from storage.alerts import AlertStore
from storage.factors import FactorTable
from storage.metadata import MetadataDB
from storage.products import EC_AXIS, ENTITIES_AXIS, METERS_AXIS


def meter_attrs(m: MeterStream) -> dict[str, Any]:
    return m.model_dump(exclude={"id"})


def entity_attrs(e: EntitySettings) -> dict[str, Any]:
    return e.model_dump(exclude={"id"})


def ec_site_attrs(s: EcSiteSettings) -> dict[str, Any]:
    return {
        "averaging_min": s.averaging_min,
        "sampling_hz": s.sampling_hz,
        "latitude_deg": s.latitude_deg,
        "longitude_deg": s.longitude_deg,
        "sonic": s.sonic.model,
        "gas": s.gas.model,
    }


def prepare_data_dir(config: Config) -> None:
    layout = config.storage.layout
    layout.create()
    open_journal(config).close()  # creates the partitions (or topic); refuses another count
    db = MetadataDB(layout.metadata_db)
    try:
        if config.entities:
            db.register_streams(ENTITIES_AXIS, {e.id: entity_attrs(e) for e in config.entities})
        if config.streams.meters:
            db.register_streams(METERS_AXIS, {m.id: meter_attrs(m) for m in config.streams.meters})
        sites = config.ec.all_sites()
        if sites:
            db.register_streams(EC_AXIS, {s.id: ec_site_attrs(s) for s in sites})
    finally:
        db.close()
    alerts = AlertStore(layout.metadata_db)
    try:
        alerts.sync_config_rules(config.alerts.rules)
    finally:
        alerts.close()
    factors = FactorTable(layout.metadata_db)
    try:
        factors.ensure_seeded()
    finally:
        factors.close()
    if config.recovery.enabled:
        _init_recovery(config)


def _init_recovery(config: Config) -> None:
    from bytewax.recovery import init_db_dir

    directory = config.storage.layout.recovery_dir
    if directory.exists():
        return
    # Every role prepares the data directory at start, at the same moment under `run`: each
    # builds its own copy and the first rename wins (two in one directory collide in SQLite).
    tmp = directory.with_name(f"{directory.name}.init-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    init_db_dir(tmp, config.recovery.partitions)
    try:
        tmp.rename(directory)
    except OSError:
        if not directory.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process made it first
