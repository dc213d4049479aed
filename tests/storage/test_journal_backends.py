"""The journal contract (storage/journal_backend.py), checked on both backends: the local SQLite
journal and Kafka (a real single-node broker on loopback, started once per session)."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.journal import Journal, JournalConfigError, JournalEntry
from storage.journal_backend import JournalBackend
from storage.kafka_journal import KafkaJournal
from storage.scale_settings import KafkaJournalSettings

PARTITIONS = 3


def kafka_settings(broker: str, **kw: float) -> KafkaJournalSettings:
    return KafkaJournalSettings(bootstrap_servers=broker, topic=f"t-{uuid.uuid4().hex[:10]}", **kw)


@pytest.fixture(params=["local", "kafka"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalBackend]:
    j: JournalBackend
    if request.param == "local":
        j = Journal(tmp_path / "journal", PARTITIONS)
    else:
        broker: str = request.getfixturevalue("kafka_broker")
        j = KafkaJournal(kafka_settings(broker), PARTITIONS, "fsync", tmp_path / "m.sqlite")
    yield j
    j.close()


def _read_all(journal: JournalBackend, p: int, from_offset: int = 1) -> list[int]:
    """Offsets readable from `from_offset`, polling until the head (Kafka fetches lag a bit)."""
    reader = journal.reader(p)
    head, got, nxt = reader.head(), [], from_offset
    deadline = time.monotonic() + 20
    while nxt <= head and time.monotonic() < deadline:
        recs = reader.read(nxt, 2)
        got += [r.offset for r in recs]
        if recs:
            nxt = recs[-1].offset + 1
    reader.close()
    return got


def test_offsets_read_and_routing(journal: JournalBackend) -> None:
    assert journal.partitions == PARTITIONS and journal.head(1) == 0
    offs = journal.append(1, [JournalEntry(f"s{i}", "k", bytes([i]) * 10) for i in range(5)])
    assert offs == [1, 2, 3, 4, 5] and journal.head(1) == 5
    assert _read_all(journal, 1) == [1, 2, 3, 4, 5]
    assert _read_all(journal, 1, from_offset=4) == [4, 5], "reads resume from any offset"
    reader = journal.reader(1)
    deadline = time.monotonic() + 20
    recs: list = []
    while not recs and time.monotonic() < deadline:
        recs = reader.read(3, 1)
    (rec,) = recs
    assert (rec.partition, rec.offset, rec.stream, rec.kind, rec.payload) == (
        1,
        3,
        "s2",
        "k",
        b"\x02" * 10,
    )
    assert rec.ingest_ns > 0
    reader.close()
    placed = journal.append_routed([JournalEntry("meter-7", "k", b"x")])
    assert placed[0][0] == journal.partition_for("meter-7")


def test_records_are_read_back_by_offset(journal: JournalBackend) -> None:
    """Open EC periods are rebuilt this way on resume (stream/ec_replay.py)."""
    entries = [JournalEntry(f"s{i % 3}", "k", bytes([i % 256])) for i in range(1, 1200)]
    offs = journal.append(2, entries)
    wanted = [*[o for o in offs if o % 3 == 1][:-1], offs[-1]]  # spread, more than one query
    reader = journal.reader(2)
    got = reader.read_offsets(wanted)
    assert [r.offset for r in got] == wanted
    assert [r.payload for r in got] == [bytes([(o - offs[0] + 1) % 256]) for o in wanted]
    assert reader.read_offsets([]) == []
    assert [r.offset for r in reader.read_offsets([offs[-1], offs[-1] + 5])] == [offs[-1]]
    reader.close()


def test_dedupe_key_appends_once(journal: JournalBackend) -> None:
    e = JournalEntry("s", "k", b"batch", dedupe_key=b"key-1")
    first = journal.append(0, [e])
    again = journal.append(0, [e, JournalEntry("s", "k", b"other")])
    assert again[0] == first[0], "the re-send gets the first copy's offset"
    assert journal.head(0) == 2, "only the new entry was appended"
    assert journal.append(0, [e, e]) == [1, 1]


def test_progress_lag_and_trim(journal: JournalBackend) -> None:
    journal.append(2, [JournalEntry("s", "k", b"x") for _ in range(6)])
    (st,) = [s for s in journal.status() if s.partition == 2]
    assert (st.head, st.consumed, st.lag) == (6, 0, 6) and st.oldest_unconsumed_ingest_ns
    reader = journal.reader(2)
    reader.commit_progress("flow", 3)  # snapshot 1: read below 3
    reader.commit_progress("flow", 5)  # snapshot 2: read below 5
    reader.close()
    (st,) = [s for s in journal.status() if s.partition == 2]
    assert (st.consumed, st.lag) == (4, 2)
    assert journal.trim(retention_ns=0) == 2, "only below the snapshot before the last"
    assert _read_all(journal, 2) == [3, 4, 5, 6]
    assert journal.head(2) == 6


def test_partition_count_is_fixed(tmp_path: Path, kafka_broker: str) -> None:
    s = kafka_settings(kafka_broker)
    KafkaJournal(s, 2, "os", tmp_path / "m.sqlite").close()
    with pytest.raises(JournalConfigError, match="has 2 partitions"):
        KafkaJournal(s, 3, "os", tmp_path / "m.sqlite")


def _send(broker_topic: tuple[str, str], db: Path, n: int) -> list[int]:
    broker, topic = broker_topic
    j = KafkaJournal(
        KafkaJournalSettings(bootstrap_servers=broker, topic=topic), PARTITIONS, "os", db
    )
    out = [j.append(0, [JournalEntry("s", "k", b"p%d" % k, b"key-%d" % k)])[0] for k in range(n)]
    j.close()
    return out


def test_concurrent_resends_from_several_processes_append_once(
    tmp_path: Path, kafka_broker: str
) -> None:
    """Four 'API replicas' receive the same 20 batches at once: each is in the topic once."""
    s = kafka_settings(kafka_broker)
    KafkaJournal(s, PARTITIONS, "os", tmp_path / "m.sqlite").close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_send, [((kafka_broker, s.topic), tmp_path / "m.sqlite", 20)] * 4)
    assert all(r == results[0] for r in results), "every replica got the same offsets"
    j = KafkaJournal(s, PARTITIONS, "os", tmp_path / "m.sqlite")
    assert j.head(0) == 20
    j.close()


def test_a_claimant_that_died_after_producing_is_adopted_not_doubled(
    tmp_path: Path, kafka_broker: str
) -> None:
    s = kafka_settings(kafka_broker, ack_timeout_s=2.0, dedupe_claim_timeout_s=2.5)
    j = KafkaJournal(s, PARTITIONS, "os", tmp_path / "m.sqlite")
    e = JournalEntry("s", "k", b"batch", dedupe_key=b"key-9")
    # What a process killed between its produce and its record leaves behind:
    state, _ = j._dedupe.claim(b"key-9", 0, time.time_ns())
    assert state == "mine"
    (produced,) = j._produce(0, [e], time.time_ns())
    # The sender re-sends (to another replica): the claim is stale, the record is found.
    assert j.append(0, [e]) == [produced]
    assert j.head(0) == 1
    # A claimant that died before producing: the re-send produces it, once.
    e2 = JournalEntry("s", "k", b"batch2", dedupe_key=b"key-10")
    j._dedupe.claim(b"key-10", 0, time.time_ns())
    assert j.append(0, [e2]) == [2] and j.append(0, [e2]) == [2]
    j.close()
