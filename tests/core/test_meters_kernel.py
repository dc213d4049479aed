"""The meters kernel through its Python binding: arrays in and out, errors mapped, state resumable.
(The arithmetic itself is tested in core-rs/tests/meters_counter.rs.)"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from benchmarks.reference.meters import interval_consumption
from carbonstream.core import CoreError, InputError, StateError, meters

MIN = 60 * 10**9
ORIGIN = 1_767_225_600 * 10**9  # 2026-01-01


def readings(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = ORIGIN + np.cumsum(rng.integers(5, 40, n)) * 10**9
    v = 1000 + np.cumsum(rng.uniform(0, 0.5, n))
    return t.astype(np.int64), v


def run(
    it: meters.IntervalIntegrator, t: np.ndarray, v: np.ndarray, row: int = 3, factor: float = 0.5
):  # type: ignore[no-untyped-def]
    return it.integrate(
        np.full(t.size, row, np.uint32), np.zeros(t.size, np.uint32), t, v, np.full(t.size, factor)
    )


def test_matches_the_numpy_reference() -> None:
    t, v = readings(500)
    it = meters.IntervalIntegrator(ORIGIN, MIN, 15 * MIN)
    (rows, slots, cons, co2, cov, _reading, closed), status = run(it, t, v)
    assert not closed[-1] and closed[:-1].all(), "only the last period is still open"
    assert set(status.tolist()) <= {0, 2}
    ref_slots, ref_cons, ref_cov = interval_consumption(t, v, ORIGIN, MIN)
    np.testing.assert_array_equal(slots[cov > 0], ref_slots[ref_cov > 0])
    np.testing.assert_allclose(cons[cov > 0], ref_cons[ref_cov > 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cov[cov > 0], ref_cov[ref_cov > 0], rtol=1e-6)
    np.testing.assert_allclose(co2[cov > 0], 0.5 * cons[cov > 0], rtol=1e-12)
    assert rows.dtype == np.uint32 and set(rows.tolist()) == {3}


def test_snapshot_restores_through_python() -> None:
    t, v = readings(200)
    whole = meters.IntervalIntegrator(ORIGIN, MIN, 15 * MIN)
    expected, _ = run(whole, t, v)
    first = meters.IntervalIntegrator(ORIGIN, MIN, 15 * MIN)
    run(first, t[:90], v[:90])
    resumed = meters.IntervalIntegrator.restore(first.snapshot(), ORIGIN, MIN, 15 * MIN)
    assert len(resumed) == 1
    got, _ = run(resumed, t[90:], v[90:])
    # The resumed tail reproduces the last cells of the uninterrupted run.
    n = got[0].size
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b[-n:])


def test_errors_are_typed_and_say_what_is_wrong() -> None:
    with pytest.raises(InputError, match="grid step must be positive"):
        meters.IntervalIntegrator(ORIGIN, 0, MIN)
    with pytest.raises(InputError, match="rollover must be a positive finite"):
        meters.IntervalIntegrator(ORIGIN, MIN, MIN, rollover=-1.0)
    it = meters.IntervalIntegrator(ORIGIN, MIN, MIN)
    with pytest.raises(InputError, match="input columns differ in length"):
        it.integrate(
            np.zeros(2, np.uint32),
            np.zeros(2, np.uint32),
            np.zeros(1, np.int64),
            np.zeros(2),
            np.zeros(2),
        )
    with pytest.raises(StateError, match="another grid"):
        meters.IntervalIntegrator.restore(it.snapshot(), ORIGIN, 2 * MIN, MIN)
    with pytest.raises(StateError, match="corrupt"):
        meters.IntervalIntegrator.restore(b"garbage", ORIGIN, MIN, MIN)
    assert issubclass(InputError, CoreError) and issubclass(CoreError, ValueError)
    with pytest.raises(TypeError):
        it.integrate(
            np.zeros(1, np.int64),  # type: ignore[arg-type]
            np.zeros(1, np.uint32),
            np.zeros(1, np.int64),
            np.zeros(1),
            np.zeros(1),
        )


def test_integrators_run_from_several_threads() -> None:
    """Each thread owns its integrator; the kernel releases the GIL, so this must be safe and
    give the same results as running them one after the other."""
    t, v = readings(20_000, seed=1)
    expected, _ = run(meters.IntervalIntegrator(ORIGIN, MIN, 15 * MIN), t, v)
    results: list[tuple[np.ndarray, ...]] = []

    def work() -> None:
        got, _ = run(meters.IntervalIntegrator(ORIGIN, MIN, 15 * MIN), t, v)
        results.append(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for got in results:
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
