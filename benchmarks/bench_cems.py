"""Hourly stack integration: the Rust pipeline vs the vectorised numpy reference, same input.

Two inputs, each one day of real-time readings of flow + CO2 + SO2 per stack, as the dataflow
hands them over:

- `1hz`: 10 stacks x 86,400 samples at 1 Hz, the rate of the capacity target (stacks at 1 Hz);
- `10s`: 50 stacks x 8,640 samples every 10 s (fewer samples per minute, so the per-minute work
  weighs more: the harder case for the Rust pipeline, which does more per minute than the
  reference).

Rust: one `StackPipeline.push_samples` per stack (the real path, which also does substitution,
days, quality signals and returns every minute). Reference: benchmarks/reference/cems.py (minute
means and the HJ 75 hourly mass of both channels), vectorised across all stacks at once. Both
must agree on every hour.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.cems import hourly_mass, minute_means
from carbonstream.core import cems

INPUTS = {"1hz": (1, 10), "10s": (10, 50)}
"""Input name: (seconds between samples, stacks)."""
T0_MS = 1_767_196_800_000  # 2026-01-01 00:00 +08:00
K_CO2 = cems.mass_factor("%")


@pytest.fixture(scope="module", params=sorted(INPUTS))
def day(request: pytest.FixtureRequest) -> dict[str, Any]:
    step_s, stacks = INPUTS[request.param]
    n = 86_400 // step_s
    rng = np.random.default_rng(0)
    t = T0_MS + np.arange(n) * step_s * 1000
    load = 1 + 0.15 * np.sin(np.arange(n) / n * 2 * np.pi)
    co2 = 10 + load + rng.normal(0, 0.05, (stacks, n))
    so2 = 30 * load + rng.normal(0, 1, (stacks, n))
    return {
        "name": request.param,
        "t": t,
        "flow": 40 * load + rng.normal(0, 0.3, (stacks, n)),  # m3/s
        "co2": co2,
        "so2": so2,
        # Per stack, the (samples, channels) matrix the HJ 212 extraction gives the flow.
        "values": [
            np.ascontiguousarray(np.stack([c, s], axis=1)) for c, s in zip(co2, so2, strict=True)
        ],
        "flags": np.full((n, 2), ord("N"), np.uint8),
    }


def rust(day: dict[str, Any]) -> np.ndarray:
    spec = cems.StackSpec([K_CO2, 1e-6], flatline_minutes=30, repeat_packets=0)
    n = day["t"].size
    n_flag = np.full(n, ord("N"), np.uint8)
    fp = np.zeros(n, np.uint64)
    out = []
    for flow, values in zip(day["flow"], day["values"], strict=True):
        p = cems.StackPipeline(spec)
        _, _, res = p.push_samples(day["t"], flow, n_flag, values, day["flags"], fp)
        closed = p.close_until(int(day["t"][-1]) + 60_000)
        mass = np.concatenate([res["hours"]["measured_mass"], closed["hours"]["measured_mass"]])
        var = np.concatenate([res["hours"]["var"], closed["hours"]["var"]])
        out.append(np.stack([mass[var == 1], mass[var == 2]]))
    return np.array(out)


def reference(day: dict[str, Any]) -> np.ndarray:
    stacks, n = day["flow"].shape
    # Every stack at once: stack-major minute keys.
    t = np.tile(day["t"], stacks) + np.repeat(np.arange(stacks), n) * (1_000_000 * 3_600_000)
    flags = np.full(t.size, ord("N"), np.uint8)
    minutes, q = minute_means(t, day["flow"].ravel() * 3600, flags)
    _, co2 = minute_means(t, day["co2"].ravel(), flags)
    _, so2 = minute_means(t, day["so2"].ravel(), flags)
    masses = [hourly_mass(minutes, q, c, k).mass for c, k in ((co2, K_CO2), (so2, 1e-6))]
    return np.stack(masses).reshape(2, stacks, 24).transpose(1, 0, 2)


def _record_rate(benchmark: BenchmarkFixture, day: dict[str, Any]) -> None:
    if benchmark.stats is not None:
        rate = day["flow"].size / benchmark.stats.stats.median
        benchmark.extra_info["samples_per_s"] = round(rate)


def test_rust_pipeline(benchmark: BenchmarkFixture, day: dict[str, Any]) -> None:
    benchmark.group = f"cems-hourly-{day['name']}"
    got = benchmark(rust, day)
    np.testing.assert_allclose(got, reference(day), rtol=1e-9)
    _record_rate(benchmark, day)


def test_numpy_reference(benchmark: BenchmarkFixture, day: dict[str, Any]) -> None:
    benchmark.group = f"cems-hourly-{day['name']}"
    got = benchmark(reference, day)
    assert got.shape == (day["flow"].shape[0], 2, 24) and np.isfinite(got).all()
    _record_rate(benchmark, day)
