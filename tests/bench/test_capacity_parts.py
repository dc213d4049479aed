"""The parts of `carbonstream bench capacity` that do not need a running service: the fleet's
configuration (through the real loader), the search, the metrics parser, the report."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from carbonstream.bench.alert_latency import RULE_ID, LatencyStats, probe_config, probe_ids
from carbonstream.bench.capacity import (
    StepResult,
    _first_live_closes,
    _judge,
    measured_window_s,
)
from carbonstream.bench.fleet import Fleet, push_ids, service_config
from carbonstream.bench.report import table
from carbonstream.bench.search import PRECISION, largest_realtime
from carbonstream.bench.service import metric_sum
from carbonstream.config import load_config
from carbonstream.products import product_specs
from storage.metadata import STATUS_ZARR, MetadataDB

GATEWAY = {
    "name": "gw-0",
    "host": "127.0.0.1",
    "port": 15020,
    "devices": [{"meter": "mb-0001", "unit_id": 1, "register_map": "sdm630"}],
}


def test_the_fleet_configuration_is_one_the_service_accepts(tmp_path: Path) -> None:
    fleet = Fleet(towers=3, stacks=2, meters=10, modbus_share=0.1)
    text = service_config(fleet, [GATEWAY], 2.0, 4) + probe_config(5)
    path = tmp_path / "c.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path}"\n' + text)
    config = load_config(path, environ={})
    assert config.ec.simulator.count == 3 and config.ec.simulator.sampling_hz == 20.0
    assert config.connectors.cems_simulator.count == 2
    assert config.connectors.cems_simulator.rate == 1.0  # wall clock, never accelerated
    assert config.connectors.cems_simulator.realtime_interval_s == 1.0
    assert config.connectors.modbus.simulated_clock is None
    assert [d.interval_s for g in config.connectors.modbus.gateways for d in g.devices] == [60.0]
    declared = [m.id for m in config.streams.meters]
    assert declared == push_ids(fleet.push_meters) + probe_ids(5)
    assert fleet.modbus_meters == 1 and fleet.push_meters == 9
    assert [r.id for r in config.alerts.rules] == [RULE_ID]


def test_the_warm_up_lasts_until_every_product_stored_a_period_closed_live(
    tmp_path: Path,
) -> None:
    """The groups exist as soon as the flow starts: the warm-up waits for what the first live
    close does, a stored period that closed while the service ran, in every product."""
    fleet = Fleet(towers=0, stacks=2, meters=10, modbus_share=0.1)
    path = tmp_path / "c.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n'
        + service_config(fleet, [GATEWAY], 2.0, 4)
        + probe_config(5)
    )
    config = load_config(path, environ={})
    config.storage.layout.data_dir.mkdir(parents=True, exist_ok=True)
    db = MetadataDB(config.storage.layout.metadata_db)
    closed_live = _first_live_closes(SimpleNamespace(config_path=path), fleet)  # type: ignore[arg-type]
    specs = product_specs(config)

    def stored(product: str, partition: int, periods_ago: int) -> None:
        slot = specs[product].slot_of(time.time_ns()) - periods_ago
        db.put_status(STATUS_ZARR, f"{product}#zarr-{partition:04d}", {"max_slot": slot})

    assert not closed_live()
    stored("meters/interval", 0, 1440)  # the alert probe's readings, stamped a day back
    stored("cems/minute", 1, 1)
    assert not closed_live()
    stored("meters/interval", 2, 1)  # the fleet's meters, the minute just closed
    assert closed_live()
    db.close()


@pytest.mark.parametrize("limit", [1, 20, 300, 5_000])
def test_the_search_finds_the_largest_real_time_size(limit: int) -> None:
    tried: list[int] = []

    def run(fleet: Fleet) -> StepResult:
        tried.append(fleet.stacks)
        return StepResult(fleet, realtime=fleet.stacks <= limit)

    found, steps = largest_realtime(lambda n: Fleet(stacks=n), run, 64, 4_096, 3_600.0)
    assert len(steps) == len(tried)
    expected = min(limit, 4_096)
    assert found is not None and found <= expected
    failing = [n for n in tried if n > limit]
    if failing and expected < 4_096:
        assert min(failing) / found <= PRECISION or min(failing) - found <= 1


def test_a_size_that_never_passes_is_reported_as_none() -> None:
    found, steps = largest_realtime(
        lambda n: Fleet(meters=n), lambda f: StepResult(f), 8, 100, 3_600.0
    )
    assert found is None and [s.fleet.meters for s in steps] == [8, 4, 2, 1]


def test_metric_sum_adds_the_samples_whose_labels_match() -> None:
    text = "\n".join(
        [
            "# HELP carbonstream_samples_ingested_total x",
            'carbonstream_samples_ingested_total{source="modbus"} 10.0',
            'carbonstream_samples_ingested_total{source="push.meters"} 5.0',
            'carbonstream_samples_ingested_created{source="modbus"} 1.7e9',
            'carbonstream_hj212_packets_total{cn="2011",site="a"} 3.0',
            'carbonstream_hj212_packets_total{cn="2051",site="a"} 7.0',
        ]
    )
    assert metric_sum(text, "carbonstream_samples_ingested_total") == 15.0
    assert metric_sum(text, "carbonstream_samples_ingested_total", source="modbus") == 10.0
    assert metric_sum(text, "carbonstream_hj212_packets_total", cn="2011") == 3.0


def test_a_step_is_judged_on_lag_delivery_and_alert_latency() -> None:
    ok = StepResult(Fleet(stacks=1), lag_s=[1.0, 1.2, 0.9, 1.1], delivered={"cems": 0.99})
    ok.alert = {"p99_s": 0.3, "missing": 0}
    _judge(ok)
    assert ok.realtime and not ok.reasons

    growing = StepResult(Fleet(stacks=1), lag_s=[1.0, 2.0, 4.0, 6.0, 8.0, 9.5])
    growing.alert = {"p99_s": 1.5, "missing": 2, "slow_at_s": [12.0, 13.5, 14.1, 55.2]}
    growing.delivered = {"cems": 0.5}
    _judge(growing)
    assert not growing.realtime
    assert len(growing.reasons) == 4  # growing lag, half delivered, alerts missing, p99
    assert growing.reasons[-1].endswith("(pushes >= 1 s at 12-14, 55 s into the window)")
    assert "| 0 | 1 | 0 (0/0) |" in table([ok, growing])


def test_a_window_with_meters_holds_whole_meter_intervals() -> None:
    """A 90-s window over meters reading once a minute counted 84-86 % of their readings in
    every meters step of a sweep; whole minutes count each meter's readings once per minute."""
    assert measured_window_s(Fleet(meters=1000), 90.0) == 120.0
    assert measured_window_s(Fleet(meters=1000), 60.0) == 60.0
    assert measured_window_s(Fleet(towers=10, stacks=10, meters=5), 61.0) == 120.0
    assert measured_window_s(Fleet(towers=10), 90.0) == 90.0


def test_slow_alerts_are_listed_by_when_they_were_pushed() -> None:
    stats = LatencyStats([0.2, 1.5, 2.0, 0.9], 0, [100.0, 112.0, 112.5, 130.0])
    assert stats.slow_at_s() == [12.0, 12.5]
    assert stats.summary()["slow_at_s"] == [12.0, 12.5]
