"""The journal: durable, ordered, offset-addressed, never reusing offsets, trimmed when safe."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from storage.errors import StorageUnavailable
from storage.journal import Journal, JournalConfigError, JournalEntry, partition_for
from tests.reliability.live import fill, tmpfs


def entry(i: int, stream: str = "s") -> JournalEntry:
    return JournalEntry(stream, "test_kind", f"payload-{i}".encode())


def test_append_then_read_in_offset_order(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=2)
    assert j.append(1, [entry(0), entry(1)]) == [1, 2]
    assert j.append(1, [entry(2)]) == [3]
    reader = j.reader(1)
    got = reader.read(1, 10)
    assert [r.offset for r in got] == [1, 2, 3]
    assert [r.payload for r in got] == [b"payload-0", b"payload-1", b"payload-2"]
    assert {r.partition for r in got} == {1} and got[0].kind == "test_kind"
    assert [r.offset for r in reader.read(2, 1)] == [2]
    assert j.reader(0).read(1, 10) == []
    assert j.head(1) == 3 and j.head(0) == 0


def _append_in_child(directory: str) -> None:
    Journal(Path(directory), partitions=1).append(0, [entry(7)])


def test_an_append_is_visible_to_another_process_once_returned(tmp_path: Path) -> None:
    child = mp.get_context("spawn").Process(target=_append_in_child, args=(str(tmp_path),))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    (rec,) = Journal(tmp_path, partitions=1).reader(0).read(1, 10)
    assert rec.payload == b"payload-7"


def test_partition_count_cannot_change_on_existing_data(tmp_path: Path) -> None:
    Journal(tmp_path, partitions=4).close()
    with pytest.raises(
        JournalConfigError, match="has 4 partitions but the configuration asks for 2"
    ):
        Journal(tmp_path, partitions=2)


def test_routing_is_stable_and_spreads() -> None:
    assert partition_for("meter-1", 8) == partition_for("meter-1", 8)
    spread = {partition_for(f"meter-{i}", 8) for i in range(200)}
    assert spread == set(range(8))


def test_append_routed_places_each_entry_by_its_key(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=4)
    entries = [entry(i, f"stream-{i}") for i in range(20)]
    placed = j.append_routed(entries)
    for e, (p, off) in zip(entries, placed, strict=True):
        assert p == j.partition_for(e.stream)
        (rec,) = j.reader(p).read(off, 1)
        assert rec.payload == e.payload


def test_lag_and_trim_follow_consumer_snapshots(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=1)
    j.append(0, [entry(i) for i in range(10)])
    (status,) = j.status()
    assert status.head == 10 and status.consumed == 0 and status.lag == 10
    assert status.oldest_unconsumed_ingest_ns is not None

    reader = j.reader(0)
    reader.commit_progress("flow", 6)  # first snapshot: rows 1..5 covered
    assert j.status()[0].lag == 5
    assert j.trim(retention_ns=0) == 0, "nothing is trimmed before a second snapshot"
    reader.commit_progress("flow", 9)
    assert j.trim(retention_ns=0) == 5, "rows below the previous snapshot (6) go"
    assert [r.offset for r in reader.read(1, 100)] == [6, 7, 8, 9, 10]
    assert j.trim(retention_ns=10**12) == 0, "retention keeps recent rows"


def test_offsets_are_never_reused_after_trimming_everything(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=1)
    j.append(0, [entry(i) for i in range(3)])
    reader = j.reader(0)
    reader.commit_progress("flow", 4)
    reader.commit_progress("flow", 4)
    time.sleep(0.001)
    assert j.trim(retention_ns=0) == 3
    assert reader.read(1, 10) == []
    assert j.append(0, [entry(9)]) == [4]
    assert j.head(0) == 4


def test_slowest_consumer_bounds_trimming(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=1)
    j.append(0, [entry(i) for i in range(10)])
    fast, slow = j.reader(0), j.reader(0)
    for off in (11, 11):
        fast.commit_progress("fast", off)
    for off in (3, 3):
        slow.commit_progress("slow", off)
    assert j.trim(retention_ns=0) == 2
    assert j.status()[0].consumed == 2


def test_an_entry_with_a_seen_dedupe_key_is_not_appended_again(tmp_path: Path) -> None:
    j = Journal(tmp_path, partitions=1)
    first = JournalEntry("s", "k", b"batch", dedupe_key=b"key-1")
    assert j.append(0, [first, entry(1)]) == [1, 2]
    assert j.append(0, [first]) == [1], "the original offset, nothing appended"
    assert j.append(0, [JournalEntry("s", "k", b"other", dedupe_key=b"key-2")]) == [3]
    assert [r.offset for r in j.reader(0).read(1, 10)] == [1, 2, 3]
    time.sleep(0.01)
    j.trim(retention_ns=10**15, dedupe_window_ns=1)
    assert j.append(0, [first]) == [4], "past the dedupe window the key is forgotten"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")


@needs_root
def test_a_full_disk_refuses_whole_appends_and_recovers(tmp_path: Path) -> None:
    """Appends on a 4 MB filesystem (half of it taken by a filler file) until SQLite finds it
    full: the refusal is the typed error, none of a refused batch is stored (every stored batch
    is whole, the head does not move), and once the filler is deleted the same journal object
    appends again, without reopening."""
    with tmpfs(tmp_path / "fs", 4 << 20) as fs:
        j = Journal(fs / "journal", partitions=1)
        filler = fill(fs, leave_bytes=2 << 20)
        batch = [JournalEntry("s", "k", os.urandom(64 << 10)) for _ in range(4)]
        with pytest.raises(StorageUnavailable) as refused:
            for _ in range(100):
                j.append(0, batch)
        assert refused.value.reason == "full"
        head = j.head(0)
        assert head % len(batch) == 0
        assert len(j.reader(0).read(1, 10_000)) == head
        with pytest.raises(StorageUnavailable):
            j.append(0, batch)
        assert j.head(0) == head
        filler.unlink()
        assert j.append(0, batch) == list(range(head + 1, head + 1 + len(batch)))
        j.close()


@needs_root
def test_below_the_reserve_appends_are_refused_before_sqlite_is_touched(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", 4 << 20) as fs:
        j = Journal(fs / "journal", partitions=1, min_free_bytes=2 << 20)
        assert j.append(0, [entry(1)]) == [1]
        filler = fill(fs, leave_bytes=1 << 20)
        with pytest.raises(StorageUnavailable) as refused:
            j.append(0, [entry(2)])
        assert refused.value.reason == "full" and "reserve" in str(refused.value)
        assert j.head(0) == 1
        filler.unlink()
        assert j.append(0, [entry(3)]) == [2]
        j.close()
