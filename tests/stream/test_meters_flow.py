"""The dataflow on real Bytewax runs: journal -> meter kernel -> Zarr, with dead letters.

A scripted scenario (normal meters, a wrapping register, green power, a regional factor, and one
row of each kind of bad input) is journaled, the flow runs to the end of the journal, and the
product must equal an independent reference computation, whatever the worker count, and whether
the flow ran once or stopped and resumed from its recovery snapshot in between.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pytest
from bytewax.recovery import RecoveryConfig
from bytewax.testing import cluster_main, run_main

from benchmarks.reference.meters import interval_consumption
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from carbonstream.products import meters_interval_spec
from storage.alerts import AlertStore
from storage.factors import seed_table_text
from storage.journal import Journal, JournalEntry
from storage.metadata import MetadataDB
from storage.records import METER_READINGS, encode_meter_readings
from storage.zarr_store import ProductReader, ProductStore
from stream.alert_state import RuleState, observe
from stream.dataflow import build_dataflow

S = 10**9
START = 1_772_323_200 * S  # 2026-03-01T00:00Z
STEP = 60 * S

METERS_TOML = (
    """
[journal]
partitions = 3
[flow]
sink_partitions = 2
[recovery]
snapshot_interval_s = 0.2
[products.meters_interval]
chunk_streams = 4
chunk_time = 16
[connectors.meter_simulator]
enabled = false
"""
    + "".join(f'[[streams.meters]]\nid = "m{i:02d}"\n' for i in range(7))
    + """
[[streams.meters]]
id = "m07"
commodity = "green_electricity"
basis = "market"
[[streams.meters]]
id = "m08"
rollover = 1000.0
[[streams.meters]]
id = "m09"
region = "CN-East"
[[alerts.rules]]
id = "m05-high"
product = "meters/interval"
variable = "consumption"
subject = "m05"
threshold = 0.8
clear = 0.6
"""
)


def seed_factor(energy_type: str, region: str, year: str, basis: str) -> float:
    for r in csv.DictReader(io.StringIO(seed_table_text())):
        if (r["energy_type"], r["region"], r["year"], r["basis"]) == (
            energy_type,
            region,
            year,
            basis,
        ):
            return float(r["factor"])
    raise KeyError((energy_type, region, year, basis))


# 2026 readings use the most recent published grid factors (2023); green power is zero.
FACTORS = {f"m{i:02d}": seed_factor("electricity", "CN", "2023", "location") for i in range(7)}
FACTORS |= {
    "m07": seed_factor("green_electricity", "*", "*", "market"),
    "m08": seed_factor("electricity", "CN", "2023", "location"),
    "m09": seed_factor("electricity", "CN-East", "2023", "location"),
}


@dataclass
class Scenario:
    """Journal records to append, the valid readings per meter and the expected dead letters."""

    records: list[tuple[str, list[str], list[int], list[float]]] = field(default_factory=list)
    valid: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    letters: dict[str, int] = field(default_factory=dict)


def build_scenario(seed: int = 7) -> Scenario:
    rng = np.random.default_rng(seed)
    sc = Scenario()
    per_meter: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i in range(10):
        m = f"m{i:02d}"
        t = START + np.cumsum(rng.integers(10, 50, 150)) * S
        v = np.round(np.cumsum(rng.uniform(0, 0.4, 150)), 3)
        v = v + (990.0 if m == "m08" else 500.0 * i)
        if m == "m08":
            v = np.mod(v, 1000.0)  # the register wraps at 1000
        per_meter[m] = (t.astype(np.int64), v)
        sc.valid[m] = per_meter[m]
    # Records: time windows of 10 minutes; each holds every meter's readings in the window,
    # shuffled (the flow sorts within a record).
    edges = START + np.arange(0, 100 * 60 + 1, 600) * S
    for a, b in itertools.pairwise(edges):
        ms, ts, vs = [], [], []
        for m, (t, v) in per_meter.items():
            sel = (t >= a) & (t < b)
            ms += [m] * int(sel.sum())
            ts += t[sel].tolist()
            vs += v[sel].tolist()
        order = rng.permutation(len(ms))
        sc.records.append(
            ("window", [ms[k] for k in order], [ts[k] for k in order], [vs[k] for k in order])
        )
    far_future = time.time_ns() + 2 * 86_400 * S
    t1 = per_meter["m01"][0]
    t3, v3 = per_meter["m03"]
    t4, v4 = per_meter["m04"]
    t5, v5 = per_meter["m05"]
    bad = [
        ("m01", int(t1[-1]) + 30 * S, float("nan"), "invalid"),
        ("m02", int(per_meter["m02"][0][-1]) + 30 * S, -5.0, "invalid"),
        ("ghost", START, 1.0, "unknown_meter"),
        ("m06", far_future, 1.0, "future"),
        ("m06", 1_559_347_200 * S, 1.0, "before_origin"),  # 2019-06-01, before the 2020 origin
        ("m03", int(t3[100]) + 1, float(v3[100]), "out_of_order"),
        ("m04", int(t4[-1]), float(v4[-1]) + 1.0, "conflict"),
        ("m05", int(t5[-1]), float(v5[-1]), None),  # an exact duplicate is ignored, not a letter
    ]
    for m, t, v, reason in bad:
        sc.records.append(("bad", [m], [t], [v]))
        if reason:
            sc.letters[reason] = sc.letters.get(reason, 0) + 1
    return sc


def append(config: Config, records: list[tuple[str, list[str], list[int], list[float]]]) -> None:
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    for source, ms, ts, vs in records:
        by_part: dict[int, list[int]] = {}
        for k, m in enumerate(ms):
            by_part.setdefault(journal.partition_for(m), []).append(k)
        for p, idx in sorted(by_part.items()):
            payload = encode_meter_readings(
                [ms[k] for k in idx], np.array([ts[k] for k in idx]), np.array([vs[k] for k in idx])
            )
            journal.append(p, [JournalEntry(source, METER_READINGS, payload)])
    journal.close()


def run_flow(config: Config, workers: int) -> None:
    flow = build_dataflow(config, stop_at_end=True)
    recovery = RecoveryConfig(str(config.storage.layout.recovery_dir))
    epoch = timedelta(seconds=config.recovery.snapshot_interval_s)
    if workers == 1:
        run_main(flow, epoch_interval=epoch, recovery_config=recovery)
    else:
        cluster_main(
            flow,
            [],
            0,
            epoch_interval=epoch,
            recovery_config=recovery,
            worker_count_per_proc=workers,
        )


def expected_cells(
    sc: Scenario, origin_ns: int, slot0: int, width: int
) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for m, (t, v) in sc.valid.items():
        e = {k: np.full(width, np.nan) for k in ("consumption", "co2", "coverage", "reading")}
        rollover = 1000.0 if m == "m08" else None
        slots, cons, cov = interval_consumption(t, v, origin_ns, STEP, rollover=rollover)
        j = slots - slot0
        e["coverage"][j] = cov
        e["consumption"][j] = np.where(cov > 0, cons, np.nan)
        e["co2"][j] = e["consumption"][j] * FACTORS[m]
        reading_slot = (t - origin_ns) // STEP - slot0
        e["reading"][reading_slot] = v  # later readings of a slot overwrite earlier ones
        e["coverage"][reading_slot] = np.nan_to_num(e["coverage"][reading_slot])
        out[m] = e
    return out


def check_store(config: Config, sc: Scenario) -> None:
    layout = config.storage.layout
    spec = meters_interval_spec(config)
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(spec.axis)}
    slot0 = spec.slot_of(START)
    width = 120
    got = ProductReader(ProductStore(layout.zarr_store, spec, layout.data_dir / "locks")).read(
        [rows[m] for m in sc.valid], slot0, slot0 + width
    )
    expected = expected_cells(sc, spec.origin_ns, slot0, width)
    for i, m in enumerate(sc.valid):
        for var in ("consumption", "co2", "coverage", "reading"):
            np.testing.assert_allclose(
                got[var][i],
                expected[m][var],
                rtol=1e-6,
                atol=1e-9,
                equal_nan=True,
                err_msg=f"{m} {var}",
            )
    counts = db.dead_letter_counts()
    assert {reason: n for (_, reason), n in counts.items()} == sc.letters
    db.close()
    check_alerts(config, expected["m05"], spec.origin_ns, slot0)


def check_alerts(config: Config, m05: dict[str, np.ndarray], origin_ns: int, slot0: int) -> None:
    """The alert history equals the rule applied to the closed periods of the reference (the last
    period of m05 is still open when the input ends: it is not judged)."""
    (rule,) = config.alerts.rules
    st = RuleState(rule.fingerprint())
    expected = []
    periods = np.flatnonzero(np.isfinite(m05["consumption"]))
    for j in periods[:-1]:
        start = origin_ns + (slot0 + int(j)) * STEP
        for e in observe(
            rule, "m05", st, slot0 + int(j), start, float(m05["consumption"][j]), STEP
        ):
            expected.append((e.alert_id, e.transition, e.rule_id, e.subject, e.period_ns))
    assert len(expected) >= 2, "the scenario crosses the threshold"
    store = AlertStore(config.storage.layout.metadata_db)
    assert store.history() == sorted(expected)
    store.close()


@pytest.fixture
def scenario_config(make_config: Callable[[str], Config]) -> Config:
    config = make_config(METERS_TOML)
    prepare_data_dir(config)
    return config


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_flow_matches_reference_for_any_worker_count(scenario_config: Config, workers: int) -> None:
    sc = build_scenario()
    append(scenario_config, sc.records)
    run_flow(scenario_config, workers)
    check_store(scenario_config, sc)


def test_stop_and_resume_gives_the_same_store(scenario_config: Config) -> None:
    sc = build_scenario()
    cut = len(sc.records) * 3 // 5
    append(scenario_config, sc.records[:cut])
    run_flow(scenario_config, workers=1)
    append(scenario_config, sc.records[cut:])
    run_flow(scenario_config, workers=2)
    check_store(scenario_config, sc)


def test_a_replayed_journal_changes_nothing(scenario_config: Config) -> None:
    """Running the whole journal again from offset 1 (as after losing every snapshot) rewrites the
    same cells with the same values and stores no dead letter twice."""
    sc = build_scenario()
    append(scenario_config, sc.records)
    run_flow(scenario_config, workers=1)
    layout = scenario_config.storage.layout
    for f in layout.recovery_dir.glob("*"):
        f.unlink()
    from bytewax.recovery import init_db_dir

    init_db_dir(layout.recovery_dir, scenario_config.recovery.partitions)
    run_flow(scenario_config, workers=1)
    check_store(scenario_config, sc)
