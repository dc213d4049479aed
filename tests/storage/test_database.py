"""The metadata database and the factor table behave the same on SQLite and on a real PostgreSQL
server (started by the test session), including several processes registering streams at once;
PostgreSQL LISTEN/NOTIFY wakes a listener in another session."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from storage.database import DbLocation, describe
from storage.factors import FactorTable
from storage.metadata import DeadLetter, MetadataDB
from storage.notify import open_notifier
from storage.postgres import translate
from tests.servers import new_database


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> DbLocation:
    if request.param == "sqlite":
        return tmp_path / "metadata.sqlite"
    server: str = request.getfixturevalue("postgres_server")
    return new_database(server)


def test_every_metadata_operation(location: DbLocation) -> None:
    db = MetadataDB(location)
    assert db.register_streams("meters", {"b": {"unit": "kWh"}, "a": {}, "c": {}}) == {
        "b": 1,
        "a": 0,
        "c": 2,
    }
    assert db.register_streams("meters", {"d": {}, "a": {"unit": "Nm3"}}) == {"d": 3, "a": 0}
    assert db.streams("meters", ["a"])[0].attrs == {"unit": "Nm3"}
    assert [s.id for s in db.streams_by_rows("meters", 1, 3)] == ["b", "c"]
    assert db.stream_ids("meters") == {"a", "b", "c", "d"} and db.stream_count("meters") == 4

    db.put_status("role", "flow", {"pid": 1})
    db.put_status("role", "flow", {"pid": 2})
    assert db.status("role")[("role", "flow")][0] == {"pid": 2}

    letter = DeadLetter("flow:0:7", "flow.meters", "m-1", "invalid", {"message": "50% NaN?"})
    assert db.add_dead_letters([letter]) == 1
    assert db.add_dead_letters([letter]) == 0, "a replayed letter is not doubled"
    assert db.dead_letters()[0]["detail"] == {"message": "50% NaN?"}
    assert db.dead_letter_counts() == {("flow.meters", "invalid"): 1}

    db.mark_dirty("meters/interval", [(0, 5), (1, 5)])
    db.mark_dirty("meters/interval", [(0, 5)])
    assert db.dirty("meters/interval") == [(0, 5, 2), (1, 5, 1)]
    db.clear_dirty("meters/interval", [(0, 5, 1), (1, 5, 1)])
    assert db.dirty("meters/interval") == [(0, 5, 2)], "changed since: stays dirty"
    # A sink partition's snapshot: its dirty chunks and its status in one transaction.
    db.record_flushes(
        [("meters/interval", [(1, 5), (0, 6)])],
        "flow.zarr",
        [("meters/interval#zarr-0000", {"max_slot": 7}), ("ec/flux#zarr-0000", {"max_slot": 2})],
    )
    assert db.dirty("meters/interval") == [(0, 5, 2), (1, 5, 1), (0, 6, 1)]
    flushed = db.status("flow.zarr")
    assert flushed[("flow.zarr", "meters/interval#zarr-0000")][0] == {"max_slot": 7}
    assert flushed[("flow.zarr", "ec/flux#zarr-0000")][0] == {"max_slot": 2}

    db.put_device_health([("m-1", "gw", 3, "ok", 2**62, 0, 0, None)])
    db.put_device_health([("m-1", "gw", 3, "dead", 2**62, 3, 3, "timeout")])
    assert db.device_health()[0]["state"] == "dead" and db.device_states() == {"dead": 1}
    db.close()


def test_the_registry_version_changes_exactly_when_the_registry_does(
    location: DbLocation,
) -> None:
    """Roll-ups rebuild their entity tree only when this changes: a change it missed would roll
    a new meter up into nothing; a bump on every registration would rebuild it every cycle."""
    db = MetadataDB(location)
    assert db.registry_version("meters") == 0
    db.register_streams("meters", {"a": {"entity": "x"}, "b": {}})
    first = db.registry_version("meters")
    assert first > 0
    db.register_streams("meters", {"a": {"entity": "x"}, "b": {}})  # the same again
    db.register_streams("meters", {"a": {}})  # no attributes: nothing to change
    assert db.registry_version("meters") == first
    db.register_streams("meters", {"a": {"entity": "y"}})
    second = db.registry_version("meters")
    assert second > first
    db.register_streams("meters", {"c": {}})
    assert db.registry_version("meters") > second
    assert db.registry_version("entities") == 0, "each axis has its own version"
    db.close()


def test_factor_versions(location: DbLocation) -> None:
    table = FactorTable(location)
    v1 = table.ensure_seeded()
    assert table.ensure_seeded() == v1 == 1
    text = (
        "energy_type,region,year,factor,unit,basis,source\n"
        "electricity,XX,2024,0.5,kgCO2/kWh,location,t\n"
    )
    v2 = table.load(text, "test")
    assert table.load(text, "again") == v2 == 2
    f = table.lookup("electricity", "XX", 2026, "location", v2)
    assert f is not None and f.value == 0.5 and f.year == 2024
    assert [v.rows for v in table.versions()][1] == 1
    table.close()


def _register(
    location: DbLocation, worker: int, out: multiprocessing.Queue[dict[str, int]]
) -> None:
    db = MetadataDB(location)
    rows: dict[str, int] = {}
    for k in range(20):
        rows |= db.register_streams("meters", {f"w{worker}-{k}": {}, f"shared-{k}": {}})
    out.put(rows)
    db.close()


def test_processes_registering_at_once_get_distinct_stable_rows(location: DbLocation) -> None:
    MetadataDB(location).close()  # the schema, once
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[dict[str, int]] = ctx.Queue()
    procs = [ctx.Process(target=_register, args=(location, w, out)) for w in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    merged: dict[str, int] = {}
    for r in results:
        for sid, idx in r.items():
            assert merged.setdefault(sid, idx) == idx, f"{sid} got two rows"
    assert sorted(merged.values()) == list(range(len(merged))), "rows are dense and unique"
    db = MetadataDB(location)
    assert {s.id: s.idx for s in db.streams("meters")} == merged
    db.close()


def test_postgres_notifications_reach_another_session(postgres_server: str) -> None:
    url = new_database(postgres_server)
    sender = open_notifier(url)
    with sender.listen(["alerts"]) as inbox:
        assert inbox.wait(0.05) == []
        threading.Timer(0.2, sender.notify, args=("alerts", "a-17")).start()
        started = time.monotonic()
        got = inbox.wait(10.0)
        assert [(n.channel, n.payload) for n in got] == [("alerts", "a-17")]
        assert time.monotonic() - started < 5, "woken by the notification, not the time-out"
        # Sent inside a transaction: delivered only when it commits.
        db = MetadataDB(url)
        conn = db._conn
        conn.execute("BEGIN IMMEDIATE")
        sender.notify_in(conn, "alerts", "a-18")  # type: ignore[attr-defined]
        assert inbox.wait(0.3) == []
        conn.execute("COMMIT")
        assert [n.payload for n in inbox.wait(5.0)] == ["a-18"]
        db.close()
    sender.close()


def test_sqlite_notifier_polls(tmp_path: Path) -> None:
    notifier = open_notifier(tmp_path / "m.sqlite")
    notifier.notify("alerts", "x")
    with notifier.listen(["alerts"]) as inbox:
        assert inbox.wait(0.01) == []
    with pytest.raises(ValueError):
        notifier.notify("alerts; DROP TABLE streams", "")


def test_translation_and_description() -> None:
    assert translate("SELECT value FROM json_each(?) WHERE x LIKE '%a'") == (
        "SELECT value FROM json_array_elements_text(%s::json) WHERE x LIKE '%%a'"
    )
    assert describe("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
