"""Runs the simulated meter fleet as a connector: every interval, each meter's reading is appended
to the journal partition its id routes to (one record per partition per interval)."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

import numpy as np

from carbonstream.config import Config
from carbonstream.metrics import JOURNAL_APPENDED, SAMPLES_INGESTED
from connectors.simulators.meter_fleet import MeterFleet, demo_entities
from connectors.storage_wait import until_stored
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.metadata import MetadataDB
from storage.products import ENTITIES_AXIS, METERS_AXIS
from storage.records import METER_READINGS, encode_meter_readings

log = logging.getLogger(__name__)

SOURCE = "meter-simulator"


async def run_meter_simulator(config: Config, journal: JournalBackend) -> None:
    sim = config.connectors.meter_simulator
    fleet = MeterFleet.build(sim.count, sim.id_prefix, sim.mean_power_kw, sim.interval_s, sim.seed)
    attrs = {"commodity": "electricity", "unit": "kWh", "region": sim.region, "basis": "location"}
    meters: dict[str, dict[str, object]] = {m: dict(attrs) for m in fleet.ids}
    db = MetadataDB(config.storage.layout.metadata_db)
    try:
        if sim.demo_entities:
            entities, meter_entity = demo_entities(fleet.ids)
            db.register_streams(ENTITIES_AXIS, entities)
            for m, e in meter_entity.items():
                meters[m]["entity"] = e
        db.register_streams(METERS_AXIS, meters)
    finally:
        db.close()
    partition = np.array([journal.partition_for(m) for m in fleet.ids])
    groups = [np.flatnonzero(partition == p) for p in range(journal.partitions)]
    ids = np.array(fleet.ids, dtype=object)
    log.info("meter simulator: %d meters every %.1f s", len(fleet.ids), sim.interval_s)
    # Intervals are aligned to the interval grid, so a restart continues the same schedule. The
    # first batch is the interval that just ended: its readings are all in the past already.
    tick = (np.floor(time.time() / sim.interval_s) - 1) * sim.interval_s
    while True:
        ts_ns, kwh = fleet.readings_at(tick)
        # Only readings whose time has come: the fleet never reports the future.
        due_at = (ts_ns.max() / 1e9) - time.time()
        if due_at > 0:
            await asyncio.sleep(due_at)
        for p, sel in enumerate(groups):
            if sel.size == 0:
                continue
            payload = encode_meter_readings(list(ids[sel]), ts_ns[sel], kwh[sel])
            entries = [JournalEntry(SOURCE, METER_READINGS, payload)]
            # A full disk: keep the readings and retry, like a gateway with a buffer.
            await until_stored(SOURCE, partial(journal.append, p, entries))
            JOURNAL_APPENDED.labels(SOURCE).inc()
            SAMPLES_INGESTED.labels(SOURCE).inc(int(sel.size))
        tick += sim.interval_s
