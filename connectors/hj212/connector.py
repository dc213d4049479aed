"""The HJ 212 server (and the CEMS simulator feeding it) as connectors of the ingest role."""

from __future__ import annotations

import asyncio
import logging

from carbonstream.config import Config
from connectors.hj212.server import STATUS_COMPONENT, Hj212Server
from connectors.hj212.sites import effective_sites, site_rows
from storage.journal_backend import JournalBackend
from storage.metadata import MetadataDB
from storage.products import CEMS_AXIS

log = logging.getLogger(__name__)

BIND_RETRY_S = 5.0


def register_sites(config: Config) -> None:
    """Gives every variable of every site its row in the cems/* products (idempotent)."""
    rows: dict[str, dict[str, object]] = {}
    for site in effective_sites(config):
        rows |= site_rows(site)
    if not rows:
        return
    db = MetadataDB(config.storage.layout.metadata_db)
    try:
        db.register_streams(CEMS_AXIS, rows)
    finally:
        db.close()


async def start_hj212(config: Config, journal: JournalBackend) -> list[asyncio.Task[None]]:
    """The server's task (binding, serving, publishing its counters, running the simulated
    stacks once bound). A port in use is retried rather than ending the ingest role: the other
    connectors of the role keep running meanwhile."""
    if not config.cems.server.enabled:
        return []
    await asyncio.to_thread(register_sites, config)
    return [asyncio.create_task(_run(config, journal), name="hj212-server")]


async def _run(config: Config, journal: JournalBackend) -> None:
    settings = config.cems.server
    server = Hj212Server(settings, effective_sites(config), journal)
    while True:
        try:
            port = await server.start()
            break
        except OSError as exc:
            log.error(
                "hj212: cannot listen on %s:%d (%s); retrying in %.0f s",
                settings.host,
                settings.port,
                exc.strerror,
                BIND_RETRY_S,
            )
            await asyncio.sleep(BIND_RETRY_S)
    tasks = [asyncio.create_task(_publish_status(config, server), name="hj212-status")]
    sim = config.connectors.cems_simulator
    if sim.enabled and sim.count:
        from connectors.simulators.cems_stacks import run_simulator

        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host

        async def simulate() -> None:
            counts = await run_simulator(sim, host, port)
            log.info("cems simulator finished: %s", counts)

        tasks.append(asyncio.create_task(simulate(), name="cems-simulator"))
    try:
        await server.serve_forever()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _publish_status(config: Config, server: Hj212Server) -> None:
    db = MetadataDB(config.storage.layout.metadata_db)
    try:
        while True:
            await asyncio.sleep(config.cems.server.status_interval_s)
            try:
                await asyncio.to_thread(db.put_status, STATUS_COMPONENT, "server", server.status())
            except Exception as exc:  # a full or busy database: the counters go out next time
                log.warning("hj212: publishing the server status failed: %s", exc)
    finally:
        db.close()
