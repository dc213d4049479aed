"""Clocks: the scaled clock runs simulated time `rate` times faster, consistently."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.clock import NS_PER_S, RealClock, ScaledClock


def test_real_clock_is_the_system_utc_clock() -> None:
    clock = RealClock()
    assert clock.rate == 1.0
    assert abs(clock.now_ns() - time.time_ns()) < NS_PER_S // 10
    assert clock.real_delay(2.5) == 2.5


def test_scaled_clock_starts_where_told_and_runs_faster() -> None:
    start = 1_800_000_000 * NS_PER_S
    clock = ScaledClock(start, rate=50.0)
    t0 = clock.now_ns()
    assert start <= t0 < start + NS_PER_S
    time.sleep(0.05)
    elapsed_s = (clock.now_ns() - t0) / NS_PER_S
    assert 2.4 < elapsed_s < 4.0  # 50 x 0.05 s, scheduling noise allowed
    assert clock.real_delay(10.0) == pytest.approx(0.2)
    assert clock.real_delay(-1.0) == 0.0


def test_two_scaled_clocks_with_the_same_anchor_agree() -> None:
    a = ScaledClock(10**18, rate=7.0)
    b = ScaledClock(a.start_ns, rate=a.rate, anchor_ns=a.anchor_ns)
    assert abs(a.now_ns() - b.now_ns()) < NS_PER_S // 100


def test_scaled_sleep_until_takes_scaled_wall_time() -> None:
    clock = ScaledClock(0, rate=100.0)

    async def main() -> tuple[float, int]:
        wall = time.monotonic()
        target = clock.now_ns() + 5 * NS_PER_S  # 5 simulated s = 50 ms
        await clock.sleep_until(target)
        return time.monotonic() - wall, clock.now_ns() - target

    wall_s, late_ns = asyncio.run(main())
    assert 0.045 < wall_s < 0.5
    assert late_ns >= 0


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ScaledClock(0, rate=0.0)
