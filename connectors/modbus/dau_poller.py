"""Async poller of CEMS data-acquisition units: one poll per unit per interval, each handed on.

Unlike the meter fleet poller (thousands of meters, batched per round), a site has one unit and
every poll matters to the minute it falls in, so each poll's outcome goes to `on_poll` at once
(the connector journals it as one real-time packet). Per gateway, `connections` TCP connections
(connectors/modbus/poller.py's `Connection`: timeouts, reconnection with back-off) are shared by
its units, one request in flight on each.

Schedule: unit u polls at  k x interval + phase  (epoch-aligned, injected clock). A failed
attempt is retried after backoff_s, 2 x backoff_s, ... up to `retries` times within the slot's
window [slot, slot + interval). Slots whose whole window passed while an earlier poll was still
running are missed (counted), not caught up: a late sample would be one the minute has no use
for.

Outcomes: a reading (`DauReading`, stamped with the clock when the response arrived) or a failed
poll (every attempt failed; stamped when it gave up, with the last error). Health is that of the
meter poller (connectors/modbus/health.py): `dead_after` failed polls in a row make the unit
dead, and a dead unit is probed every `dead_probe_s` with one attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from connectors.clock import NS_PER_S, Clock
from connectors.modbus.config import RegisterFunction
from connectors.modbus.dau_config import DauGatewaySettings, DauSettings
from connectors.modbus.dau_map import DauMap, DauReading
from connectors.modbus.errors import DeviceException, GatewayUnavailable, NoResponse, ReadingError
from connectors.modbus.health import DeviceHealth, HealthTracker
from connectors.modbus.poller import Connection, PollStats, backoff_s, cancel_and_wait
from connectors.modbus.registers import RegisterReader

log = logging.getLogger(__name__)

_EXPECTED_ERRORS = (ReadingError, DeviceException, NoResponse, GatewayUnavailable, OSError)


def health_id(site: str) -> str:
    """The unit's name in device health (the meters' table, shared): its site, marked."""
    return f"cems:{site}"


@dataclass(frozen=True)
class UnitPoll:
    """The outcome of one poll of one unit."""

    site: str
    gateway: str
    unit_id: int
    t_ns: int
    """Clock time the response arrived (reading) or the poll gave up (failure)."""
    reading: DauReading | None
    """None: every attempt failed (see `error`)."""
    error: str | None = None


OnPoll = Callable[[UnitPoll], Awaitable[None]]


def dau_phase_ns(unit: DauSettings) -> int:
    interval_ns = round(unit.interval_s * NS_PER_S)
    if unit.phase_s is not None:
        return round(unit.phase_s * NS_PER_S) % interval_ns
    digest = hashlib.blake2b(unit.site.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % interval_ns


class _Unit:
    def __init__(self, settings: DauSettings, gateway: DauGatewaySettings) -> None:
        self.settings = settings
        self.map = DauMap(settings)
        self.health = HealthTracker(
            health_id(settings.site), gateway.label, settings.unit_id, gateway.dead_after
        )
        self.interval_ns = round(settings.interval_s * NS_PER_S)
        self.phase_ns = dau_phase_ns(settings)
        self.problems: dict[str, int] = {}
        """Bad values since start, by problem (not_a_number, above_range, ...)."""


class DauGatewayPoller:
    """Polls the units of one gateway until cancelled or until `on_poll` raises."""

    def __init__(self, settings: DauGatewaySettings, clock: Clock, on_poll: OnPoll) -> None:
        self.settings = settings
        self.name = settings.label
        self.clock = clock
        self.on_poll = on_poll
        self.stats = PollStats()
        self.units = [_Unit(u, settings) for u in settings.units]
        self._free: asyncio.Queue[Connection] = asyncio.Queue()

    def health(self) -> list[DeviceHealth]:
        return [u.health.snapshot() for u in self.units]

    async def run(self) -> None:
        conns = [
            Connection(self.settings, self.clock, self.stats)
            for _ in range(self.settings.connections)
        ]
        for c in conns:
            self._free.put_nowait(c)
        tasks = [
            asyncio.create_task(
                self._poll_forever(u), name=f"dau {self.name} unit {u.settings.unit_id}"
            )
            for u in self.units
        ]
        try:
            if not tasks:  # a gateway without units idles: returning would end the ingest role
                await asyncio.Event().wait()
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
            raise RuntimeError(f"dau {self.name}: polling ended unexpectedly")
        finally:
            await cancel_and_wait(tasks)
            for c in conns:
                c.close()

    async def _poll_forever(self, unit: _Unit) -> None:
        clock = self.clock
        now = clock.now_ns()
        slot = -((now - unit.phase_ns) // -unit.interval_ns)  # first slot at/after now
        while True:
            slot_ns = slot * unit.interval_ns + unit.phase_ns
            await clock.sleep_until(slot_ns)
            poll = await self._poll(unit, slot_ns + unit.interval_ns)
            await self.on_poll(poll)
            now = clock.now_ns()
            if unit.health.state == "dead":
                probe_ns = now + round(self.settings.dead_probe_s * NS_PER_S)
                nxt = max(slot + 1, -((probe_ns - unit.phase_ns) // -unit.interval_ns))
                self.stats.polls_skipped_dead += nxt - slot - 1
            else:
                # The slot whose window holds `now` can still be served; earlier ones are missed.
                nxt = max(slot + 1, (now - unit.phase_ns) // unit.interval_ns)
                if nxt > slot + 1:
                    self.stats.polls_missed += nxt - slot - 1
                    unit.health.poll_missed(nxt - slot - 1)
            slot = nxt

    async def _poll(self, unit: _Unit, deadline_ns: int) -> UnitPoll:
        s, clock, uid = self.settings, self.clock, unit.settings.unit_id
        probe = unit.health.state == "dead"
        attempts, error, now = 0, "", clock.now_ns()
        while True:
            attempts += 1
            conn = await self._free.get()
            try:
                reading = await unit.map.read(_reader(conn, uid))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, _EXPECTED_ERRORS):
                    log.exception("dau %s unit %d: unexpected error", self.name, uid)
                error = str(exc) or type(exc).__name__
                now = clock.now_ns()
                unit.health.request_failed(now, error)
                self.stats.request_errors += 1
            else:
                t_ns = conn.arrival_ns
                n_valid = sum(1 for v, f in reading.values.values() if v is not None and f == "N")
                unit.health.poll_ok(t_ns, float(n_valid))
                self.stats.polls_ok += 1
                self.stats.readings += len(reading.values)
                for p in reading.problems.values():
                    unit.problems[p] = unit.problems.get(p, 0) + 1
                return UnitPoll(unit.settings.site, self.name, uid, t_ns, reading)
            finally:
                self._free.put_nowait(conn)
            if not probe and attempts <= s.retries:
                due = now + round(backoff_s(attempts, s.backoff_s, s.backoff_max_s) * NS_PER_S)
                if due < deadline_ns:
                    self.stats.retries += 1
                    await clock.sleep_until(due)
                    continue
            before = unit.health.state
            unit.health.poll_failed()
            self.stats.polls_failed += 1
            if unit.health.state == "dead" and before != "dead":
                log.warning(
                    "dau %s unit %d (%s): dead (%s)", self.name, uid, unit.settings.site, error
                )
            return UnitPoll(unit.settings.site, self.name, uid, clock.now_ns(), None, error)


def _reader(conn: Connection, unit_id: int) -> RegisterReader:
    async def read(function: RegisterFunction, address: int, count: int) -> list[int]:
        return await conn.read(unit_id, function, address, count)

    return read


class DauPoller:
    """Every unit of every gateway; `health()`, `stats()` and `problems()` at any time."""

    def __init__(
        self, gateways: Sequence[DauGatewaySettings], clock: Clock, on_poll: OnPoll
    ) -> None:
        self.gateways = [DauGatewayPoller(g, clock, on_poll) for g in gateways]

    async def run(self) -> None:
        tasks = [asyncio.create_task(g.run(), name=f"dau {g.name}") for g in self.gateways]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            await cancel_and_wait(tasks)

    def health(self) -> list[DeviceHealth]:
        return [h for g in self.gateways for h in g.health()]

    def stats(self) -> PollStats:
        total = PollStats()
        for g in self.gateways:
            total = total + g.stats
        return total

    def problems(self) -> dict[str, dict[str, int]]:
        """Site -> bad values since start by problem."""
        return {u.settings.site: dict(u.problems) for g in self.gateways for u in g.units}
