"""CEMS data-acquisition units over Modbus as a connector of the ingest role.

Every poll becomes the HJ 212 real-time packet (CN=2011) a data logger reading the same unit
would have sent, journaled under the unit's site exactly as the HJ 212 server journals a
logger's packets (`connectors.hj212.packets.journal_frames`). Everything downstream (the CEMS
flow, cems/* products, quality signals, alerts) is therefore the same for both kinds of site.

Why real-time packets and not minute packets (2051): a logger sends real-time values every few
seconds and the site's minute values are the means of those (HJ 75, `minutes_from =
"realtime"`, the default), computed by the flow with the same validity, flag and over-range rules
as for loggers; averaging here as well would be a second, different implementation of the same
rule. The flow closes a minute when a sample of a later minute arrives, and an hour when a
minute of a later hour does, so a unit polled every `interval_s` (<= 60 s) gives each minute
its samples and closes it within one interval of its end.

Packet contents per poll:

- a reading: each mapped code with its value (`Rtd`) and flag (`Flag`) from the map's checks
  and state registers; a value that is not a number is sent as the flag D alone (no `Rtd`);
- a failed poll (the unit or its gateway did not answer): every mapped code with flag B
  (communication fault) and no value, as a logger reports an analyser it cannot reach. Minutes
  of a silent unit are thus invalid with a reason, and the hours still close.

DataTime has whole seconds and the flow drops a second packet with the same time as a resend,
so a poll landing in the same second as the unit's previous packet is stamped one second later
(it happens only when a retried poll ends just before the next slot).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from carbonstream.config import Config
from carbonstream.metrics import CEMS_MODBUS_UNITS, CEMS_MODBUS_VALUES, JOURNAL_APPENDED
from connectors.clock import NS_PER_S, Clock, RealClock, ScaledClock
from connectors.hj212.packets import data_frame, journal_frames
from connectors.hj212.settings import SiteSettings
from connectors.modbus.dau_poller import DauPoller, UnitPoll
from connectors.modbus.health import count_states, health_row
from storage.journal_backend import JournalBackend
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)

SOURCE = "cems_modbus"
STATUS_COMPONENT = "cems_modbus"


def _clock(config: Config) -> Clock:
    sim = config.cems.modbus.simulated_clock
    if sim is None:
        return RealClock()
    return ScaledClock(sim.start_ns, rate=sim.rate, anchor_ns=sim.anchor_ns)


class PollJournal:
    """Turns polls into journaled 2011 packets (one journal record each, durable on return)."""

    def __init__(
        self,
        journal: JournalBackend,
        sites: Mapping[str, SiteSettings],
        codes: Mapping[str, list[str]],
    ) -> None:
        self.journal = journal
        self.sites = sites
        self.codes = codes
        """Site -> the codes its unit maps (sent as B when a poll fails)."""
        self._last_s: dict[str, int] = {}

    def frame(self, poll: UnitPoll) -> tuple[int, bytes]:
        """(t_ns, frame) of a poll."""
        site = self.sites[poll.site]
        t_s = poll.t_ns // NS_PER_S
        last = self._last_s.get(poll.site)
        if last is not None and t_s <= last:
            t_s = last + 1
        self._last_s[poll.site] = t_s
        readings: dict[str, dict[str, float | str]] = {}
        if poll.reading is None:
            readings = {code: {"Flag": "B"} for code in self.codes[poll.site]}
        else:
            for code, (value, flag) in poll.reading.values.items():
                readings[code] = {"Flag": flag} if value is None else {"Rtd": value, "Flag": flag}
        t_ns = t_s * NS_PER_S
        return t_ns, data_frame(
            cn=2011,
            mn=site.mn,
            pw=site.password,
            t_ns=t_ns,
            offset_minutes=site.offset_minutes,
            readings=readings,
            answer=False,
        )

    async def __call__(self, poll: UnitPoll) -> None:
        site = self.sites[poll.site]
        _, frame = self.frame(poll)
        peer = f"modbus:{poll.gateway}/{poll.unit_id}"
        await asyncio.to_thread(
            journal_frames, self.journal, site.id, site.mn, [(2011, frame)], peer
        )
        JOURNAL_APPENDED.labels(SOURCE).inc()
        if poll.reading is None:
            CEMS_MODBUS_VALUES.labels(site.id, "no_response").inc(len(self.codes[poll.site]))
            return
        problems = poll.reading.problems
        ok = len(poll.reading.values) - len(problems)
        if ok:
            CEMS_MODBUS_VALUES.labels(site.id, "ok").inc(ok)
        for p in problems.values():
            CEMS_MODBUS_VALUES.labels(site.id, p).inc()


async def run_cems_modbus(config: Config, journal: JournalBackend) -> None:
    settings = config.cems.modbus
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # health reports failures, once
    sites = {s.id: s for s in config.cems.sites}
    codes = {u.site: u.codes for g in settings.gateways for u in g.units}
    poller = DauPoller(settings.gateways, _clock(config), PollJournal(journal, sites, codes))
    db = MetadataDB(config.storage.layout.metadata_db)
    publisher = asyncio.create_task(_publish_health(poller, db, settings.health_interval_s))
    log.info(
        "cems modbus: %d gateways, %d units",
        len(settings.gateways),
        sum(len(g.units) for g in settings.gateways),
    )
    try:
        await poller.run()
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        await asyncio.to_thread(publish_once, poller, db)
        db.close()


def publish_once(poller: DauPoller, db: MetadataDB) -> None:
    """Unit health into the device health table (next to the meters') and, per site, into the
    status the CEMS sites endpoint shows."""
    health = poller.health()
    db.put_device_health([health_row(h) for h in health])
    for state, n in count_states(health).items():
        CEMS_MODBUS_UNITS.labels(state).set(n)
    problems = poller.problems()
    units = {
        h.meter.removeprefix("cems:"): {
            "gateway": h.gateway,
            "unit_id": h.unit_id,
            "state": h.state,
            "last_good_ns": h.last_good_ns,
            "polls_ok": h.polls_ok,
            "consecutive_errors": h.consecutive_errors,
            "total_errors": h.total_errors,
            "missed": h.missed,
            "last_error": h.last_error,
            "bad_values": problems.get(h.meter.removeprefix("cems:"), {}),
        }
        for h in health
    }
    stats = poller.stats()
    db.put_status(
        STATUS_COMPONENT,
        "poller",
        {
            "units": units,
            "polls_ok": stats.polls_ok,
            "polls_failed": stats.polls_failed,
            "polls_missed": stats.polls_missed,
            "requests": stats.requests,
            "request_errors": stats.request_errors,
        },
    )


async def _publish_health(poller: DauPoller, db: MetadataDB, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(publish_once, poller, db)
        except Exception:  # a busy database must not stop the polling
            log.warning("cems modbus: publishing unit health failed", exc_info=True)
