"""Publishing Modbus device health into a real SQLite metadata database: only the devices that
changed since the last publication are written, and a failed write loses none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.clock import RealClock
from connectors.modbus.config import DeviceSettings, GatewaySettings
from connectors.modbus.connector import _publish_once
from connectors.modbus.health import health_row
from connectors.modbus.poller import FleetPoller, ReadingBatch
from storage.metadata import MetadataDB


async def _ignore(batch: ReadingBatch) -> None:
    raise AssertionError("the poller is never run here")


def _poller(meters: int) -> FleetPoller:
    devices = [DeviceSettings(meter=f"m-{i}", unit_id=i + 1) for i in range(meters)]
    gateway = GatewaySettings(name="gw", host="127.0.0.1", devices=devices)
    return FleetPoller([gateway], RealClock(), _ignore)


def _updated(db: MetadataDB) -> dict[str, int]:
    return {r["meter"]: r["updated_ns"] for r in db.device_health()}


def test_only_changed_devices_are_written_again(tmp_path: Path) -> None:
    poller = _poller(3)
    db = MetadataDB(tmp_path / "m.sqlite")
    _publish_once(poller, db)  # every device, once: none was published yet
    first = _updated(db)
    assert sorted(first) == ["m-0", "m-1", "m-2"]
    assert {r["state"] for r in db.device_health()} == {"unknown"}

    m1 = next(t for t in poller.trackers() if t.meter == "m-1")
    m1.poll_ok(1_000, 42.0)
    _publish_once(poller, db)
    second = _updated(db)
    assert second["m-1"] > first["m-1"]
    assert {m: second[m] for m in ("m-0", "m-2")} == {m: first[m] for m in ("m-0", "m-2")}
    row = next(r for r in db.device_health() if r["meter"] == "m-1")
    assert (row["state"], row["last_good_ns"]) == ("ok", 1_000)
    assert db.device_states() == {"unknown": 2, "ok": 1}
    db.close()


def test_a_failed_publication_is_written_by_the_next(tmp_path: Path) -> None:
    poller = _poller(2)
    db = MetadataDB(tmp_path / "m.sqlite")
    _publish_once(poller, db)
    for t in poller.trackers():
        t.request_failed(5, "no response within 5 s")
        t.poll_failed()
    db.close()
    with pytest.raises(Exception):  # noqa: B017 - whatever a closed database raises
        _publish_once(poller, db)
    assert all(t.unpublished for t in poller.trackers())

    db = MetadataDB(tmp_path / "m.sqlite")
    _publish_once(poller, db)
    assert db.device_states() == {"degraded": 2}
    assert {r["last_error"] for r in db.device_health()} == {"no response within 5 s"}
    assert not any(t.unpublished for t in poller.trackers())
    db.close()


def test_a_row_is_the_trackers_state_in_the_tables_column_order() -> None:
    t = next(_poller(1).trackers())
    t.poll_ok(7, 1.5)
    t.request_failed(9, "timeout")
    t.poll_failed()
    assert health_row(t) == ("m-0", "gw", 1, "degraded", 7, 1, 1, "timeout")
    assert health_row(t) == health_row(t.snapshot())
