"""The CEMS kernels through the Python binding: batches in, minutes/hours/days out, errors mapped,
state resumable. (The formulas and rules are tested in core-rs/tests/cems_*.rs.)"""

from __future__ import annotations

import numpy as np
import pytest

from carbonstream.core import InputError, StateError, cems

T0_MS = 1_704_038_400_000  # 2024-01-01 00:00 +08:00
N = ord("N")


def spec(**kw: object) -> cems.StackSpec:
    # SO2 (mg/m3), CO2 (%), O2 (auxiliary); flow sent in m3/s.
    args: dict[str, object] = {"flatline_minutes": 0, "repeat_packets": 0} | kw
    return cems.StackSpec([1e-6, cems.mass_factor("%"), float("nan")], **args)  # type: ignore[arg-type]


def samples(hours: int, step_s: int = 20) -> dict[str, np.ndarray]:
    n = hours * 3600 // step_s
    i = np.arange(n)
    phase = np.sin(i / n * 2 * np.pi)
    return {
        "t": T0_MS + i * step_s * 1000,
        "flow": 14.0 + phase,  # m3/s
        "flow_flag": np.full(n, N, np.uint8),
        "values": np.stack([30 + 5 * phase, 11 + 0.5 * phase, 6 + phase], axis=1),
        "flags": np.full((n, 3), N, np.uint8),
        "fp": np.zeros(n, np.uint64),
    }


def push(p: cems.StackPipeline, s: dict[str, np.ndarray], sel: slice = slice(None)):  # type: ignore[no-untyped-def]
    return p.push_samples(
        s["t"][sel],
        s["flow"][sel],
        s["flow_flag"][sel],
        np.ascontiguousarray(s["values"][sel]),
        np.ascontiguousarray(s["flags"][sel]),
        s["fp"][sel],
    )


def test_hours_close_with_flow_weighted_mass() -> None:
    p = cems.StackPipeline(spec())
    s = samples(3)
    status, messages, out = push(p, s)
    assert not status.any() and messages == {}
    closed = p.close_until(T0_MS + 3 * 3_600_000)
    hours = {k: np.concatenate([out["hours"][k], closed["hours"][k]]) for k in out["hours"]}
    assert sorted(set(hours["var"].tolist())) == [0, 1, 2, 3]
    # An independent computation of hour 0's CO2: minute means, then sum of k C Q / 60.
    minute = (s["t"] - T0_MS) // 60_000
    sel = minute < 60
    q = np.bincount(minute[sel], s["flow"][sel]) / np.bincount(minute[sel]) * 3600
    c = np.bincount(minute[sel], s["values"][sel, 1]) / np.bincount(minute[sel])
    want = float(np.sum(cems.mass_factor("%") * c * q / 60))
    got = hours["measured_mass"][(hours["var"] == 2) & (hours["hour"] == T0_MS // 3_600_000)]
    assert got[0] == pytest.approx(want, rel=1e-12)
    # Auxiliary O2 has an hourly average and no mass; valid hours are resolved as measured.
    o2 = (hours["var"] == 3) & (hours["hour"] == T0_MS // 3_600_000)
    o2_minutes = np.bincount(minute[sel], s["values"][sel, 2]) / np.bincount(minute[sel])
    assert hours["value"][o2][0] == pytest.approx(np.sum(o2_minutes * q) / np.sum(q), rel=1e-12)
    assert np.isnan(hours["measured_mass"][o2][0])
    resolved = {
        k: np.concatenate([out["resolved"][k], closed["resolved"][k]]) for k in out["resolved"]
    }
    assert set(resolved["rule"].tolist()) == {0} and set(resolved["var"].tolist()) == {1, 2}
    assert cems.RULES[0] == "measured"


def test_batches_split_anywhere_and_a_restore_give_the_same_state() -> None:
    s = samples(2)
    whole = cems.StackPipeline(spec())
    push(whole, s)
    parts = cems.StackPipeline(spec())
    n = s["t"].size
    for a, b in [(0, 7), (7, 100), (100, n // 2)]:
        push(parts, s, slice(a, b))
    resumed = cems.StackPipeline.restore(spec(), parts.snapshot())
    push(resumed, s, slice(n // 2, n))
    assert resumed.snapshot() == whole.snapshot()


def test_late_rows_are_refused_and_the_rest_used() -> None:
    p = cems.StackPipeline(spec())
    s = samples(2)
    push(p, s, slice(100, 200))  # 20 s apart: the open minute is now 199 // 3 = 66
    status, messages, _ = push(p, s, slice(150, 210))
    assert status[:48].tolist() == [1] * 48  # samples 150..197: before the open minute
    assert set(messages) == set(range(48)) and "late" in messages[0]
    assert not status[48:].any()


def test_bad_arguments_and_snapshots_are_named() -> None:
    with pytest.raises(InputError, match="policy"):
        cems.StackSpec([1e-6], policy="epa")
    with pytest.raises(InputError, match='rule "lookback_hours" is not a setting'):
        cems.StackSpec([1e-6], rules={"lookback_hours": 10})
    with pytest.raises(InputError, match="upper_limit has 2 values"):
        cems.StackSpec([1e-6], upper_limit=[1.0, 2.0])
    with pytest.raises(InputError, match="temperature"):
        cems.StackSpec([1e-6, float("nan")], flow_source="actual")
    p = cems.StackPipeline(spec())
    with pytest.raises(InputError, match="values has shape"):
        p.push_samples(
            np.zeros(2, np.int64),
            np.zeros(2),
            np.zeros(2, np.uint8),
            np.zeros((2, 2)),
            np.zeros((2, 3), np.uint8),
            np.zeros(2, np.uint64),
        )
    with pytest.raises(StateError, match="configuration"):
        cems.StackPipeline.restore(spec(policy="part75"), p.snapshot())
    with pytest.raises(StateError):
        cems.StackPipeline.restore(spec(), b"junk")


def test_unit_factors_and_the_accounting_method() -> None:
    assert cems.mass_factor("mg/m3") == 1e-6
    # 1 % CO2 = 19,635 mg/m3; 12 % at 1.0e6 m3/h -> 235.6 t/h (reference/cems).
    assert cems.mass_factor("%") * 12 * 1e6 / 1000 == pytest.approx(235.6, abs=0.05)
    assert cems.mass_factor("ppm", molar_mass_g_mol=64.06) == pytest.approx(64.06 / 22.4 * 1e-6)
    assert cems.mass_factor("part75_co2") == 5.7e-7
    with pytest.raises(InputError, match="molar_mass"):
        cems.mass_factor("ppm")
    gas = cems.fuel_co2_t_per_unit(389.31 / 1e4, 15.3, 0.99)
    assert gas * 1000 == pytest.approx(2.1622, abs=1e-4)  # kg CO2 per Nm3
    coal = (100.0, 20.908, 26.37, 0.94)
    assert cems.accounting_co2_t([coal]) == pytest.approx(190.03, abs=0.01)
    assert cems.compare(110.0, 100.0) == (pytest.approx(0.1), False)  # exactly 10 % agrees
    err, flagged = cems.compare(111.0, 100.0, 0.10)
    assert flagged and err == pytest.approx(0.11)
    with pytest.raises(InputError, match="oxidation"):
        cems.fuel_co2_t_per_unit(1.0, 1.0, 1.5)
