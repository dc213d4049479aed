"""The ingest role: runs the enabled connectors and the journal's housekeeping in one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from carbonstream.backends import open_journal
from carbonstream.config import Config
from connectors.delivery.webhooks import run_webhooks
from connectors.hj212.connector import start_hj212
from connectors.simulators.ec_towers import run_ec_simulator
from connectors.simulators.meter_fleet_connector import run_meter_simulator
from storage.alerts import AlertStore
from storage.errors import StorageUnavailable
from storage.journal_backend import JournalBackend

log = logging.getLogger(__name__)

TRIM_EVERY_S = 60.0


def run_ingest(config: Config) -> int:
    return asyncio.run(_main(config))


async def _main(config: Config) -> int:
    journal = open_journal(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(_trim_forever(journal, config), name="journal-trim")
    ]
    if config.connectors.meter_simulator.enabled:
        tasks.append(
            asyncio.create_task(run_meter_simulator(config, journal), name="meter-simulator")
        )
    if config.ec.simulator.enabled and config.ec.simulator.count:
        tasks.append(asyncio.create_task(run_ec_simulator(config, journal), name="ec-simulator"))
    if config.ec.drop_folder.enabled:
        from connectors.ec.drop_folder import run_drop_folder

        tasks.append(asyncio.create_task(run_drop_folder(config, journal), name="ec-drop-folder"))
    tasks.append(
        asyncio.create_task(
            run_webhooks(AlertStore(config.storage.layout.metadata_db)), name="webhooks"
        )
    )
    if config.alerts.mqtt.enabled:
        from connectors.delivery.mqtt import run_mqtt

        store = AlertStore(config.storage.layout.metadata_db)
        tasks.append(asyncio.create_task(run_mqtt(config.alerts.mqtt, store), name="mqtt"))
    if config.connectors.modbus.enabled:
        from connectors.modbus.connector import run_modbus

        tasks.append(asyncio.create_task(run_modbus(config, journal), name="modbus"))
    if config.cems.modbus.enabled and config.cems.modbus.gateways:
        from connectors.modbus.dau_connector import run_cems_modbus

        tasks.append(asyncio.create_task(run_cems_modbus(config, journal), name="cems-modbus"))
    tasks += await start_hj212(config, journal)
    stopper = asyncio.create_task(_wait(stop), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper and t.exception() is not None]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    journal.close()
    for t in failed:
        log.error("connector %s failed", t.get_name(), exc_info=t.exception())
    return 1 if failed else 0


async def _trim_forever(journal: JournalBackend, config: Config) -> None:
    retention_ns = int(config.journal.retention_s * 1e9)
    window_ns = int(config.journal.dedupe_window_s * 1e9)
    while True:
        await asyncio.sleep(TRIM_EVERY_S)
        try:
            deleted = await asyncio.to_thread(journal.trim, retention_ns, window_ns)
        except StorageUnavailable as exc:  # deleting needs room in the WAL too; next time
            log.warning("journal: trimming failed: %s", exc)
            continue
        if deleted:
            log.info("journal: trimmed %d consumed records", deleted)


async def _wait(event: asyncio.Event) -> None:
    await event.wait()
