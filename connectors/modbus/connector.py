"""The Modbus poller as a connector of the ingest role.

Each gateway round's readings become one journal record per partition (the same
`meter_readings` kind as every meter input), and device health is published to the metadata
database for `/v1/meters/health`. A dead meter yields no reading at all, so its intervals stay
missing in the products: never a zero.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from functools import partial

import numpy as np

from carbonstream.config import Config
from carbonstream.metrics import JOURNAL_APPENDED, MODBUS_DEVICES, SAMPLES_INGESTED
from connectors.clock import Clock, RealClock, ScaledClock
from connectors.modbus.health import count_states, health_row, take_unpublished
from connectors.modbus.poller import FleetPoller, ReadingBatch
from connectors.storage_wait import until_stored
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.metadata import MetadataDB
from storage.products import METERS_AXIS
from storage.records import METER_READINGS, encode_meter_readings

log = logging.getLogger(__name__)

SOURCE = "modbus"


def _clock(config: Config) -> Clock:
    sim = config.connectors.modbus.simulated_clock
    if sim is None:
        return RealClock()
    return ScaledClock(sim.start_ns, rate=sim.rate, anchor_ns=sim.anchor_ns)


def register_devices(config: Config, db: MetadataDB) -> None:
    """Registers the polled meters; meters declared in [[streams.meters]] keep their attributes."""
    ids = [d.meter for g in config.connectors.modbus.gateways for d in g.devices]
    known = db.stream_ids(METERS_AXIS)
    new = {
        m: {"commodity": "electricity", "unit": "kWh", "source": SOURCE}
        for m in ids
        if m not in known
    }
    if new:
        db.register_streams(METERS_AXIS, new)


async def run_modbus(config: Config, journal: JournalBackend) -> None:
    settings = config.connectors.modbus
    # pymodbus logs every timeout with frame dumps; device health reports the same, once.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    db = MetadataDB(config.storage.layout.metadata_db)
    register_devices(config, db)

    async def on_batch(batch: ReadingBatch) -> None:
        if not batch.meters:
            return
        part = np.array([journal.partition_for(m) for m in batch.meters])
        meters = np.array(batch.meters, dtype=object)
        for p in np.unique(part):
            sel = np.flatnonzero(part == p)
            payload = encode_meter_readings(list(meters[sel]), batch.ts_ns[sel], batch.values[sel])
            entries = [JournalEntry(SOURCE, METER_READINGS, payload)]
            # A full disk holds the poller here (registers are cumulative: nothing is lost by
            # reading later) rather than dropping what was read.
            await until_stored(SOURCE, partial(journal.append, int(p), entries))
            JOURNAL_APPENDED.labels(SOURCE).inc()
        SAMPLES_INGESTED.labels(SOURCE).inc(len(batch.meters))

    poller = FleetPoller(settings.gateways, _clock(config), on_batch)
    publisher = asyncio.create_task(_publish_health(poller, db, settings.health_interval_s))
    log.info(
        "modbus: %d gateways, %d devices",
        len(settings.gateways),
        sum(len(g.devices) for g in settings.gateways),
    )
    try:
        await poller.run()
    finally:
        poller.stop()
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        await asyncio.to_thread(_publish_once, poller, db)
        db.close()


def _publish_once(poller: FleetPoller, db: MetadataDB) -> None:
    """The health of the devices that changed since the last publication, the device count
    per state and the poller's counters."""
    changed = take_unpublished(poller.trackers())
    try:
        db.put_device_health([health_row(t) for t in changed])
    except BaseException:
        for t in changed:
            t.unpublished = True
        raise
    for state, n in count_states(poller.trackers()).items():
        MODBUS_DEVICES.labels(state).set(n)
    db.put_status(SOURCE, "poller", asdict(poller.stats()))


async def _publish_health(poller: FleetPoller, db: MetadataDB, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(_publish_once, poller, db)
        except Exception:  # a busy or full database must not stop the polling
            log.warning("modbus: publishing device health failed", exc_info=True)
