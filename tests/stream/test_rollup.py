"""Entity roll-ups: every entity equals the sum of the meters below it, for every interval, day
and month; missing stays missing; recomputation is idempotent and incremental."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config, load_config
from carbonstream.products import entity_specs, meters_interval_spec
from storage.metadata import MetadataDB
from storage.products import ENTITIES_AXIS, METERS_AXIS
from storage.zarr_store import ProductReader, ProductStore, ProductWriter, RegistryLabels
from stream.rollup import RollupMaterializer

S = 10**9
MIN = 60 * S
T0 = 1_772_323_200 * S  # 2026-03-01T00:00Z

CONFIG = """
[storage]
data_dir = "{data_dir}"
[products.meters_interval]
chunk_streams = 4
chunk_time = 60
[rollups]
utc_offset = "{offset}"
chunk_entities = 4
[connectors.meter_simulator]
enabled = false
"""


def config_in(directory: Path, offset: str = "+00:00") -> Config:
    path = directory / "c.toml"
    path.write_text(
        CONFIG.replace("{data_dir}", str(directory / "data")).replace("{offset}", offset)
    )
    config = load_config(path, environ={})
    prepare_data_dir(config)
    return config


def write_meters(
    config: Config, values: dict[str, tuple[np.ndarray, np.ndarray]], slot0: int
) -> None:
    """Stores (consumption, co2) per meter from slot0 on, and marks the chunks dirty as the flow's
    sink does."""
    layout = config.storage.layout
    spec = meters_interval_spec(config)
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(METERS_AXIS)}
    w = ProductWriter(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), RegistryLabels(db, spec)
    )
    for m, (cons, co2) in values.items():
        n = cons.size
        w.stage(
            np.full(n, rows[m], np.int64),
            slot0 + np.arange(n, dtype=np.int64),
            {
                "consumption": cons,
                "co2": co2,
                "coverage": np.where(np.isnan(cons), 0, 1).astype(np.float32),
                "reading": np.full(n, np.nan),
            },
        )
    db.mark_dirty(spec.name, w.flush().chunks)
    db.close()


def read_entities(
    config: Config, product: str, eids: list[str], slot0: int, slot1: int
) -> dict[str, np.ndarray]:
    layout = config.storage.layout
    spec = entity_specs(config)[product]
    db = MetadataDB(layout.metadata_db)
    rows = [s.idx for s in db.streams(ENTITIES_AXIS, eids)]
    order = {s.id: s.idx for s in db.streams(ENTITIES_AXIS, eids)}
    db.close()
    assert rows, "entities registered"
    reader = ProductReader(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), refresh_s=0
    )
    return reader.read([order[e] for e in eids], slot0, slot1)


def nansum_rows(rows: list[np.ndarray], width: int) -> np.ndarray:
    if not rows:
        return np.full(width, np.nan)
    block = np.vstack(rows)
    out = np.nansum(block, axis=0)
    out[np.isnan(block).all(axis=0)] = np.nan
    return out


@st.composite
def forests(draw: st.DrawFn) -> tuple[dict[str, str | None], dict[str, str | None], dict[str, str]]:
    """Random entity forests, random meters on random entities (or none), random commodities."""
    n_entities = draw(st.integers(1, 10))
    parents: dict[str, str | None] = {}
    for i in range(n_entities):
        parent = draw(st.sampled_from([None, *parents])) if parents else None
        parents[f"e{i}"] = parent
    n_meters = draw(st.integers(1, 14))
    meter_entity = {f"m{j:02d}": draw(st.sampled_from([None, *parents])) for j in range(n_meters)}
    commodity = {m: draw(st.sampled_from(["electricity", "natural_gas"])) for m in meter_entity}
    return parents, meter_entity, commodity


def descendants(parents: dict[str, str | None], eid: str) -> set[str]:
    out = {eid}
    changed = True
    while changed:
        changed = False
        for e, p in parents.items():
            if p in out and e not in out:
                out.add(e)
                changed = True
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forest=forests(), seed=st.integers(0, 2**32 - 1))
def test_every_entity_is_the_sum_of_the_meters_below_it(
    forest: tuple[dict[str, str | None], dict[str, str | None], dict[str, str]], seed: int
) -> None:
    parents, meter_entity, commodity = forest
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        config = config_in(Path(tmp), "+08:00")
        db = MetadataDB(config.storage.layout.metadata_db)
        db.register_streams(
            ENTITIES_AXIS, {e: {"kind": "x", "parent": p} for e, p in parents.items()}
        )
        unit = {"electricity": "kWh", "natural_gas": "Nm3"}
        db.register_streams(
            METERS_AXIS,
            {
                m: {"entity": e, "commodity": commodity[m], "unit": unit[commodity[m]]}
                for m, e in meter_entity.items()
            },
        )
        db.close()
        spec = meters_interval_spec(config)
        slot0 = spec.slot_of(T0) + int(rng.integers(0, 400))  # somewhere in a day, local UTC+8
        width = 150
        values = {}
        for m in meter_entity:
            cons = rng.uniform(0, 5, width)
            cons[rng.uniform(size=width) < 0.2] = np.nan  # gaps stay missing
            values[m] = (cons, cons * (0.5 if commodity[m] == "electricity" else 2.16))
        write_meters(config, values, slot0)

        RollupMaterializer(config).run_once()

        eids = list(parents)
        got = read_entities(config, "entities/interval", eids, slot0, slot0 + width)
        for i, e in enumerate(eids):
            below = descendants(parents, e)
            members = [m for m, me in meter_entity.items() if me in below]
            co2 = nansum_rows([values[m][1] for m in members], width)
            elec = nansum_rows(
                [values[m][0] for m in members if commodity[m] == "electricity"], width
            )
            gas = nansum_rows(
                [values[m][0] for m in members if commodity[m] == "natural_gas"], width
            )
            np.testing.assert_allclose(got["co2"][i], co2, rtol=1e-12, equal_nan=True, err_msg=e)
            np.testing.assert_allclose(got["electricity"][i], elec, rtol=1e-12, equal_nan=True)
            np.testing.assert_allclose(got["natural_gas"][i], gas, rtol=1e-12, equal_nan=True)
            scope1 = nansum_rows(
                [values[m][1] for m in members if commodity[m] == "natural_gas"], width
            )
            np.testing.assert_allclose(got["co2_scope1"][i], scope1, rtol=1e-12, equal_nan=True)
            reporting = (
                sum((~np.isnan(values[m][0])).astype(int) for m in members) if members else 0
            )
            np.testing.assert_array_equal(got["meters_reporting"][i], reporting)

        # Days (local UTC+8) are the sums of their intervals; months the sums of their days.
        day_spec = entity_specs(config)["entities/day"]
        interval_spec = entity_specs(config)["entities/interval"]
        d0 = day_spec.slot_of(interval_spec.slot_start_ns(slot0))
        d1 = day_spec.slot_of(interval_spec.slot_start_ns(slot0 + width) - 1) + 1
        days = read_entities(config, "entities/day", eids, d0, d1)
        for d in range(d0, d1):
            a = interval_spec.slot_of(day_spec.slot_start_ns(d))
            b = interval_spec.slot_of(day_spec.slot_start_ns(d + 1))
            whole = read_entities(config, "entities/interval", eids, a, b)
            for i in range(len(eids)):
                expected = (
                    nansum_rows([whole["co2"][i]], 1)
                    if np.isnan(whole["co2"][i]).all()
                    else np.nansum(whole["co2"][i])
                )
                np.testing.assert_allclose(
                    days["co2"][i, d - d0], expected, rtol=1e-9, equal_nan=True
                )


def test_recomputation_is_idempotent_and_follows_changes(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(
        ENTITIES_AXIS, {"city": {"kind": "city"}, "ent": {"kind": "enterprise", "parent": "city"}}
    )
    db.register_streams(
        METERS_AXIS,
        {"a": {"entity": "ent"}, "b": {"entity": "city"}, "c": {"entity": "ent", "unit": "MWh"}},
    )
    slot0 = meters_interval_spec(config).slot_of(T0)
    ones = np.ones(10)
    write_meters(
        config, {"a": (ones, ones * 0.5), "b": (2 * ones, ones), "c": (ones, ones * 500)}, slot0
    )
    m = RollupMaterializer(config)
    first = m.run_once()
    assert first.chunks == 1 and first.entities == 2
    assert db.dirty("meters/interval") == [], "markers are cleared once rolled up"
    got = read_entities(config, "entities/interval", ["city", "ent"], slot0, slot0 + 10)
    np.testing.assert_array_equal(got["co2"][0], np.full(10, 501.5))
    # The MWh meter adds its CO2 but not its consumption (not the canonical kWh).
    np.testing.assert_array_equal(got["electricity"][1], ones)
    np.testing.assert_array_equal(got["electricity"][0], 3 * ones)
    np.testing.assert_array_equal(got["completeness"][0], np.ones(10, np.float32))

    store = config.storage.layout.zarr_store
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file() and "entities" in str(p)}
    db.mark_dirty("meters/interval", [(0, slot0 // 60)])
    assert m.run_once().chunks == 1
    after = {p: p.read_bytes() for p in store.rglob("*") if p.is_file() and "entities" in str(p)}
    assert before == after, "recomputing unchanged data rewrites identical bytes"

    # A late reading changes one meter's cell: the next cycle follows it up to the city.
    write_meters(config, {"b": (np.array([4.0]), np.array([3.0]))}, slot0 + 3)
    m.run_once()
    got = read_entities(config, "entities/interval", ["city"], slot0, slot0 + 10)
    assert got["co2"][0, 3] == 503.5 and got["co2"][0, 2] == 501.5

    # The registry changes under the same materializer (which keeps its tree between cycles):
    # b moves from the city to the enterprise, and a new meter d joins the enterprise.
    db.register_streams(METERS_AXIS, {"b": {"entity": "ent"}, "d": {"entity": "ent"}})
    write_meters(config, {"d": (ones, ones)}, slot0)
    m.run_once()
    got = read_entities(config, "entities/interval", ["city", "ent"], slot0, slot0 + 10)
    ent_co2 = np.full(10, 0.5 + 1.0 + 500.0 + 1.0)
    ent_co2[3] = 0.5 + 3.0 + 500.0 + 1.0
    np.testing.assert_array_equal(got["co2"][1], ent_co2)
    np.testing.assert_array_equal(got["co2"][0], ent_co2)  # the city has only the enterprise
    ent_kwh = np.full(10, 1.0 + 2.0 + 1.0)
    ent_kwh[3] = 1.0 + 4.0 + 1.0
    np.testing.assert_array_equal(got["electricity"][1], ent_kwh)
    db.close()


def test_a_change_during_a_cycle_stays_dirty(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.mark_dirty("meters/interval", [(0, 7)])
    seen = db.dirty("meters/interval")
    db.mark_dirty("meters/interval", [(0, 7)])  # changed again while the cycle ran
    db.clear_dirty("meters/interval", seen)
    assert [(b, c) for b, c, _ in db.dirty("meters/interval")] == [(0, 7)]


def test_entities_without_meters_stay_missing_not_zero(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(
        ENTITIES_AXIS, {"city": {}, "empty": {"parent": "city"}, "full": {"parent": "city"}}
    )
    db.register_streams(METERS_AXIS, {"a": {"entity": "full"}})
    slot0 = meters_interval_spec(config).slot_of(T0)
    write_meters(config, {"a": (np.ones(5), np.ones(5))}, slot0)
    RollupMaterializer(config).run_once()
    got = read_entities(config, "entities/interval", ["city", "full", "empty"], slot0, slot0 + 5)
    np.testing.assert_array_equal(got["co2"][:2], np.ones((2, 5)))
    assert np.isnan(got["co2"][2]).all(), "an entity without meters has no data, not zeros"
    db.close()
