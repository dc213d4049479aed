"""One capacity step: the real service with a fleet, measured in wall-clock real time.

A step starts `carbonstream run` on a fresh data directory with the fleet's configuration (and
the alert probe's meters and rule), starts the load generators, lets the start-up burst pass
(`warmup_s`: the tower simulator begins at the start of the current averaging period, the
poller's first round, ...; and at least until every product of the fleet has stored a period
that closed while the service ran, see `_first_live_closes`), then measures for `measure_s`
(in whole meter intervals when there are meters): journal lag from /health every `poll_s`,
CPU and memory of every process, samples made durable (Prometheus counters), and the alert
probe's latency. The fleet is real-time when

- the journal lag stays bounded (max <= LAG_BOUND_S) and is not growing (the mean of the last
  third of the window is at most LAG_GROWTH_S above the mean of the first third);
- the sources deliver what the fleet should send (>= DELIVERED_MIN of the nominal rate: a
  saturated ingest role shows there, not in the journal lag);
- alert latency p99 < ALERT_P99_S with no alert missing.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carbonstream.bench.alert_latency import SLOW_S, AlertProbe, probe_config
from carbonstream.bench.fleet import (
    METER_INTERVAL_S,
    Fleet,
    MeterPusher,
    ModbusFleet,
    service_config,
)
from carbonstream.bench.procstats import CpuMeter
from carbonstream.bench.service import RunningService, metric_sum
from carbonstream.config import load_config
from carbonstream.products import ec_flux_specs, product_specs
from storage.metadata import STATUS_ZARR, MetadataDB

LAG_BOUND_S = 10.0
LAG_GROWTH_S = 2.0
DELIVERED_MIN = 0.95
ALERT_P99_S = 1.0
PROBES = 5
PROBE_EVERY_S = 0.5
COUNTER = "carbonstream_samples_ingested_total"
PACKETS = "carbonstream_hj212_packets_total"


@dataclass(frozen=True)
class StepSettings:
    warmup_s: float = 45.0
    measure_s: float = 90.0
    poll_s: float = 2.0
    ec_averaging_min: float = 2.0
    partitions: int = 4
    durability: str = "fsync"
    keep_data: bool = False


@dataclass
class StepResult:
    fleet: Fleet
    measured_s: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    """Per second over the window: ec_rows, cems_packets, meter_readings, samples (all sources)."""
    delivered: dict[str, float] = field(default_factory=dict)
    """Fraction of the nominal rate, per kind present in the fleet."""
    cpu_percent: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)
    lag_s: list[float] = field(default_factory=list)
    alert: dict[str, Any] = field(default_factory=dict)
    realtime: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def service_cpu(self) -> float:
        return sum(v for k, v in self.cpu_percent.items() if k in SERVICE_PROCESSES)

    @property
    def service_rss(self) -> int:
        return sum(v for k, v in self.peak_rss.items() if k in SERVICE_PROCESSES)

    @property
    def lag_max(self) -> float:
        return max(self.lag_s, default=float("nan"))


SERVICE_PROCESSES = ("run", "ingest", "flow", "api")


def _first_live_closes(svc: RunningService, fleet: Fleet) -> Callable[[], bool]:
    """True once every product the fleet writes (EC flux periods, CEMS minutes, meter
    intervals) has stored a period that closed since the service started: the first such close
    loads every row block, grows the time axis up to today and writes the stream labels, once
    per deployment (a stall of seconds that a steady-state window must not contain). Read from
    the sink's status (newest period stored per partition): a group existing says nothing of
    that (the alert probe's readings, stamped a day back, create meters/interval early)."""
    config = load_config(svc.config_path, environ={})
    every = product_specs(config)
    specs = list(ec_flux_specs(config).values()) if fleet.towers else []
    if fleet.stacks:
        specs.append(every["cems/minute"])
    if fleet.meters:
        specs.append(every["meters/interval"])

    def done() -> bool:
        db = MetadataDB(config.storage.layout.metadata_db)
        try:
            status = db.status(STATUS_ZARR)
        finally:
            db.close()
        now_ns = time.time_ns()
        for spec in specs:
            stored = [
                int(value.get("max_slot", -1))
                for (_, key), (value, _) in status.items()
                if key.rsplit("#", 1)[0] == spec.name
            ]
            if max(stored, default=-1) < spec.slot_of(now_ns) - 1:
                return False
        return True

    return done


def measured_window_s(fleet: Fleet, measure_s: float) -> float:
    """`measure_s`, rounded up to whole meter intervals when the fleet has meters: each meter
    sends once per interval, so a window of 1.5 intervals counts one or two readings per meter
    depending on its phase (84-86 % of the nominal rate in every meters step of a 90-s sweep)."""
    if not fleet.meters:
        return measure_s
    return math.ceil(measure_s / METER_INTERVAL_S - 1e-9) * METER_INTERVAL_S


def _counters(svc: RunningService) -> dict[str, float]:
    text = svc.metrics_text()
    return {
        "ec_rows": metric_sum(text, COUNTER, source="ec-simulator"),
        "cems_packets": metric_sum(text, PACKETS, cn="2011"),
        "meter_readings": metric_sum(text, COUNTER, source="modbus")
        + metric_sum(text, COUNTER, source="push.meters"),
        "samples": metric_sum(text, COUNTER),
    }


def _spans(times_s: list[float], gap_s: float = 3.0) -> str:
    """Sorted times as spans ('12-15, 55'): where a step's slow alerts clustered."""
    spans: list[list[float]] = []
    for t in times_s:
        if spans and t - spans[-1][1] <= gap_s:
            spans[-1][1] = t
        else:
            spans.append([t, t])
    return ", ".join(f"{a:.0f}" if round(a) == round(b) else f"{a:.0f}-{b:.0f}" for a, b in spans)


def _judge(r: StepResult) -> None:
    lags = np.array(r.lag_s)
    if lags.size < 3:
        r.reasons.append("too few lag samples")
    else:
        third = max(1, lags.size // 3)
        if lags.max() > LAG_BOUND_S:
            r.reasons.append(f"journal lag up to {lags.max():.1f} s (bound {LAG_BOUND_S:.0f} s)")
        growth = lags[-third:].mean() - lags[:third].mean()
        if growth > LAG_GROWTH_S:
            r.reasons.append(f"journal lag growing (+{growth:.1f} s over the window)")
    for kind, frac in r.delivered.items():
        if frac < DELIVERED_MIN:
            r.reasons.append(f"{kind}: {100 * frac:.0f} % of the nominal rate delivered")
    p99, missing = r.alert.get("p99_s"), r.alert.get("missing", 0)
    if missing:
        r.reasons.append(f"{missing} alert(s) missing")
    if p99 is None or p99 >= ALERT_P99_S:
        slow = r.alert.get("slow_at_s") or []
        when = f" (pushes >= {SLOW_S:g} s at {_spans(slow)} s into the window)" if slow else ""
        r.reasons.append(f"alert latency p99 {p99 if p99 is None else round(p99, 3)} s{when}")
    r.realtime = not r.reasons


def run_step(fleet: Fleet, settings: StepSettings, workdir: Path) -> StepResult:
    """Runs the service with `fleet` for one step and measures it (see the module docstring)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    result = StepResult(fleet)
    modbus = (
        ModbusFleet(fleet.modbus_meters, workdir / "modbus.log") if fleet.modbus_meters else None
    )
    svc: RunningService | None = None
    pusher: MeterPusher | None = None
    probe: AlertProbe | None = None
    try:
        config = service_config(
            fleet,
            modbus.gateways if modbus else [],
            settings.ec_averaging_min,
            settings.partitions,
            settings.durability,
        )
        svc = RunningService.start(workdir, config + probe_config(PROBES))
        svc.wait_ready(timeout_s=300.0)
        ingest_token = svc.token("ingest")
        pusher = MeterPusher(svc.base_url, ingest_token, fleet.push_meters)
        pusher.start()
        probe = AlertProbe(svc.base_url, ingest_token, svc.token("read"), meters=PROBES)
        probe.start()
        warm_end = time.monotonic() + settings.warmup_s
        closed_live = _first_live_closes(svc, fleet)
        give_up = warm_end + 60.0 * settings.ec_averaging_min + 90.0
        while time.monotonic() < warm_end or (not closed_live() and time.monotonic() < give_up):
            probe.push()  # warms the probe's path too; its latencies are discarded below
            time.sleep(2.0)
        time.sleep(PROBE_EVERY_S * 10)  # the rest of that close (other partitions, roll-ups)
        probe.stats(wait_s=5.0)
        probe.reset()  # the warm-up's latencies are not part of the measurement

        roots = [svc.proc.pid, os.getpid()] + ([modbus.proc.pid] if modbus else [])
        cpu = CpuMeter(roots)
        t0 = time.monotonic()
        before = _counters(svc)
        cpu.start(t0)
        end = t0 + measured_window_s(fleet, settings.measure_s)
        next_poll = t0
        while time.monotonic() < end:
            started = time.monotonic()
            probe.push()
            if started >= next_poll:
                health = svc.health()
                if health is not None:
                    result.lag_s.append(float(health["journal"]["lag_seconds"]))
                cpu.poll(time.monotonic())
                next_poll += settings.poll_s
            time.sleep(max(0.0, PROBE_EVERY_S - (time.monotonic() - started)))
        cpu.poll(time.monotonic())
        after = _counters(svc)
        result.measured_s = time.monotonic() - t0
        result.rates = {k: (after[k] - before[k]) / result.measured_s for k in after}
        nominal = fleet.nominal()
        for kind, key in (
            ("ec", "ec_rows"),
            ("cems", "cems_packets"),
            ("meters", "meter_readings"),
        ):
            want = nominal[f"{key}_per_s"]
            if want > 0:
                result.delivered[kind] = result.rates[key] / want
        result.cpu_percent = cpu.cpu_percent()
        result.peak_rss = dict(cpu.peak_rss)
        result.alert = probe.stats(wait_s=10.0).summary()
        if pusher.failed:
            result.reasons.append(f"{pusher.failed} pushed reading(s) refused or failed")
        _judge(result)
    except Exception as exc:  # a step that cannot run is a step that is not real-time
        result.reasons.append(f"step failed: {exc}".splitlines()[0][:200])
        result.realtime = False
    finally:
        if probe is not None:
            probe.close()
        if pusher is not None:
            with contextlib.suppress(Exception):
                pusher.stop()
        if svc is not None:
            code = svc.stop()
            if code not in (0, None):
                result.reasons.append(f"service exited with {code}")
                result.realtime = False
        if modbus is not None:
            modbus.stop()
        if not settings.keep_data:
            shutil.rmtree(workdir / "data", ignore_errors=True)
    return result
