"""Simulated CEMS stacks speaking HJ 212 over TCP, as their data loggers would.

Each stack has a load that follows the day; flow, CO2, pollutants, O2 and duct conditions follow
the load with noise. Its logger sends real-time data (2011) every `realtime_interval_s`, minute
data (2051: average, min, max of the minute's readings) at each minute's end and hourly data
(2061: averages and `-Cou` totals, and the natural gas burnt) at each hour's end, all with
Flag=5 (answer requested). Like a logger, it keeps what has not been answered and sends it again
after a reconnection or a timeout, so nothing is lost when the server restarts.

Scripted events make the rules visible: a daily 10-minute CO2/O2 calibration (flag C) on every
stack; on stack 1 an SO2 analyser fault (flag D) from 10:00 to 12:00 local time (substituted
hours); stack 2 reports 15 % more gas than its CO2 implies (an accounting disagreement).

Time is simulated: `rate` simulated seconds per wall second from `start`, so a day can be sent
in a minute.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from carbonstream.core import hj212
from connectors.hj212.packets import data_frame
from connectors.hj212.settings import CemsSimulatorSettings, SiteSettings
from connectors.hj212.sites import SIM_FUEL_CODE, simulated_sites

log = logging.getLogger(__name__)

NS = 1_000_000_000
CO2_DENSITY = 44.01 / 22.414
GAS_CO2_KG_PER_NM3 = 389.31e-4 * 1e-3 * 15.3 * 0.99 * 44 / 12 * 1000
ANSWER_TIMEOUT_S = 5.0
WINDOW = 500

# code -> (mean, relative swing with load, noise sd, decimals)
_PROFILE: dict[str, tuple[float, float, float, int]] = {
    "a05001": (10.5, 0.08, 0.05, 3),  # CO2 %
    "a21026": (28.0, 0.25, 0.8, 2),  # SO2 mg/m3
    "a21002": (45.0, 0.20, 1.2, 2),  # NOx mg/m3
    "a34013": (3.0, 0.15, 0.15, 3),  # dust mg/m3
    "a19001": (7.0, -0.10, 0.08, 3),  # O2 %
    "a01012": (125.0, 0.05, 0.5, 2),  # degC
    "a01013": (-0.35, 0.0, 0.01, 3),  # kPa
    "a01014": (8.0, 0.02, 0.1, 3),  # %
}
ACCOUNTING_BIAS = (0.03, -0.05, 0.15)


@dataclass
class StackModel:
    """The values a stack's analysers read at any time."""

    index: int
    site: SiteSettings
    seed: int
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.index])
        self.base_flow = 40.0 + 12.0 * (self.index % 5)  # m3/s dry standard
        self.phase = 0.7 * self.index

    def load(self, t_ns: int) -> float:
        day = (t_ns / NS + self.site.offset_minutes * 60) / 86_400.0
        return 1.0 + 0.15 * math.sin(2 * math.pi * (day - 0.25) + self.phase)

    def local_hm(self, t_ns: int) -> tuple[int, int]:
        s = int(t_ns // NS + self.site.offset_minutes * 60) % 86_400
        return s // 3600, s // 60 % 60

    def reading(self, t_ns: int) -> dict[str, tuple[float, str]]:
        """(value, flag) of the flow and every channel at `t_ns`."""
        load = self.load(t_ns)
        hour, minute = self.local_hm(t_ns)
        out: dict[str, tuple[float, str]] = {
            "a00000": (
                round(self.base_flow * load + self.rng.normal(0, 0.3), 3),
                "N",
            )
        }
        calibrating = hour == 3 and (5 * self.index) % 50 <= minute < (5 * self.index) % 50 + 10
        for c in self.site.channels:
            mean, swing, sd, dec = _PROFILE.get(c.code, (1.0, 0.0, 0.01, 3))
            v = round(mean * (1 + swing * (load - 1) / 0.15) + self.rng.normal(0, sd), dec)
            flag = "N"
            if calibrating and c.code in ("a05001", "a19001"):
                flag = "C"
            if self.index == 1 and c.code == "a21026" and 10 <= hour < 12:
                flag = "D"
            out[c.code] = (v, flag)
        return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"Avg": float(np.mean(values)), "Min": min(values), "Max": max(values)}


@dataclass
class StackLogger:
    """What one stack's logger sends, period by period."""

    model: StackModel
    interval_ns: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    hour_samples: dict[str, list[float]] = field(default_factory=dict)
    hour_mass: dict[str, float] = field(default_factory=dict)
    hour_flow_m3: float = 0.0
    hour_co2_kg: float = 0.0
    serial: int = 0

    def _frame(self, cn: int, t_ns: int, readings: dict[str, dict[str, float | str]]) -> bytes:
        self.serial = (self.serial + 1) % 1000
        s = self.model.site
        return data_frame(
            cn=cn,
            mn=s.mn,
            pw=s.password,
            t_ns=t_ns,
            offset_minutes=s.offset_minutes,
            readings=readings,
            serial=self.serial,
        )

    def realtime(self, t_ns: int) -> bytes:
        r = self.model.reading(t_ns)
        for code, (v, f) in r.items():
            self.samples.setdefault(code, []).append(v)
            self.flags.setdefault(code, []).append(f)
        return self._frame(2011, t_ns, {c: {"Rtd": v, "Flag": f} for c, (v, f) in r.items()})

    def minute(self, minute_start_ns: int) -> bytes | None:
        """The 2051 packet of the minute that just ended (None if it had no reading)."""
        if not self.samples:
            return None
        readings: dict[str, dict[str, float | str]] = {}
        flow = float(np.mean(self.samples["a00000"])) * 3600  # m3/h
        for code, values in self.samples.items():
            flags = self.flags[code]
            flag = max(set(flags), key=flags.count)
            readings[code] = {**_stats(values), "Flag": flag}
            self.hour_samples.setdefault(code, []).extend(values)
            if code == "a00000":
                readings[code]["Cou"] = flow / 60
                self.hour_flow_m3 += flow / 60
            else:
                unit_k = CO2_DENSITY * 1e-2 if code == "a05001" else 1e-6
                kg = unit_k * float(np.mean(values)) * flow / 60
                self.hour_mass[code] = self.hour_mass.get(code, 0.0) + kg
                if code == "a05001":
                    self.hour_co2_kg += kg
        self.samples.clear()
        self.flags.clear()
        return self._frame(2051, minute_start_ns, readings)

    def hour(self, hour_start_ns: int) -> bytes | None:
        """The 2061 packet of the hour that just ended, with the gas burnt."""
        if not self.hour_samples:
            return None
        readings: dict[str, dict[str, float | str]] = {}
        for code, values in self.hour_samples.items():
            readings[code] = {**_stats(values), "Flag": "N"}
            if code == "a00000":
                readings[code]["Cou"] = self.hour_flow_m3
            elif code in self.hour_mass:
                readings[code]["Cou"] = self.hour_mass[code]
        if self.model.site.fuel_meters:
            bias = ACCOUNTING_BIAS[self.model.index % len(ACCOUNTING_BIAS)]
            gas = self.hour_co2_kg / GAS_CO2_KG_PER_NM3 * (1 + bias)
            readings[SIM_FUEL_CODE] = {"Cou": round(gas, 3), "Flag": "N"}
        self.hour_samples.clear()
        self.hour_mass.clear()
        self.hour_flow_m3 = 0.0
        self.hour_co2_kg = 0.0
        return self._frame(2061, hour_start_ns, readings)

    def frames_until(self, t_ns: int, end_ns: int) -> list[bytes]:
        """Everything due at `t_ns` (a multiple of the interval): the minute and hour that end
        there, then the real-time reading (unless the run ends there)."""
        out: list[bytes] = []
        if t_ns % (60 * NS) == 0:
            f = self.minute(t_ns - 60 * NS)
            if f is not None:
                out.append(f)
        if t_ns % (3600 * NS) == 0:
            f = self.hour(t_ns - 3600 * NS)
            if f is not None:
                out.append(f)
        if t_ns < end_ns:
            out.append(self.realtime(t_ns))
        return out


class SimClock:
    """Simulated time from `start_ns`, `rate` times faster than the wall clock."""

    def __init__(self, start_ns: int, rate: float) -> None:
        self.start_ns = start_ns
        self.rate = rate
        self._wall0 = time.monotonic()

    def now_ns(self) -> int:
        return self.start_ns + int((time.monotonic() - self._wall0) * self.rate * NS)

    async def sleep_until(self, t_ns: int) -> None:
        delay = (t_ns - self.now_ns()) / NS / self.rate
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class LoggerLink:
    """One logger's TCP connection: sends, collects answers, resends what was not answered."""

    host: str
    port: int
    outstanding: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    answered: int = 0
    resent: int = 0
    _writer: asyncio.StreamWriter | None = None
    _reader_task: asyncio.Task[None] | None = None
    _space: asyncio.Event = field(default_factory=asyncio.Event)

    async def _connect(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                break
            except OSError:
                await asyncio.sleep(0.5)
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))
        for frame, _ in list(self.outstanding.values()):
            self.resent += 1
            writer.write(frame)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        dec = hj212.StreamDecoder()
        while data := await reader.read(65_536):
            for item in dec.feed(data):
                if item[0] != "packet":
                    continue
                qn = hj212.decode(item[1])["packet"]["qn"]
                if self.outstanding.pop(qn, None) is not None:
                    self.answered += 1
            if len(self.outstanding) < WINDOW:
                self._space.set()
        self._writer = None

    async def send(self, frame: bytes) -> None:
        qn = frame.split(b"QN=", 1)[1].split(b";", 1)[0].decode()
        while len(self.outstanding) >= WINDOW:
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), ANSWER_TIMEOUT_S)
            except TimeoutError:
                await self.resend_overdue()
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        self.outstanding[qn] = (frame, time.monotonic())
        assert self._writer is not None
        self._writer.write(frame)
        await self._writer.drain()

    async def resend_overdue(self) -> None:
        if self._writer is None or self._writer.is_closing():
            await self._connect()
            return
        now = time.monotonic()
        for qn, (frame, sent) in list(self.outstanding.items()):
            if now - sent > ANSWER_TIMEOUT_S:
                self.outstanding[qn] = (frame, now)
                self.resent += 1
                self._writer.write(frame)

    async def flush(self, timeout_s: float) -> bool:
        """Waits until everything sent is answered (resending overdue frames)."""
        deadline = time.monotonic() + timeout_s
        while self.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            await self.resend_overdue()
        return not self.outstanding

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)


def _start_ns(sim: CemsSimulatorSettings, interval_ns: int) -> int:
    if sim.start is not None:
        t = int(datetime.fromisoformat(sim.start).timestamp() * NS)
    else:
        t = time.time_ns() // (60 * NS) * (60 * NS)
    return -(-t // interval_ns) * interval_ns


async def run_stack(
    model: StackModel,
    clock: SimClock,
    interval_ns: int,
    end_ns: int | None,
    link: LoggerLink,
    sent: Callable[[str, bytes], None] | None = None,
) -> None:
    """Sends one stack's packets from the clock's start until `end_ns` (or forever)."""
    logger = StackLogger(model, interval_ns)
    t = -(-clock.start_ns // interval_ns) * interval_ns
    stop = end_ns if end_ns is not None else 2**62
    while t <= stop:
        await clock.sleep_until(t)
        for frame in logger.frames_until(t, stop):
            if sent is not None:
                sent(model.site.id, frame)
            await link.send(frame)
        t += interval_ns


async def run_simulator(
    sim: CemsSimulatorSettings,
    host: str,
    port: int,
    sent: Callable[[str, bytes], None] | None = None,
) -> dict[str, int]:
    """Runs every simulated stack; returns counters once `duration_s` has been sent and
    answered (never returns without a duration)."""
    interval_ns = int(sim.realtime_interval_s * NS)
    if (60 * NS) % interval_ns:
        raise ValueError("realtime_interval_s must divide a minute")
    start = _start_ns(sim, interval_ns)
    clock = SimClock(start, sim.rate)
    end = start + int(sim.duration_s * NS) if sim.duration_s is not None else None
    sites = simulated_sites(sim)
    links = [LoggerLink(host, port) for _ in sites]
    models = [StackModel(i, s, sim.seed) for i, s in enumerate(sites)]
    log.info(
        "cems simulator: %d stack(s) to %s:%d, real-time every %.0f s, %gx",
        len(sites),
        host,
        port,
        sim.realtime_interval_s,
        sim.rate,
    )
    try:
        await asyncio.gather(
            *(
                run_stack(m, clock, interval_ns, end, lk, sent)
                for m, lk in zip(models, links, strict=True)
            )
        )
        flushed = await asyncio.gather(*(lk.flush(60.0) for lk in links))
        if not all(flushed):
            log.warning("cems simulator: some packets were never answered")
    finally:
        for lk in links:
            await lk.close()
    return {
        "answered": sum(lk.answered for lk in links),
        "resent": sum(lk.resent for lk in links),
        "unanswered": sum(len(lk.outstanding) for lk in links),
    }
