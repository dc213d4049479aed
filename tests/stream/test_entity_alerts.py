"""Alert rules on entity products: judged on closed periods after a roll-up cycle, once each,
across restarts; budgets follow the entity's local calendar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config, load_config
from carbonstream.products import entity_specs, meters_interval_spec
from storage.alert_rules import AlertRule
from storage.alerts import AlertStore
from storage.metadata import STATUS_ZARR, MetadataDB
from storage.products import ENTITIES_AXIS, METERS_AXIS
from storage.zarr_store import ProductStore, ProductWriter, RegistryLabels
from stream.entity_alerts import EntityAlerts
from stream.rollup import RollupMaterializer

S = 10**9
HOUR = 3600 * S
T0 = 1_772_323_200 * S  # 2026-03-01T00:00Z

CONFIG = """
[storage]
data_dir = "{data_dir}"
[products.meters_interval]
resolution_s = 3600
chunk_streams = 4
chunk_time = 96
[rollups]
utc_offset = "+08:00"
chunk_entities = 4
[connectors.meter_simulator]
enabled = false
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.replace("{data_dir}", str(tmp_path / "data")))
    config = load_config(path, environ={})
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(
        ENTITIES_AXIS,
        {"city": {"kind": "city", "parent": None}, "plant": {"kind": "site", "parent": "city"}},
    )
    db.register_streams(
        METERS_AXIS,
        {
            "m-plant": {"entity": "plant", "commodity": "electricity", "unit": "kWh"},
            "m-city": {"entity": "city", "commodity": "electricity", "unit": "kWh"},
        },
    )
    db.close()
    return config


def store_meters(config: Config, co2: dict[str, np.ndarray], first_slot: int) -> int:
    """Stores hourly CO2 per meter from `first_slot` on, flushed as the flow's sink does (chunks
    marked dirty, the newest slot published); returns the slot after the last."""
    layout = config.storage.layout
    spec = meters_interval_spec(config)
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(METERS_AXIS)}
    writer = ProductWriter(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), RegistryLabels(db, spec)
    )
    n = 0
    for meter, values in co2.items():
        n = values.size
        writer.stage(
            np.full(n, rows[meter], np.int64),
            first_slot + np.arange(n, dtype=np.int64),
            {
                "consumption": values * 2,
                "co2": values,
                "coverage": np.ones(n, np.float32),
                "reading": np.full(n, np.nan),
            },
        )
    db.mark_dirty(spec.name, writer.flush().chunks)
    db.put_status(STATUS_ZARR, f"{spec.name}#test", {"max_slot": first_slot + n - 1})
    db.close()
    return first_slot + n


def cycle(config: Config, alerts: EntityAlerts) -> list[tuple[str, str, int]]:
    stats = RollupMaterializer(config).run_once()
    return [(e.transition, e.subject, e.period_ns) for e in alerts.evaluate(stats.closed_before_ns)]


def put_rule(config: Config, **spec: object) -> None:
    store = AlertStore(config.storage.layout.metadata_db)
    store.put_rules([AlertRule.model_validate(spec)], "api")
    store.close()


def test_an_entity_threshold_fires_and_resolves_once_on_closed_periods(config: Config) -> None:
    put_rule(
        config,
        id="city-hourly",
        kind="threshold",
        product="entities/interval",
        variable="co2",
        subject="city",
        threshold=100.0,
        clear=80.0,
    )
    alerts = EntityAlerts(config)
    slot0 = meters_interval_spec(config).slot_of(T0)
    # city = plant + its own meter: hours 5-7 breach (105), hour 8 (90) stays firing
    # (hysteresis), hour 9 (40) resolves.
    plant = np.array([40, 40, 40, 40, 40, 95, 95, 95, 80, 30, 30, 30], dtype=np.float64)
    own = np.full(12, 10.0)
    end = store_meters(config, {"m-plant": plant[:7], "m-city": own[:7]}, slot0)
    # Hours 0-5 are closed (hour 6 is the newest, open): the breach of hour 5 fires.
    assert cycle(config, alerts) == [("firing", "city", T0 + 5 * HOUR)]
    assert cycle(config, alerts) == []  # nothing new: judged once

    # A restarted evaluator resumes from the stored state: hours 6-10 closed, one resolution.
    store_meters(config, {"m-plant": plant[7:], "m-city": own[7:]}, end)
    alerts.close()
    restarted = EntityAlerts(config)
    assert cycle(config, restarted) == [("resolved", "city", T0 + 9 * HOUR)]
    assert cycle(config, restarted) == []

    store = AlertStore(config.storage.layout.metadata_db)
    events = store.events_after(0)
    assert [(e["transition"], e["labels"]) for e in events] == [
        ("firing", {"entity": "city"}),
        ("resolved", {"entity": "city"}),
    ]
    assert events[0]["value"] == pytest.approx(105.0)
    store.close()


def test_a_monthly_quota_on_track_to_be_exceeded_fires_on_the_local_day(config: Config) -> None:
    # Quota 310 t for March (local, UTC+8): 9 a day for ten days projects 279; 15 a day after
    # that reaches 310 on day 12 (not above) and 321.9 on day 13, which fires.
    put_rule(
        config,
        id="plant-quota",
        kind="budget",
        product="entities/day",
        variable="co2",
        subject="plant",
        threshold=310.0,
        budget_period="month",
    )
    alerts = EntityAlerts(config)
    spec = meters_interval_spec(config)
    local_march = T0 - 8 * HOUR
    days = 35  # into April: the new month closes the March budget alert
    daily = np.array([9.0] * 10 + [15.0] * 21 + [9.0] * (days - 31))  # April on track again
    hourly = np.repeat(daily / 24, 24)
    day = entity_specs(config)["entities/day"]
    assert day.slot_start_ns(day.slot_of(local_march)) == local_march
    # Twenty days and the first hour of the 21st: days 1-20 are closed.
    split = 20 * 24 + 1
    end = store_meters(
        config,
        {"m-plant": hourly[:split], "m-city": np.zeros(split)},
        spec.slot_of(local_march),
    )
    assert cycle(config, alerts) == [("firing", "plant", local_march + 12 * 24 * HOUR)]
    store_meters(config, {"m-plant": hourly[split:], "m-city": np.zeros(hourly.size - split)}, end)
    assert cycle(config, alerts) == [("resolved", "plant", local_march + 31 * 24 * HOUR)]


def test_a_rule_on_an_unknown_variable_is_skipped_not_fatal(config: Config) -> None:
    put_rule(
        config,
        id="bad",
        product="entities/interval",
        variable="no_such_variable",
        threshold=1.0,
    )
    put_rule(
        config,
        id="good",
        product="entities/interval",
        variable="co2",
        subject="plant",
        threshold=50.0,
    )
    alerts = EntityAlerts(config)
    slot0 = meters_interval_spec(config).slot_of(T0)
    store_meters(config, {"m-plant": np.array([60.0, 60.0]), "m-city": np.zeros(2)}, slot0)
    assert cycle(config, alerts) == [("firing", "plant", T0)]
