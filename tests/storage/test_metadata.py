"""Stream rows are stable; dead letters are stored once per id; status is per component/key."""

from __future__ import annotations

from pathlib import Path

from storage.metadata import DeadLetter, MetadataDB


def test_rows_are_assigned_once_in_sorted_order_and_kept(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.sqlite")
    rows = db.register_streams("meters", {"b": {"unit": "kWh"}, "a": {}, "c": {}})
    assert rows == {"b": 1, "a": 0, "c": 2}
    again = db.register_streams("meters", {"d": {}, "a": {"unit": "Nm3"}})
    assert again == {"d": 3, "a": 0}
    assert db.streams("meters", ["a"])[0].attrs == {"unit": "Nm3"}
    assert db.register_streams("towers", {"x": {}}) == {"x": 0}, "each axis numbers its own rows"
    assert [s.id for s in db.streams_by_rows("meters", 1, 3)] == ["b", "c"]
    assert db.stream_count("meters") == 4
    db.close()
    reopened = MetadataDB(tmp_path / "m.sqlite")
    assert {s.id: s.idx for s in reopened.streams("meters")} == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_dead_letters_with_the_same_id_are_stored_once(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.sqlite")
    letter = DeadLetter("flow:0:7:1", "flow.meters", "m-1", "invalid", {"message": "NaN"})
    assert db.add_dead_letters([letter]) == 1
    assert db.add_dead_letters([letter]) == 0
    (stored,) = db.dead_letters()
    assert stored["reason"] == "invalid" and stored["detail"] == {"message": "NaN"}
    assert db.dead_letter_counts() == {("flow.meters", "invalid"): 1}


def test_status_is_upserted(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.sqlite")
    db.put_status("role", "flow", {"pid": 1})
    db.put_status("role", "flow", {"pid": 2})
    (value, updated) = db.status("role")[("role", "flow")]
    assert value == {"pid": 2} and updated > 0
