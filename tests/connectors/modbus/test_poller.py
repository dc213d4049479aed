"""The fleet poller against the simulated fleet: real pymodbus servers and clients on loopback,
an accelerated clock shared by both."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import pytest

from connectors.clock import NS_PER_S, ScaledClock
from connectors.modbus.config import DeviceSettings, GatewaySettings
from connectors.modbus.health import DeviceHealth
from connectors.modbus.poller import FleetPoller, PollStats, ReadingBatch, backoff_s, poll_phase_ns
from connectors.simulators.modbus_fleet import FleetSpec, RunningFleet, start_fleet

T0_NS = 1_800_000_000 * NS_PER_S
QUIET = {"wrapping": 0, "replaced": 0, "dead_silent": 0, "dead_exception": 0}


@dataclass
class Run:
    fleet: RunningFleet
    poller: FleetPoller
    batches: list[tuple[int, ReadingBatch]]
    """(clock ns when handed on, batch)"""
    health: list[DeviceHealth]
    stats: PollStats
    started_ns: int
    ended_ns: int

    def readings(self) -> dict[str, list[tuple[int, float]]]:
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for _, b in self.batches:
            for m, ts, v in zip(b.meters, b.ts_ns.tolist(), b.values.tolist(), strict=True):
                out[m].append((ts, v))
        return {m: sorted(r) for m, r in out.items()}


def run_poller(
    spec: FleetSpec,
    rate: float,
    sim_seconds: float,
    gateways: Callable[[RunningFleet], list[GatewaySettings]],
    during: Callable[[RunningFleet, ScaledClock], Awaitable[None]] | None = None,
) -> Run:
    """Serves `spec`, polls it for `sim_seconds` of simulated time, stops both."""

    async def main() -> Run:
        clock = ScaledClock(T0_NS, rate=rate)
        fleet = await start_fleet(spec, clock)
        batches: list[tuple[int, ReadingBatch]] = []

        async def on_batch(batch: ReadingBatch) -> None:
            batches.append((clock.now_ns(), batch))

        poller = FleetPoller(gateways(fleet), clock, on_batch)
        started = clock.now_ns()
        task = asyncio.create_task(poller.run())
        try:
            if during is not None:
                await during(fleet, clock)
            await clock.sleep_until(started + round(sim_seconds * NS_PER_S))
            poller.stop()
            await asyncio.wait_for(task, 5)
        finally:
            task.cancel()
            await fleet.stop()
        return Run(fleet, poller, batches, poller.health(), poller.stats(), started, clock.now_ns())

    return asyncio.run(main())


# -- one mixed fleet, polled for 100 simulated seconds at 20x ---------------------------------

SPEC = FleetSpec(meters=30, units_per_gateway=15, wrap_after_s=40, replace_after_s=50)
INTERVAL_S = 10.0
DEAD_AFTER = 2


@pytest.fixture(scope="module")
def mixed() -> Run:
    return run_poller(
        SPEC,
        rate=20.0,
        sim_seconds=100.0,
        gateways=lambda f: f.gateway_settings(
            interval_s=INTERVAL_S,
            connections=2,
            timeout_s=2.0,
            retries=1,
            backoff_s=0.5,
            dead_after=DEAD_AFTER,
            dead_probe_s=30.0,
        ),
    )


def test_readings_are_the_simulated_registers_at_their_read_time(mixed: Run) -> None:
    """Each value is what the meter showed between (ts - 2 s) and ts: the response arrived at ts
    and took well under 2 simulated seconds (0.1 s of wall time)."""
    model = mixed.fleet.model
    checked = exact = 0
    for meter, readings in mixed.readings().items():
        m = model.meter(meter)
        events = [t for t in (m.wrap_at_s, m.replaced_at_s) if t is not None]
        for ts, value in readings:
            t = ts / NS_PER_S
            lo, hi = model.expected_reading(meter, t - 2.0), model.expected_reading(meter, t)
            assert lo is not None and hi is not None
            if any(t - 2.0 <= e <= t for e in events):
                assert value in (lo, hi)
            else:
                assert lo <= value <= hi, (meter, t, lo, value, hi)
                assert hi - value <= 2 * model.resolution_kwh(meter, t) + 0.05
            checked += 1
            exact += value == hi
    assert checked >= 26 * 9  # every live meter, every 10 s
    assert exact > checked / 2  # mostly not even one register step behind


def test_wraps_and_the_replacement_show_in_the_raw_readings(mixed: Run) -> None:
    readings = mixed.readings()
    for m in mixed.fleet.meters:
        values = [v for _, v in readings.get(m.meter, [])]
        drops = [(a, b) for a, b in itertools.pairwise(values) if b < a]
        if m.rollover_kwh is not None:
            assert len(drops) == 1
            (before, after), roll = drops[0], m.rollover_kwh
            assert roll - 5 < before < roll and 0 <= after < 5
        elif m.replaced_at_s is not None:
            assert len(drops) == 1
            before, after = drops[0]
            assert before > 1000 and 0.12 <= after < 1
        else:
            assert not drops


def test_dead_meters_are_reported_dead_and_never_read(mixed: Run) -> None:
    read = {m for _, b in mixed.batches for m in b.meters}
    health = {h.meter: h for h in mixed.health}
    dead = [m for m in mixed.fleet.meters if m.dead]
    assert len(dead) == 2
    for m in dead:
        h = health[m.meter]
        assert m.meter not in read
        assert h.state == "dead" and not h.healthy
        assert h.last_good_ns is None and h.last_value is None and h.polls_ok == 0
        assert h.consecutive_errors == h.total_errors >= DEAD_AFTER
        assert h.request_errors >= h.total_errors
        expected = "no response within 2 s" if m.dead == "silent" else "exception 0x0b"
        assert h.last_error is not None and expected in h.last_error
    for m in mixed.fleet.meters:
        if not m.dead:
            h = health[m.meter]
            assert h.state == "ok" and h.healthy and h.consecutive_errors == 0
            assert h.last_good_ns is not None and h.last_value is not None


def test_one_batch_per_gateway_per_round(mixed: Run) -> None:
    settings = {g.name: {d.meter for d in g.devices} for g in mixed.poller.gateways}
    by_gateway: dict[str, list[tuple[int, ReadingBatch]]] = defaultdict(list)
    for handed_ns, b in mixed.batches:
        assert b.ts_ns.dtype == np.int64 and b.values.dtype == np.float64
        assert len(b.meters) == len(b.ts_ns) == len(b.values) > 0
        assert set(b.meters) <= settings[b.gateway]
        assert len(set(b.meters)) == len(b.meters)  # each meter once per 10 s round
        by_gateway[b.gateway].append((handed_ns, b))
    round_ns = round(INTERVAL_S * NS_PER_S)
    rounds = mixed.ended_ns // round_ns - mixed.started_ns // round_ns + 1
    for name, batches in by_gateway.items():
        assert rounds - 1 <= len(batches) <= rounds, name  # first and last rounds are partial
        starts = [b.round_start_ns for _, b in batches]
        assert all(s % round_ns == 0 for s in starts)
        assert starts == list(range(starts[0], starts[0] + round_ns * len(starts), round_ns))
        for handed_ns, b in batches:
            assert b.round_start_ns <= b.ts_ns.min() and b.ts_ns.max() <= handed_ns
            assert np.all(np.diff(b.ts_ns) >= 0)  # in arrival order
            if b.round_start_ns + round_ns <= mixed.ended_ns:
                assert handed_ns >= b.round_start_ns + round_ns  # handed on after the round


def test_stats_add_up(mixed: Run) -> None:
    s = mixed.stats
    assert s.polls_missed == 0 and s.missed_fraction == 0.0
    assert s.readings == s.polls_ok == sum(len(b) for _, b in mixed.batches)
    assert s.batches == len(mixed.batches)
    assert s.polls_failed == sum(h.total_errors for h in mixed.health)
    assert s.request_errors == sum(h.request_errors for h in mixed.health)
    assert s.polls_skipped_dead > 0  # dead meters are only probed every 30 s
    assert s.connects == 4 and s.connect_failures == 0  # 2 gateways x 2 connections, kept
    assert s.requests >= s.polls_ok


# -- retries, back-off, reconnection ----------------------------------------------------------


def test_retries_back_off_exponentially_within_the_poll_window() -> None:
    spec = FleetSpec(meters=3, **{**QUIET, "dead_exception": 1}, record_requests=True)

    def gateways(fleet: RunningFleet) -> list[GatewaySettings]:
        soon = (fleet.clock.now_s() + 1.0) % 60.0
        (gw,) = fleet.gateways
        devices = [
            DeviceSettings(
                meter=m.meter,
                unit_id=m.unit_id,
                register_map=m.register_map,
                interval_s=60.0,
                phase_s=soon,
            )
            for m in gw.meters
        ]
        return [
            GatewaySettings(
                host=gw.host,
                port=gw.port,
                devices=devices,
                retries=4,
                backoff_s=1.0,
                backoff_max_s=3.0,
                timeout_s=1.0,
            )
        ]

    run = run_poller(spec, rate=20.0, sim_seconds=15.0, gateways=gateways)
    dead = run.fleet.meters[-1]
    (gw,) = run.fleet.gateways
    times = [t / NS_PER_S for t, unit in gw.log if unit == dead.unit_id]
    assert len(times) == 5  # 1 + 4 retries, all in the first 60 s window
    gaps = np.diff(times)
    # Doubling, capped at 3 (simulated seconds at 20x: a loaded machine's late wake-ups add a
    # few tens of real ms, never take any away; an uncapped 4 s would still fail).
    for gap, want in zip(gaps, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert want - 0.3 <= gap <= want + 0.8, gaps
    h = {h.meter: h for h in run.health}[dead.meter]
    assert (h.state, h.request_errors, h.total_errors) == ("degraded", 5, 1)
    assert run.stats.retries == 4


def test_backoff_schedule() -> None:
    assert [backoff_s(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_gateway_outage_is_retried_with_back_off_and_polling_resumes() -> None:
    stop_at, restart_at = 15.0, 35.0
    marks: dict[str, int] = {}

    async def outage(fleet: RunningFleet, clock: ScaledClock) -> None:
        start = clock.now_ns()
        await clock.sleep_until(start + round(stop_at * NS_PER_S))
        marks["stopped"] = clock.now_ns()
        await fleet.stop_gateway(0)
        await clock.sleep_until(start + round(restart_at * NS_PER_S))
        await fleet.start_gateway(0)
        marks["restarted"] = clock.now_ns()

    run = run_poller(
        FleetSpec(meters=6, **QUIET),
        rate=20.0,
        sim_seconds=65.0,
        gateways=lambda f: f.gateway_settings(
            interval_s=5.0,
            connections=2,
            timeout_s=1.0,
            retries=2,
            backoff_s=0.5,
            backoff_max_s=2.0,
            dead_after=3,
            dead_probe_s=5.0,
        ),
        during=outage,
    )
    readings = run.readings()
    for meter, rs in readings.items():
        assert not [ts for ts, _ in rs if marks["stopped"] < ts < marks["restarted"]], meter
        after = [ts for ts, _ in rs if ts > marks["restarted"]]
        assert len(after) >= 3, meter  # back within ~ a dead probe + a reconnection back-off
    assert len(readings) == 6
    s = run.stats
    assert s.polls_failed > 0 and s.retries > 0 and s.request_errors > 0
    # 20 s down, back-off 0.5, 1, 2, 2, ... s per connection: at most ~13 attempts each.
    # Without back-off every attempt of every poll would reconnect (6 x 4 x 3 = 72).
    assert 2 <= s.connect_failures <= 2 * 13
    assert all(h.state == "ok" for h in run.health)
    assert all(h.total_errors > 0 for h in run.health)
    assert s.connects - s.connect_failures >= 4  # 2 connections, opened again after the restart


# -- capacity: bounded concurrency, missed polls ----------------------------------------------


@pytest.mark.parametrize("connections", [1, 3])
def test_in_flight_requests_never_exceed_the_connections(connections: int) -> None:
    seen_connections: list[int] = []

    async def watch(fleet: RunningFleet, clock: ScaledClock) -> None:
        for _ in range(20):
            await asyncio.sleep(0.05)
            seen_connections.append(fleet.gateways[0].connections)

    # 10 ms per answer; the first round's SunSpec discoveries (4 requests each) keep every
    # connection busy, so the bound is reached.
    run = run_poller(
        FleetSpec(meters=40, **QUIET, latency_s=0.01),
        rate=10.0,
        sim_seconds=20.0,
        gateways=lambda f: f.gateway_settings(interval_s=4.0, connections=connections),
        during=watch,
    )
    gw = run.fleet.gateways[0]
    assert gw.max_inflight == connections  # bounded, and the bound is used
    assert max(seen_connections) == connections
    assert run.stats.polls_ok > 60


def test_polls_that_cannot_be_served_in_their_interval_are_counted_missed() -> None:
    # One connection, 20 ms per answer: 50 answers/s for 40 meters wanting 80 polls/s.
    run = run_poller(
        FleetSpec(meters=40, **QUIET, latency_s=0.02),
        rate=1.0,
        sim_seconds=2.0,
        gateways=lambda f: f.gateway_settings(interval_s=0.5, connections=1),
    )
    s = run.stats
    # About 0.4 missed on an idle machine; a loaded one serves fewer (0.78 seen under load).
    assert s.polls_missed > 0 and s.polls_ok > 0 and 0.2 < s.missed_fraction < 0.95
    assert sum(h.missed for h in run.health) == s.polls_missed
    assert s.polls_failed == 0 and all(h.state in ("ok", "unknown") for h in run.health)


def test_phases_spread_polls_and_are_stable() -> None:
    devices = [DeviceSettings(meter=f"m{i}", unit_id=1, interval_s=10.0) for i in range(2000)]
    phases = np.array([poll_phase_ns(d) for d in devices]) / NS_PER_S
    assert phases.min() >= 0 and phases.max() < 10
    counts, _ = np.histogram(phases, bins=10, range=(0, 10))
    assert counts.min() > 150  # ~200 per second of the interval
    assert poll_phase_ns(devices[0]) == poll_phase_ns(devices[0].model_copy())
    fixed = DeviceSettings(meter="x", unit_id=1, interval_s=10.0, phase_s=12.5)
    assert poll_phase_ns(fixed) == 2_500_000_000


def test_a_meter_polled_twice_is_refused() -> None:
    d = DeviceSettings(meter="m", unit_id=1)
    gws = [GatewaySettings(host="a", devices=[d]), GatewaySettings(host="b", devices=[d])]

    async def nothing(_: ReadingBatch) -> None: ...

    with pytest.raises(ValueError, match="polled twice"):
        FleetPoller(gws, ScaledClock(0), nothing)


def test_an_on_batch_failure_stops_the_poller_with_that_error() -> None:
    async def main() -> None:
        clock = ScaledClock(T0_NS, rate=20.0)
        fleet = await start_fleet(FleetSpec(meters=3, **QUIET), clock)

        async def on_batch(_: ReadingBatch) -> None:
            raise RuntimeError("journal full")

        poller = FleetPoller(fleet.gateway_settings(interval_s=1.0), clock, on_batch)
        try:
            with pytest.raises(RuntimeError, match="journal full"):
                await asyncio.wait_for(poller.run(), 5)
        finally:
            await fleet.stop()
        assert poller.stats().batches == 1

    asyncio.run(main())
