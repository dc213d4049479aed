"""Hourly stack integration: the Rust pipeline vs the vectorised numpy reference, same input.

Input: 50 stacks x one day of real-time readings every 10 s (8,640 samples of flow + CO2 + SO2
each), as the dataflow hands them over. Rust: one `StackPipeline.push_samples` per stack (the
real path, which also does substitution, days, quality signals and returns every minute).
Reference: benchmarks/reference/cems.py (minute means and the HJ 75 hourly mass of both
channels), vectorised across all stacks at once. Both must agree on every hour.
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.cems import hourly_mass, minute_means
from carbonstream.core import cems

STACKS = 50
STEP_S = 10
N = 86_400 // STEP_S
T0_MS = 1_767_196_800_000  # 2026-01-01 00:00 +08:00
K_CO2 = cems.mass_factor("%")


@pytest.fixture(scope="module")
def day() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = T0_MS + np.arange(N) * STEP_S * 1000
    load = 1 + 0.15 * np.sin(np.arange(N) / N * 2 * np.pi)
    return {
        "t": t,
        "flow": 40 * load + rng.normal(0, 0.3, (STACKS, N)),  # m3/s
        "co2": 10 + load + rng.normal(0, 0.05, (STACKS, N)),
        "so2": 30 * load + rng.normal(0, 1, (STACKS, N)),
        "flags": np.full((N, 2), ord("N"), np.uint8),
    }


def rust(day: dict[str, np.ndarray]) -> np.ndarray:
    spec = cems.StackSpec([K_CO2, 1e-6], flatline_minutes=30, repeat_packets=0)
    n_flag = np.full(N, ord("N"), np.uint8)
    fp = np.zeros(N, np.uint64)
    out = []
    for s in range(STACKS):
        p = cems.StackPipeline(spec)
        values = np.ascontiguousarray(np.stack([day["co2"][s], day["so2"][s]], axis=1))
        _, _, res = p.push_samples(day["t"], day["flow"][s], n_flag, values, day["flags"], fp)
        closed = p.close_until(int(day["t"][-1]) + 60_000)
        mass = np.concatenate([res["hours"]["measured_mass"], closed["hours"]["measured_mass"]])
        var = np.concatenate([res["hours"]["var"], closed["hours"]["var"]])
        out.append(np.stack([mass[var == 1], mass[var == 2]]))
    return np.array(out)


def reference(day: dict[str, np.ndarray]) -> np.ndarray:
    # Every stack at once: stack-major minute keys.
    t = np.tile(day["t"], STACKS) + np.repeat(np.arange(STACKS), N) * (1_000_000 * 3_600_000)
    flags = np.full(t.size, ord("N"), np.uint8)
    minutes, q = minute_means(t, day["flow"].ravel() * 3600, flags)
    _, co2 = minute_means(t, day["co2"].ravel(), flags)
    _, so2 = minute_means(t, day["so2"].ravel(), flags)
    masses = [hourly_mass(minutes, q, c, k).mass for c, k in ((co2, K_CO2), (so2, 1e-6))]
    return np.stack(masses).reshape(2, STACKS, 24).transpose(1, 0, 2)


@pytest.mark.benchmark(group="cems-hourly")
def test_rust_pipeline(benchmark: BenchmarkFixture, day: dict[str, np.ndarray]) -> None:
    got = benchmark(rust, day)
    np.testing.assert_allclose(got, reference(day), rtol=1e-9)
    if benchmark.stats is not None:
        benchmark.extra_info["samples_per_s"] = round(STACKS * N / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="cems-hourly")
def test_numpy_reference(benchmark: BenchmarkFixture, day: dict[str, np.ndarray]) -> None:
    got = benchmark(reference, day)
    assert got.shape == (STACKS, 2, 24) and np.isfinite(got).all()
    if benchmark.stats is not None:
        benchmark.extra_info["samples_per_s"] = round(STACKS * N / benchmark.stats.stats.median)
