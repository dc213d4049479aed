"""Async Modbus TCP fleet poller: many gateways, many devices each, one batch per gateway round.

Schedule. Device d polls at slots  k x interval + phase  (epoch-aligned, in the injected clock's
time); its phase is a stable hash of the meter id unless configured, so 5,000 meters at 10 s
ask ~500 times a second instead of 5,000 times at each 10 s boundary. Slot k may be served
any time in its window [slot, slot + interval): a late start is fine, a window that passes
before any attempt could start is a *missed* poll (counted per device and per gateway). A device
has one poll at a time; when it finishes, the next one is the earliest slot whose window is
still open.

Per gateway: `connections` TCP connections, each a worker with one request in flight, take due
polls from a shared queue, so a gateway never sees more than `connections` concurrent requests.
A failed attempt (timeout, Modbus exception, unusable value, no connection) is retried after
backoff_s, 2 x backoff_s, ... (at most backoff_max_s), up to `retries` times and only within the
poll's window; the connection is free for other devices meanwhile. A lost connection is
re-opened on demand, with the same exponential back-off between failed connection attempts
(polls that need it in between fail fast with "not connected" instead of waiting).

Health: see connectors/modbus/health.py (ok / degraded / dead). A failed poll never produces a
reading; a dead device is probed every dead_probe_s with one attempt.

Timestamps. A reading is stamped with the injected clock when its response arrived (when the
awaiting coroutine resumed). The device sampled the register somewhere between the request
and the response; the arrival time is the upper bound, is never in the future, keeps each
meter's readings in order, and is off by at most one round trip (about a millisecond on a LAN,
tens of ms behind a serial gateway) -- far below the 0.01 kWh register resolution at any
realistic load and the minutes of the products' grid. A midpoint would assume symmetric
latency, which gateways that queue requests for their serial bus do not have.

Output. Time is cut in rounds of `batch_interval_s` (default: the shortest device interval;
aligned to the clock's epoch). Each gateway hands the readings of the polls scheduled in a
round to `on_batch` as one `ReadingBatch`, once all those polls have finished: normally right
at the round's end, later by at most a poll interval (+ timeout) if one is still retrying.
With interval = round, a meter appears at most once per batch. A round without readings gives
no batch. An exception from `on_batch` stops the poller: `run()` raises it, and that batch
was not acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from connectors.clock import NS_PER_S, Clock
from connectors.modbus.config import (
    DeviceSettings,
    GatewayLinkSettings,
    GatewaySettings,
    RegisterFunction,
)
from connectors.modbus.errors import (
    DeviceException,
    GatewayUnavailable,
    NoResponse,
    ReadingError,
)
from connectors.modbus.health import DeviceHealth, HealthTracker
from connectors.modbus.registers import MeterMap, meter_map

log = logging.getLogger(__name__)

DROP_AFTER_TIMEOUTS = 3
"""A connection with this many unanswered requests in a row is closed and re-opened (a
half-open TCP connection looks exactly like silent devices)."""

_EXPECTED_ERRORS = (ReadingError, DeviceException, NoResponse, GatewayUnavailable, OSError)


@dataclass(frozen=True)
class ReadingBatch:
    """Readings of one gateway's poll round: meter i read values[i] at ts_ns[i]."""

    meters: list[str]
    ts_ns: npt.NDArray[np.int64]
    """UTC epoch nanoseconds (the clock when the response arrived), in arrival order."""
    values: npt.NDArray[np.float64]
    """Register values in the map's unit (kWh for the built-in maps), as read: cumulative,
    wraps and meter replacements included."""
    gateway: str = ""
    round_start_ns: int = 0
    """Start of the round: the readings are of the polls scheduled in
    [round_start_ns, round_start_ns + batch interval)."""

    def __len__(self) -> int:
        return len(self.meters)


@dataclass
class PollStats:
    """Counters since start (of one gateway, or summed over the fleet)."""

    polls_ok: int = 0
    polls_failed: int = 0
    """Polls whose every attempt failed."""
    polls_missed: int = 0
    """Polls that could not be attempted within their interval (short of capacity)."""
    polls_skipped_dead: int = 0
    """Slots of dead devices left out between probes (by design; not missed)."""
    requests: int = 0
    request_errors: int = 0
    """Failed attempts: timeouts, exception responses, unusable values, no connection."""
    retries: int = 0
    connects: int = 0
    connect_failures: int = 0
    batches: int = 0
    readings: int = 0

    @property
    def polls_done(self) -> int:
        return self.polls_ok + self.polls_failed

    @property
    def missed_fraction(self) -> float:
        """Missed polls over scheduled polls (done + missed); 0 before any."""
        scheduled = self.polls_done + self.polls_missed
        return self.polls_missed / scheduled if scheduled else 0.0

    def __add__(self, other: PollStats) -> PollStats:
        return PollStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


OnBatch = Callable[[ReadingBatch], Awaitable[None]]


def poll_phase_ns(device: DeviceSettings) -> int:
    """Offset of the device's polls within its interval: configured, or a stable hash of the
    meter id (the same in every process and run)."""
    interval_ns = round(device.interval_s * NS_PER_S)
    if device.phase_s is not None:
        return round(device.phase_s * NS_PER_S) % interval_ns
    digest = hashlib.blake2b(device.meter.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % interval_ns


def backoff_s(n: int, base_s: float, max_s: float) -> float:
    """Wait before retry (or reconnection) number n >= 1: base, 2 base, 4 base, ... <= max."""
    return float(min(base_s * 2.0 ** (n - 1), max_s))


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancels the tasks and waits until they are all done, cancelling again if need be:
    in Python 3.11, `asyncio.wait_for` (which pymodbus awaits responses with) swallows a
    cancellation that coincides with the awaited response, and the task would live on."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the caller has already seen the one that matters


class Connection:
    """One TCP connection to a gateway, re-opened on demand with back-off."""

    def __init__(self, gw: GatewayLinkSettings, clock: Clock, stats: PollStats) -> None:
        self._gw = gw
        self._clock = clock
        self._stats = stats
        self._client: AsyncModbusTcpClient | None = None
        self._connect_failures = 0
        self._next_connect_ns = 0
        self._last_connect_error = ""
        self._timeouts = 0
        self.arrival_ns = 0
        """Clock time at which the last response arrived."""

    async def _connected(self) -> AsyncModbusTcpClient:
        client = self._client
        if client is not None and client.connected:
            return client
        self.close()
        gw, now = self._gw, self._clock.now_ns()
        if now < self._next_connect_ns:
            wait = (self._next_connect_ns - now) / NS_PER_S
            raise GatewayUnavailable(
                f"{self._last_connect_error}; next connection attempt in {wait:.1f} s"
            )
        client = AsyncModbusTcpClient(
            gw.host,
            port=gw.port,
            timeout=self._clock.real_delay(gw.timeout_s),
            retries=0,
            reconnect_delay=0,  # reconnection is ours, with our back-off
        )
        client.set_max_no_responses(1 << 30)  # and so is dropping a silent connection
        self._stats.connects += 1
        if not await client.connect():
            client.close()
            self._connect_failures += 1
            self._stats.connect_failures += 1
            delay = backoff_s(self._connect_failures, gw.backoff_s, gw.backoff_max_s)
            self._next_connect_ns = self._clock.now_ns() + round(delay * NS_PER_S)
            self._last_connect_error = f"cannot connect to {gw.host}:{gw.port}"
            raise GatewayUnavailable(self._last_connect_error)
        self._connect_failures = 0
        self._timeouts = 0
        self._client = client
        return client

    async def read(
        self, unit: int, function: RegisterFunction, address: int, count: int
    ) -> list[int]:
        client = await self._connected()
        self._stats.requests += 1
        call = (
            client.read_holding_registers if function == "holding" else client.read_input_registers
        )
        # pymodbus enforces the timeout; this guard only catches a hang of the library itself.
        guard_s = 2 * self._clock.real_delay(self._gw.timeout_s) + 1.0
        try:
            async with asyncio.timeout(guard_s):
                response = await call(address, count=count, device_id=unit)
        except (ModbusIOException, TimeoutError) as exc:
            self._timeouts += 1
            if self._timeouts >= DROP_AFTER_TIMEOUTS:
                self.close()
            text = str(exc)
            if isinstance(exc, TimeoutError) or "No response" in text:
                text = f"no response within {self._gw.timeout_s:g} s"
            raise NoResponse(f"unit {unit}: {text}") from None
        except ConnectionException:
            self.close()
            raise GatewayUnavailable(f"connection to {self._gw.label} lost") from None
        self.arrival_ns = self._clock.now_ns()
        self._timeouts = 0
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise DeviceException(code, int(response.function_code) & 0x7F)
        return list(response.registers)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass(eq=False)
class _Device:
    settings: DeviceSettings
    map: MeterMap
    health: HealthTracker
    interval_ns: int
    phase_ns: int
    slot: int = 0
    """Index of the slot being polled (or waiting to be)."""

    @property
    def meter(self) -> str:
        return self.settings.meter


@dataclass(eq=False)
class _Job:
    """A device's current poll: its slot, attempted until it succeeds, fails or runs out of
    window. A device has one poll at a time, so each device has one job, reused for every poll:
    the schedule and the workers' queue hold its number (`number`), not an object per poll.
    (50,000 meters made 100,000 objects a minute that lived a whole interval, were promoted and
    set off full garbage collections of the ingest role's heap.)"""

    device: _Device
    number: int
    """Index of the device (and of this job) in the gateway's lists."""
    slot_ns: int = 0
    deadline_ns: int = 0
    probe: bool = False
    """A dead device's probe: one attempt, no retries."""
    attempts: int = 0


Outcome = Literal["ok", "failed", "missed"]


class GatewayPoller:
    """Polls the devices of one gateway (see the module docstring)."""

    def __init__(self, settings: GatewaySettings, clock: Clock, on_batch: OnBatch) -> None:
        self.settings = settings
        self.name = settings.label
        self.clock = clock
        self.on_batch = on_batch
        self.stats = PollStats()
        self.devices = [
            _Device(
                settings=d,
                map=meter_map(d),
                health=HealthTracker(d.meter, self.name, d.unit_id, settings.dead_after),
                interval_ns=round(d.interval_s * NS_PER_S),
                phase_ns=poll_phase_ns(d),
            )
            for d in settings.devices
        ]
        round_s = settings.batch_interval_s or min(
            (d.interval_s for d in settings.devices), default=10.0
        )
        self.round_ns = round(round_s * NS_PER_S)
        self._jobs = [_Job(dev, number) for number, dev in enumerate(self.devices)]
        self._heap: list[tuple[int, int]] = []
        """(due time, job number): tuples of ints, which the garbage collector does not track."""
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        """Numbers of the jobs that are due."""
        self._wake = asyncio.Event()
        self._rounds: dict[int, _Round] = {}
        """Readings by round index (slot_ns // round_ns) of the poll that produced them."""
        self._next_round = 0
        """Index of the first round not handed on yet."""
        self._unfinished: dict[int, int] = {}
        """Round index -> devices whose current (unfinished) poll is scheduled in it."""
        self._progress = asyncio.Event()
        """Set when a round's last unfinished poll finishes."""
        self._handing_on: asyncio.Future[None] | None = None
        """The on_batch call in progress: a stop lets it finish (never half a hand-on)."""

    def health(self) -> list[DeviceHealth]:
        return [d.health.snapshot() for d in self.devices]

    async def run(self, stop: asyncio.Event) -> None:
        """Polls until `stop` is set, then hands on the last partial round and returns."""
        now = self.clock.now_ns()
        for job in self._jobs:
            dev = job.device
            dev.slot = -((now - dev.phase_ns) // -dev.interval_ns)  # first slot at/after now
            self._schedule(job, probe=False, now_ns=now)
        tasks = [
            asyncio.create_task(self._dispatch(), name=f"modbus {self.name} dispatch"),
            asyncio.create_task(self._hand_on_rounds(), name=f"modbus {self.name} rounds"),
        ]
        if self.devices:
            tasks += [
                asyncio.create_task(self._worker(), name=f"modbus {self.name} connection {i}")
                for i in range(self.settings.connections)
            ]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper:
                    task.result()
                    raise RuntimeError(f"{task.get_name()} ended unexpectedly")
        finally:
            await cancel_and_wait([stopper, *tasks])
            if self._handing_on is not None:
                await self._handing_on
        for index in sorted(self._rounds):  # what the last rounds have so far
            await self._hand_on(index)

    # -- scheduling ---------------------------------------------------------------------------

    def _push(self, due_ns: int, job: _Job) -> None:
        if not self._heap or due_ns < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (due_ns, job.number))

    def _schedule(self, job: _Job, probe: bool, now_ns: int) -> None:
        """Makes `job` the poll of its device's current slot."""
        dev = job.device
        slot_ns = dev.slot * dev.interval_ns + dev.phase_ns
        job.slot_ns = slot_ns
        job.deadline_ns = slot_ns + dev.interval_ns
        job.probe = probe
        job.attempts = 0
        index = slot_ns // self.round_ns
        self._unfinished[index] = self._unfinished.get(index, 0) + 1
        self._push(max(slot_ns, now_ns), job)

    async def _dispatch(self) -> None:
        """Moves polls that are due from the time-ordered heap to the workers' queue."""
        heap = self._heap
        while True:
            now = self.clock.now_ns()
            while heap and heap[0][0] <= now:
                self._queue.put_nowait(heapq.heappop(heap)[1])
            self._wake.clear()
            if not heap:
                await self._wake.wait()
                continue
            delay = self.clock.real_delay((heap[0][0] - now) / NS_PER_S)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _finish(self, job: _Job, outcome: Outcome) -> None:
        """Books the poll's outcome and schedules the device's next one."""
        dev, st = job.device, self.stats
        index = job.slot_ns // self.round_ns
        self._unfinished[index] -= 1
        if not self._unfinished[index]:
            del self._unfinished[index]
            self._progress.set()
        before = dev.health.state
        if outcome == "ok":
            st.polls_ok += 1
        elif outcome == "failed":
            st.polls_failed += 1
            dev.health.poll_failed()
        else:
            st.polls_missed += 1
            dev.health.poll_missed()
        if dev.health.state != before and (dev.health.state == "dead" or before == "dead"):
            log.warning(
                "modbus %s unit %d (%s): %s -> %s%s",
                self.name,
                dev.settings.unit_id,
                dev.meter,
                before,
                dev.health.state,
                f" ({dev.health.last_error})" if dev.health.state == "dead" else "",
            )
        now = self.clock.now_ns()
        next_slot = dev.slot + 1
        if dev.health.state == "dead":
            probe_ns = now + round(self.settings.dead_probe_s * NS_PER_S)
            slot = max(next_slot, -((probe_ns - dev.phase_ns) // -dev.interval_ns))
            st.polls_skipped_dead += slot - next_slot
        else:
            # Slots whose whole window has passed are missed; the one holding `now` is not.
            slot = max(next_slot, (now - dev.phase_ns) // dev.interval_ns)
            if slot > next_slot:
                st.polls_missed += slot - next_slot
                dev.health.poll_missed(slot - next_slot)
        dev.slot = slot
        self._schedule(job, probe=dev.health.state == "dead", now_ns=now)

    # -- polling ------------------------------------------------------------------------------

    async def _worker(self) -> None:
        conn = Connection(self.settings, self.clock, self.stats)
        try:
            while True:
                number = await self._queue.get()
                await self._attempt(self._jobs[number], conn)
        finally:
            conn.close()

    async def _attempt(self, job: _Job, conn: Connection) -> None:
        dev, clock = job.device, self.clock
        if clock.now_ns() >= job.deadline_ns:
            # Out of window: never started -> missed; a retry that waited too long -> failed.
            self._finish(job, "failed" if job.attempts else "missed")
            return
        job.attempts += 1
        unit = dev.settings.unit_id

        async def read(function: RegisterFunction, address: int, count: int) -> list[int]:
            return await conn.read(unit, function, address, count)

        try:
            value = await dev.map.read(read)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, _EXPECTED_ERRORS):
                log.exception(
                    "modbus %s unit %d (%s): unexpected error", self.name, unit, dev.meter
                )
            now = clock.now_ns()
            dev.health.request_failed(now, str(exc) or type(exc).__name__)
            self.stats.request_errors += 1
            s = self.settings
            if not job.probe and job.attempts <= s.retries:
                due = now + round(backoff_s(job.attempts, s.backoff_s, s.backoff_max_s) * NS_PER_S)
                if due < job.deadline_ns:
                    self.stats.retries += 1
                    self._push(due, job)
                    return
            self._finish(job, "failed")
            return
        ts = conn.arrival_ns
        index = max(job.slot_ns // self.round_ns, self._next_round)
        self._rounds.setdefault(index, _Round()).add(dev.meter, ts, value)
        dev.health.poll_ok(ts, value)
        self._finish(job, "ok")

    # -- output -------------------------------------------------------------------------------

    async def _hand_on_rounds(self) -> None:
        """Hands on each round's readings once every poll scheduled in it has finished."""
        self._next_round = self.clock.now_ns() // self.round_ns
        while True:
            end_ns = (self._next_round + 1) * self.round_ns
            await self.clock.sleep_until(end_ns)
            while (
                min(self._unfinished, default=self._next_round + 1) <= self._next_round
                or self.clock.now_ns() < end_ns
            ):
                # Stragglers (retries, late starts) finish within a poll interval (+ timeout).
                self._progress.clear()
                try:
                    async with asyncio.timeout(
                        self.clock.real_delay(0.1 * self.round_ns / NS_PER_S)
                    ):
                        await self._progress.wait()
                except TimeoutError:
                    pass
            await self._hand_on(self._next_round)

    async def _hand_on(self, index: int) -> None:
        """Hands on round `index` (nothing if it has no readings); later readings of earlier
        rounds go to the next round not handed on."""
        self._next_round = max(self._next_round, index + 1)
        readings = self._rounds.pop(index, None)
        if readings is None:
            return
        batch = ReadingBatch(
            readings.meters,
            np.array(readings.ts_ns, dtype=np.int64),
            np.array(readings.values, dtype=np.float64),
            gateway=self.name,
            round_start_ns=index * self.round_ns,
        )
        self.stats.batches += 1
        self.stats.readings += len(batch)
        self._handing_on = asyncio.ensure_future(self.on_batch(batch))
        try:
            await asyncio.shield(self._handing_on)
        finally:
            if self._handing_on.done():
                self._handing_on = None


@dataclass(eq=False)
class _Round:
    meters: list[str] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, meter: str, ts_ns: int, value: float) -> None:
        self.meters.append(meter)
        self.ts_ns.append(ts_ns)
        self.values.append(value)


class FleetPoller:
    """Polls every device of every gateway; readings go to `on_batch`, one batch per gateway
    per round.

    `run()` polls until `stop()` (then it hands on the partial rounds and returns) or until it
    is cancelled (no final batches). `health()` and `stats()` can be called at any time.
    """

    def __init__(
        self, gateways: Sequence[GatewaySettings], clock: Clock, on_batch: OnBatch
    ) -> None:
        seen: set[str] = set()
        for d in (d for g in gateways for d in g.devices):
            if d.meter in seen:
                raise ValueError(f"meter id {d.meter!r} is polled twice")
            seen.add(d.meter)
        self.clock = clock
        self.gateways = [GatewayPoller(g, clock, on_batch) for g in gateways]
        self._stop = asyncio.Event()

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(g.run(self._stop), name=f"modbus {g.name}") for g in self.gateways
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await cancel_and_wait(tasks)

    def stop(self) -> None:
        """Asks `run()` to finish: in-flight polls are abandoned, buffered readings handed on."""
        self._stop.set()

    def health(self) -> list[DeviceHealth]:
        return [h for g in self.gateways for h in g.health()]

    def trackers(self) -> Iterator[HealthTracker]:
        """Every device's live health (the poller changes it as it polls)."""
        return (d.health for g in self.gateways for d in g.devices)

    def stats(self) -> PollStats:
        total = PollStats()
        for g in self.gateways:
            total = total + g.stats
        return total

    def gateway_stats(self) -> dict[str, PollStats]:
        return {g.name: g.stats for g in self.gateways}
