"""The simulated fleet: deterministic, monotonic registers consistent with the load profile."""

from __future__ import annotations

import numpy as np

from connectors.simulators.meter_fleet import RESOLUTION_KWH, MeterFleet


def fleet(seed: int = 3) -> MeterFleet:
    return MeterFleet.build(50, "sim-", mean_power_kw=20.0, interval_s=5.0, seed=seed)


def test_same_seed_same_fleet_and_readings() -> None:
    a, b = fleet(), fleet()
    assert a.ids == b.ids and a.ids[0] == "sim-00000"
    np.testing.assert_array_equal(a.readings_at(1.8e9)[1], b.readings_at(1.8e9)[1])
    assert not np.array_equal(fleet(4).readings_at(1.8e9)[1], a.readings_at(1.8e9)[1])


def test_registers_never_fall_over_two_days() -> None:
    f = fleet()
    ticks = 1.8e9 + np.arange(0, 2 * 86_400, 300.0)
    regs = np.array([f.readings_at(t)[1] for t in ticks])
    assert (np.diff(regs, axis=0) >= 0).all()


def test_energy_matches_the_mean_load() -> None:
    """Over whole days the sinusoidal terms cancel: energy = mean power x time (to resolution)."""
    f = fleet()
    t0 = 1.8e9
    day = np.full(len(f.ids), 86_400.0)
    e = f.register_kwh(t0 + day) - f.register_kwh(np.full(len(f.ids), t0))
    np.testing.assert_allclose(e, f.mean_kw * 24, atol=2 * RESOLUTION_KWH)


def test_reading_times_are_whole_milliseconds_within_the_interval() -> None:
    f = fleet()
    ts, _ = f.readings_at(1_800_000_000.0)
    assert (ts % 1_000_000 == 0).all()
    assert ((ts >= 1_800_000_000 * 10**9) & (ts < 1_800_000_005 * 10**9)).all()
