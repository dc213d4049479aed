"""A benchmark fleet: its configuration for the service and the load generators that are not
simulators of the service itself.

- EC towers: the service's own tower simulator (`[ec.simulator]`, 20 Hz, wall clock), which
  appends each tower's last second of samples to the journal (u, v, w, Ts, CO2, H2O and
  pressure with their timestamps: 8 columns).
- CEMS stacks: the service's stack simulator (`[connectors.cems_simulator]`, rate 1 = wall
  clock), each stack a TCP client speaking HJ 212 to the service's server, one real-time (2011)
  packet per second.
- Meters, split between Modbus and push: `python -m connectors.simulators.modbus_fleet` (its own
  process, pymodbus servers on loopback, wall clock) polled every 60 s by the service's poller,
  and HTTP push (`POST /v1/ingest/meters`, CSV) of one reading per meter per minute, sent by a
  thread of the benchmark in 12 slices of the fleet, one every 5 s.

Simulated-clock acceleration exists for tests (cems `rate`, Modbus `simulated_clock`); it is never
used here: capacity is measured in wall-clock real time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

PUSH_PREFIX = "push-meter-"
PUSH_SLICES = 12
METER_INTERVAL_S = 60.0
EC_HZ = 20.0
CEMS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Fleet:
    towers: int = 0
    stacks: int = 0
    meters: int = 0
    modbus_share: float = 0.5

    @property
    def modbus_meters(self) -> int:
        return round(self.meters * self.modbus_share)

    @property
    def push_meters(self) -> int:
        return self.meters - self.modbus_meters

    def nominal(self) -> dict[str, float]:
        """What the fleet sends per second: EC rows, CEMS real-time packets, meter readings."""
        return {
            "ec_rows_per_s": self.towers * EC_HZ,
            "cems_packets_per_s": self.stacks / CEMS_INTERVAL_S,
            "meter_readings_per_s": self.meters / METER_INTERVAL_S,
        }

    def label(self) -> str:
        parts = []
        if self.towers:
            parts.append(f"{self.towers} towers")
        if self.stacks:
            parts.append(f"{self.stacks} stacks")
        if self.meters:
            parts.append(f"{self.meters} meters")
        return " + ".join(parts) or "empty"


def push_ids(count: int) -> list[str]:
    return [f"{PUSH_PREFIX}{i:06d}" for i in range(count)]


METER_CHUNK_STREAMS = 1024
"""Meters per Zarr chunk in the benchmark's deployment (the default is 256). Every flush while a
minute's readings arrive rewrites the open chunk of every row block, one fsync'd file per
variable: at 100,000 meters, 256 per chunk made about 2,000 files per flush."""
METER_CHUNK_TIME = 60
"""Periods per Zarr chunk in the benchmark's deployment (the default is 240, 4 h of minutes).
The same flushes rewrite the whole open time chunk to add one period: at 100,000 meters, a
flush of every row block took 1.35-1.85 s with 240 and 0.60-1.04 s with 60 (medians of two
runs of benchmarks/bench_meter_flush.py, half-full chunks)."""


def service_config(
    fleet: Fleet,
    gateways: list[dict[str, Any]],
    ec_averaging_min: float,
    partitions: int,
    durability: str = "fsync",
) -> str:
    """The fleet's part of the service configuration (TOML)."""
    lines = [
        f'[journal]\npartitions = {partitions}\ndurability = "{durability}"',
        f"[products.meters_interval]\nchunk_streams = {METER_CHUNK_STREAMS}",
        f"chunk_time = {METER_CHUNK_TIME}",
        "[connectors.meter_simulator]\nenabled = false",
        "[connectors.cems_simulator]",
        f"enabled = {str(fleet.stacks > 0).lower()}\ncount = {fleet.stacks}",
        f"realtime_interval_s = {CEMS_INTERVAL_S}\nrate = 1.0",
        "[ec.simulator]",
        f"enabled = {str(fleet.towers > 0).lower()}\ncount = {fleet.towers}",
        f"sampling_hz = {EC_HZ}\naveraging_min = {ec_averaging_min}",
    ]
    if gateways:
        lines.append("[connectors.modbus]\nenabled = true")
        for g in gateways:
            lines += [
                "[[connectors.modbus.gateways]]",
                f'name = "{g["name"]}"\nhost = "{g["host"]}"\nport = {g["port"]}',
                "connections = 2\ntimeout_s = 5.0",
            ]
            for d in g["devices"]:
                lines += [
                    "[[connectors.modbus.gateways.devices]]",
                    f'meter = "{d["meter"]}"\nunit_id = {d["unit_id"]}',
                    f'register_map = "{d["register_map"]}"\ninterval_s = {METER_INTERVAL_S}',
                ]
    for m in push_ids(fleet.push_meters):
        lines += ["[[streams.meters]]", f'id = "{m}"']
    return "\n".join(lines) + "\n"


class ModbusFleet:
    """The Modbus meter simulator in its own process (wall clock, healthy meters only)."""

    def __init__(self, meters: int, log_path: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "connectors.simulators.modbus_fleet",
                "--meters",
                str(meters),
                *("--wrapping", "0", "--replaced", "0"),
                *("--dead-silent", "0", "--dead-exception", "0"),
            ],
            stdout=subprocess.PIPE,
            stderr=log_path.open("wb"),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the Modbus fleet did not start (see {log_path})")
        self.gateways: list[dict[str, Any]] = json.loads(line)["gateways"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MeterPusher(threading.Thread):
    """One reading per push meter per minute, as CSV, a twelfth of the fleet every 5 s. Counts
    what was acknowledged (202) and how far behind its schedule it ran."""

    def __init__(self, base_url: str, token: str, count: int, seed: int = 0) -> None:
        super().__init__(daemon=True, name="meter-pusher")
        self.ids = np.array(push_ids(count))
        rng = np.random.default_rng(seed)
        self.kw = rng.uniform(5.0, 50.0, count)
        self.base = rng.uniform(1_000.0, 100_000.0, count)
        self.accepted = 0
        self.failed = 0
        self.max_behind_s = 0.0
        self._halt = threading.Event()
        self._client = httpx.Client(
            base_url=base_url, timeout=60.0, headers={"Authorization": f"Bearer {token}"}
        )
        self._t0 = time.time()

    def _body(self, sl: slice, now: float) -> bytes:
        value = self.base[sl] + self.kw[sl] * (now - self._t0) / 3600.0
        ts = f"{now:.3f}"
        return (
            "meter,ts,value\n"
            + "".join(f"{m},{ts},{v:.3f}\n" for m, v in zip(self.ids[sl], value, strict=True))
        ).encode()

    def run(self) -> None:
        n = len(self.ids)
        if n == 0:
            return
        period = METER_INTERVAL_S / PUSH_SLICES
        bounds = np.linspace(0, n, PUSH_SLICES + 1).astype(int)
        k = 0
        start = time.monotonic()
        while not self._halt.is_set():
            due = start + k * period
            wait = due - time.monotonic()
            if wait > 0 and self._halt.wait(wait):
                return
            self.max_behind_s = max(self.max_behind_s, time.monotonic() - due)
            i = k % PUSH_SLICES
            sl = slice(int(bounds[i]), int(bounds[i + 1]))
            try:
                r = self._client.post(
                    "/v1/ingest/meters",
                    content=self._body(sl, time.time()),
                    headers={"content-type": "text/csv"},
                )
                if r.status_code == 202:
                    self.accepted += int(r.json()["accepted"])
                else:
                    self.failed += sl.stop - sl.start
            except httpx.HTTPError:
                self.failed += sl.stop - sl.start
            k += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)
        self._client.close()
