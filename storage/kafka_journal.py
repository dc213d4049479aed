"""The journal on Kafka: one topic, one Kafka partition per journal partition.

Same contract as the local journal (storage/journal_backend.py), mapped onto Kafka:

- Offsets: journal offset = Kafka offset + 1, so offsets start at 1, `head` is the partition's
  high watermark and 0 means "nothing yet", as in the local journal. The producer is idempotent
  (no duplicates from its own retries) and transactions are not used, so offsets have no gaps.
- Routing: the producer names the partition itself (`partition_for`, CRC-32 of the stream id, as
  locally), never Kafka's key hash: a stream stays in the same partition whichever backend.
- Durable before acknowledged: `acks=all`, and `append` returns only when every delivery report
  is in (an error or time-out raises). With `journal.durability = "fsync"` the topic is created
  with `flush.messages=1`, so a single broker also fsyncs each append before acknowledging it,
  like SQLite's `synchronous=FULL`; with replication, durability is `min.insync.replicas`.
- Idempotent appends: Kafka alone only dedupes one producer's retries, not a client's re-send
  after a lost answer (possibly to another API replica). A dedupe index in the relational
  database (the metadata database: SQLite on one host, PostgreSQL when shared) holds, per key, the
  partition and offset of the first copy. An appender first *claims* the key (an insert that only
  one process can win), then produces, then records the offset. A re-send finding the key done
  returns its offset; finding it claimed waits for the claimant. Should the claimant have died
  between producing and recording (the only window where the index does not know), the one
  taking over first searches the partition, from the claim's time on, for a record carrying the
  key (every record carries it in a header) and adopts it; only if none is there does it produce.
  So a key is in the topic at most once, whoever crashes where.
- Resume state: the dataflow's source keeps the next journal offset in its Bytewax snapshot, as
  with the local journal. `commit_progress` also commits it to the consumer group
  `<topic>.<consumer>` (Kafka offset = next journal offset - 1, the previous position in the
  commit's metadata), which is what `status` reports as lag and `trim` waits for.
- Trimming: `trim` deletes records (DeleteRecords) below what every consumer had passed two
  snapshots ago and older than the retention, exactly as locally; a topic-level `retention.ms`
  can be set as well, as a safety net, by whoever runs the brokers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from storage.database import DbLocation, open_db
from storage.journal import (
    JournalConfigError,
    JournalEntry,
    JournalRecord,
    PartitionStatus,
    partition_for,
)
from storage.scale_settings import KafkaJournalSettings
from storage.sqlite import Durability

CONSUMERS = ("flow",)
"""Consumers whose progress gates trimming and is reported as lag (the dataflow's source)."""

_LEADERLESS = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}
"""Answers of a partition whose leader is not elected yet (retried, not reported)."""

_DEDUPE_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_dedupe (
    topic          TEXT    NOT NULL,
    key            BLOB    NOT NULL,
    part           INTEGER NOT NULL,
    journal_offset INTEGER,            -- NULL while the claimant is producing it
    claimed_ns     INTEGER NOT NULL,
    PRIMARY KEY (topic, key)
);
"""

_H_KIND, _H_INGEST, _H_DEDUPE = "kind", "ingest_ns", "dedupe"


class JournalWriteError(RuntimeError):
    """The brokers did not acknowledge an append: nothing may be acknowledged to the sender."""


def _client_config(settings: KafkaJournalSettings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.client}


def _headers(msg: Message) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for k, v in pairs:
        if v is not None:
            out[k] = v if isinstance(v, bytes) else v.encode()
    return out


def _offset(msg: Message) -> int:
    off = msg.offset()
    assert off is not None, "a consumed or delivered message has an offset"
    return int(off)


def _record(partition: int, msg: Message) -> JournalRecord:
    h = _headers(msg)
    key = msg.key()
    return JournalRecord(
        partition,
        _offset(msg) + 1,
        key.decode() if key else "",
        h[_H_KIND].decode(),
        int(h[_H_INGEST]),
        msg.value() or b"",
    )


class _DedupeIndex:
    """Claims of dedupe keys in the relational database (see the module docstring)."""

    def __init__(self, location: DbLocation, topic: str) -> None:
        self._conn = open_db(location, durability="fsync")
        self._conn.executescript(_DEDUPE_SCHEMA)
        self._topic = topic
        self._lock = threading.Lock()

    def _tx(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return out

    def claim(self, key: bytes, part: int, now: int) -> tuple[str, int]:
        """('mine', now) if this call claimed the key; ('done', offset) if it was appended;
        ('pending', claimed_ns) if another appender holds the claim."""

        def run() -> tuple[str, int]:
            row = self._conn.execute(
                "SELECT journal_offset, claimed_ns FROM journal_dedupe WHERE topic = ? AND key = ?",
                (self._topic, key),
            ).fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO journal_dedupe (topic, key, part, journal_offset, claimed_ns) "
                    "VALUES (?, ?, ?, NULL, ?)",
                    (self._topic, key, part, now),
                )
                return ("mine", now)
            if row[0] is not None:
                return ("done", int(row[0]))
            return ("pending", int(row[1]))

        result: tuple[str, int] = self._tx(run)
        return result

    def take_over(self, key: bytes, claimed_ns: int, now: int) -> bool:
        """Moves a stale claim to this appender, unless someone else did first."""

        def run() -> bool:
            cur = self._conn.execute(
                "UPDATE journal_dedupe SET claimed_ns = ? WHERE topic = ? AND key = ? "
                "AND claimed_ns = ? AND journal_offset IS NULL",
                (now, self._topic, key, claimed_ns),
            )
            return bool(cur.rowcount == 1)

        done: bool = self._tx(run)
        return done

    def record(self, done: Sequence[tuple[bytes, int]]) -> None:
        if done:
            self._tx(
                lambda: self._conn.executemany(
                    "UPDATE journal_dedupe SET journal_offset = ? WHERE topic = ? AND key = ?",
                    [(off, self._topic, key) for key, off in done],
                )
            )

    def release(self, keys: Sequence[tuple[bytes, int]]) -> None:
        """Drops this appender's claims after a failed append (the sender will re-send)."""
        if keys:
            self._tx(
                lambda: self._conn.executemany(
                    "DELETE FROM journal_dedupe WHERE topic = ? AND key = ? AND claimed_ns = ? "
                    "AND journal_offset IS NULL",
                    [(self._topic, key, ns) for key, ns in keys],
                )
            )

    def forget_before(self, cutoff_ns: int) -> None:
        self._tx(
            lambda: self._conn.execute(
                "DELETE FROM journal_dedupe WHERE topic = ? AND claimed_ns < ? "
                "AND journal_offset IS NOT NULL",
                (self._topic, cutoff_ns),
            )
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class KafkaJournal:
    """All partitions of the journal topic. Safe to share between threads of one process."""

    def __init__(
        self,
        settings: KafkaJournalSettings,
        partitions: int,
        durability: Durability,
        dedupe_db: DbLocation,
        consumers: Sequence[str] = CONSUMERS,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic
        self._partitions = partitions
        self._consumers = tuple(consumers)
        self._admin = AdminClient(_client_config(settings))
        self._ensure_topic(durability)
        self._producer = Producer(
            {
                **_client_config(settings),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 1,
                "message.timeout.ms": int(settings.ack_timeout_s * 1000),
            }
        )
        self._dedupe = _DedupeIndex(dedupe_db, self.topic)
        self._probe: Consumer | None = None
        self._groups: dict[str, Consumer] = {}
        self._probe_lock = threading.Lock()

    @property
    def partitions(self) -> int:
        return self._partitions

    def _ensure_topic(self, durability: Durability) -> None:
        meta = self._admin.list_topics(self.topic, timeout=self.settings.ack_timeout_s)
        found = meta.topics.get(self.topic)
        if found is None or found.error is not None:
            config = {"min.insync.replicas": str(self.settings.min_insync_replicas)}
            if durability == "fsync":
                config["flush.messages"] = "1"
            futures = self._admin.create_topics(
                [
                    NewTopic(
                        self.topic,
                        self._partitions,
                        self.settings.replication_factor,
                        config=config,
                    )
                ]
            )
            try:
                futures[self.topic].result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            found = self._created_topic_metadata()
        if len(found.partitions) != self._partitions:
            raise JournalConfigError(
                f"Kafka topic {self.topic} has {len(found.partitions)} partitions but the "
                f"configuration asks for {self._partitions}; streams are routed by partition, so "
                "the count cannot change on existing data"
            )

    def _created_topic_metadata(self) -> Any:
        """The metadata of a topic just created: a broker may list it with no partitions (or not
        at all) until the creation has propagated, which is not a partition count to judge."""
        deadline = time.monotonic() + self.settings.ack_timeout_s
        while True:
            meta = self._admin.list_topics(self.topic, timeout=self.settings.ack_timeout_s)
            found = meta.topics.get(self.topic)
            ready = found is not None and found.error is None and len(found.partitions) > 0
            if ready or time.monotonic() > deadline:
                return found if found is not None else meta.topics[self.topic]
            time.sleep(0.1)

    def partition_for(self, key: str) -> int:
        return partition_for(key, self._partitions)

    # -- appending ------------------------------------------------------------------------------

    def append(self, partition: int, entries: Sequence[JournalEntry]) -> list[int]:
        """Appends `entries` to `partition`; durable (acknowledged by the brokers) on return."""
        if not entries:
            return []
        now = time.time_ns()
        offsets: list[int | None] = [None] * len(entries)
        send: list[int] = []
        mine: list[tuple[bytes, int]] = []  # (key, claimed_ns) claims this call holds
        first_of: dict[bytes, int] = {}
        try:
            for i, e in enumerate(entries):
                if e.dedupe_key is None:
                    send.append(i)
                    continue
                if e.dedupe_key in first_of:  # the same content twice in one append
                    continue
                first_of[e.dedupe_key] = i
                state, value = self._settle_claim(e.dedupe_key, partition, now)
                if state == "done":
                    offsets[i] = value
                else:
                    mine.append((e.dedupe_key, value))
                    send.append(i)
            produced = self._produce(partition, [entries[i] for i in send], now)
        except BaseException:
            self._dedupe.release(mine)
            raise
        for i, off in zip(send, produced, strict=True):
            offsets[i] = off
        self._dedupe.record(
            [(key, offsets[first_of[key]] or 0) for key, _ in mine],
        )
        for i, e in enumerate(entries):
            if offsets[i] is None and e.dedupe_key is not None:
                offsets[i] = offsets[first_of[e.dedupe_key]]
        return [int(o or 0) for o in offsets]

    def _settle_claim(self, key: bytes, partition: int, now: int) -> tuple[str, int]:
        """('mine', claimed_ns) when this call must produce the entry, ('done', offset) when
        it is already in the topic."""
        deadline = time.monotonic() + self.settings.dedupe_claim_timeout_s
        while True:
            state, value = self._dedupe.claim(key, partition, now)
            if state != "pending":
                return state, value
            if time.monotonic() < deadline and time.time_ns() - value < int(
                self.settings.dedupe_claim_timeout_s * 1e9
            ):
                time.sleep(0.05)
                continue
            # The claimant is silent: did it produce before dying?
            found = self._find_key(partition, key, since_ns=value)
            if found is not None:
                self._dedupe.record([(key, found)])
                return "done", found
            taken = time.time_ns()
            if self._dedupe.take_over(key, value, taken):
                return "mine", taken

    def _produce(self, partition: int, entries: Sequence[JournalEntry], now: int) -> list[int]:
        if not entries:
            return []
        reports: list[tuple[KafkaError | None, int]] = [(None, -1)] * len(entries)

        def on_delivery(i: int) -> Callable[[KafkaError | None, Message], None]:
            def done(err: KafkaError | None, msg: Message) -> None:
                reports[i] = (err, _offset(msg) if err is None else -1)

            return done

        for i, e in enumerate(entries):
            headers: list[tuple[str, str | bytes | None]] = [
                (_H_KIND, e.kind.encode()),
                (_H_INGEST, str(now).encode()),
            ]
            if e.dedupe_key is not None:
                headers.append((_H_DEDUPE, e.dedupe_key))
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        value=e.payload,
                        key=e.stream.encode(),
                        partition=partition,
                        headers=headers,
                        timestamp=now // 1_000_000,
                        on_delivery=on_delivery(i),
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.1)
        left = self._producer.flush(self.settings.ack_timeout_s)
        if left:
            raise JournalWriteError(f"{left} journal record(s) not acknowledged in time")
        errors = [err for err, _ in reports if err is not None]
        if errors:
            raise JournalWriteError(f"journal append failed: {errors[0]}")
        return [off + 1 for _, off in reports]

    def append_routed(self, entries: Sequence[JournalEntry]) -> list[tuple[int, int]]:
        by_partition: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            by_partition.setdefault(self.partition_for(e.stream), []).append(i)
        placed: list[tuple[int, int]] = [(0, 0)] * len(entries)
        for p, idx in sorted(by_partition.items()):
            for i, off in zip(idx, self.append(p, [entries[i] for i in idx]), strict=True):
                placed[i] = (p, off)
        return placed

    # -- reading and bookkeeping ----------------------------------------------------------------

    def reader(self, partition: int) -> KafkaJournalReader:
        return KafkaJournalReader(self.settings, partition)

    def _probe_consumer(self) -> Consumer:
        if self._probe is None:
            self._probe = Consumer(
                {
                    **_client_config(self.settings),
                    "group.id": f"{self.topic}.probe",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": 10,
                }
            )
        return self._probe

    def _watermarks(self, partition: int) -> tuple[int, int]:
        """Retries while the partition has no leader yet: a topic just created (or a broker just
        restarted) answers NOT_LEADER for a moment, which is not an error of the journal."""
        deadline = time.monotonic() + self.settings.ack_timeout_s
        while True:
            try:
                with self._probe_lock:
                    low, high = self._probe_consumer().get_watermark_offsets(
                        TopicPartition(self.topic, partition), timeout=self.settings.ack_timeout_s
                    )
                return int(low), int(high)
            except KafkaException as exc:
                if exc.args[0].code() not in _LEADERLESS or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def head(self, partition: int) -> int:
        return self._watermarks(partition)[1]

    def _committed(self, consumer: str) -> list[TopicPartition]:
        """The consumer group's committed positions, one per partition (offset < 0: none)."""
        with self._probe_lock:
            c = self._groups.get(consumer)
            if c is None:
                c = Consumer(
                    {
                        **_client_config(self.settings),
                        "group.id": f"{self.topic}.{consumer}",
                        "enable.auto.commit": False,
                    }
                )
                self._groups[consumer] = c
            return list(
                c.committed(
                    [TopicPartition(self.topic, p) for p in range(self._partitions)],
                    timeout=self.settings.ack_timeout_s,
                )
            )

    def _first_records(self, wanted: dict[int, int]) -> dict[int, JournalRecord]:
        """The record at Kafka offset `wanted[p]` of each partition p, fetched together (one
        round trip, not one per partition); partitions whose record does not come in time are
        left out."""
        if not wanted:
            return {}
        got: dict[int, JournalRecord] = {}
        with self._probe_lock:
            probe = self._probe_consumer()
            probe.assign([TopicPartition(self.topic, p, off) for p, off in wanted.items()])
            deadline = time.monotonic() + 2.0
            while len(got) < len(wanted) and time.monotonic() < deadline:
                for m in probe.consume(4 * len(wanted), 0.05):
                    p = m.partition()
                    if m.error() is not None or p is None or p not in wanted or p in got:
                        continue
                    if _offset(m) >= wanted[p]:
                        got[p] = _record(p, m)
            probe.unassign()
        return got

    def status(self) -> list[PartitionStatus]:
        """Head, consumed offset and age of the oldest unconsumed record, per partition."""
        committed = [self._committed(c) for c in self._consumers]
        marks = [self._watermarks(p) for p in range(self._partitions)]
        nexts = []
        for p in range(self._partitions):
            ns = [int(tps[p].offset) + 1 if tps[p].offset >= 0 else 1 for tps in committed]
            nexts.append(min(ns) if ns else 1)
        lagging = {
            p: max(nexts[p] - 1, marks[p][0])
            for p in range(self._partitions)
            if marks[p][1] >= max(nexts[p], marks[p][0] + 1)
        }
        oldest = self._first_records(lagging)
        return [
            PartitionStatus(
                p,
                marks[p][1],
                nexts[p] - 1,
                oldest[p].ingest_ns if p in oldest else None,
            )
            for p in range(self._partitions)
        ]

    def _find_key(self, partition: int, key: bytes, since_ns: int) -> int | None:
        """The journal offset of the record carrying dedupe key `key` appended at or after
        `since_ns` (minus a margin for clock differences between hosts), if any."""
        start_ms = max(0, (since_ns // 1_000_000) - 60_000)
        c = Consumer(
            {
                **_client_config(self.settings),
                "group.id": f"{self.topic}.dedupe-search",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            (tp,) = c.offsets_for_times(
                [TopicPartition(self.topic, partition, start_ms)],
                timeout=self.settings.ack_timeout_s,
            )
            _, high = c.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self.settings.ack_timeout_s
            )
            if tp.offset < 0 or tp.offset >= high:
                return None
            c.assign([TopicPartition(self.topic, partition, tp.offset)])
            position = tp.offset
            deadline = time.monotonic() + self.settings.ack_timeout_s
            while position < high and time.monotonic() < deadline:
                for m in c.consume(500, 0.5):
                    if m.error() is not None:
                        continue
                    position = _offset(m) + 1
                    if _headers(m).get(_H_DEDUPE) == key:
                        return _offset(m) + 1
            if position < high:
                raise JournalWriteError("could not search the journal for a re-sent batch")
            return None
        finally:
            c.close()

    def trim(self, retention_ns: int, dedupe_window_ns: int = 86_400 * 10**9) -> int:
        """Deletes records every consumer passed two snapshots ago and older than the retention;
        forgets dedupe keys older than the window. Returns the number of records deleted."""
        now = time.time_ns()
        self._dedupe.forget_before(now - dedupe_window_ns)
        committed = [self._committed(c) for c in self._consumers]
        c = self._probe_consumer()
        deleted = 0
        for p in range(self._partitions):
            prevs = []
            for tps in committed:
                meta = tps[p].metadata or ""
                prevs.append(int(meta[5:]) if meta.startswith("prev=") else 1)
            if not prevs:
                continue
            below = min(prevs) - 1  # Kafka offsets below this are passed by every consumer
            with self._probe_lock:
                (tp,) = c.offsets_for_times(
                    [TopicPartition(self.topic, p, (now - retention_ns) // 1_000_000)],
                    timeout=self.settings.ack_timeout_s,
                )
            low, high = self._watermarks(p)
            old_enough = tp.offset if tp.offset >= 0 else high
            upto = min(below, old_enough)
            if upto > low:
                futures = self._admin.delete_records([TopicPartition(self.topic, p, upto)])
                for f in futures.values():
                    f.result()
                deleted += upto - low
        return deleted

    def close(self) -> None:
        self._producer.flush(self.settings.ack_timeout_s)
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None
            for c in self._groups.values():
                c.close()
            self._groups.clear()
        self._dedupe.close()


class KafkaJournalReader:
    """Reads one Kafka partition from any journal offset, for one consumer thread."""

    def __init__(self, settings: KafkaJournalSettings, partition: int) -> None:
        self.partition = partition
        self._settings = settings
        self._topic = settings.topic
        self._consumer = Consumer(
            {
                **_client_config(settings),
                "group.id": f"{self._topic}.reader",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
        self._position: int | None = None  # next Kafka offset the consumer will return
        self._committers: dict[str, Consumer] = {}
        self._prev: dict[str, int] = {}

    def read(self, from_offset: int, limit: int) -> list[JournalRecord]:
        start = max(from_offset - 1, 0)
        if self._position != start:
            self._consumer.assign([TopicPartition(self._topic, self.partition, start)])
            self._position = start
        out = []
        for m in self._consumer.consume(limit, 0.01):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            if _offset(m) < start:
                continue
            out.append(_record(self.partition, m))
            self._position = _offset(m) + 1
        return out

    def read_offsets(self, offsets: Sequence[int]) -> list[JournalRecord]:
        """Kafka has no lookup by offset that beats a sequential read: reads the span of
        `offsets` and keeps those asked for (a trimmed one is simply not there)."""
        if not offsets:
            return []
        wanted = set(offsets)
        nxt, last = min(wanted), min(max(wanted), self.head())
        out: list[JournalRecord] = []
        deadline = time.monotonic() + self._settings.ack_timeout_s
        while nxt <= last and time.monotonic() < deadline:
            batch = self.read(nxt, 500)
            if batch:
                out += [r for r in batch if r.offset in wanted]
                nxt = batch[-1].offset + 1
                deadline = time.monotonic() + self._settings.ack_timeout_s
        return out

    def head(self) -> int:
        _, high = self._consumer.get_watermark_offsets(
            TopicPartition(self._topic, self.partition), timeout=self._settings.ack_timeout_s
        )
        return int(high)

    def commit_progress(self, consumer: str, next_offset: int) -> None:
        c = self._committers.get(consumer)
        if c is None:
            c = Consumer(
                {
                    **_client_config(self._settings),
                    "group.id": f"{self._topic}.{consumer}",
                    "enable.auto.commit": False,
                }
            )
            self._committers[consumer] = c
            (tp,) = c.committed(
                [TopicPartition(self._topic, self.partition)],
                timeout=self._settings.ack_timeout_s,
            )
            self._prev[consumer] = int(tp.offset) + 1 if tp.offset >= 0 else 1
        prev = self._prev[consumer]
        c.commit(
            offsets=[
                TopicPartition(
                    self._topic, self.partition, next_offset - 1, metadata=f"prev={prev}"
                )
            ],
            asynchronous=False,
        )
        self._prev[consumer] = next_offset

    def close(self) -> None:
        self._consumer.close()
        for c in self._committers.values():
            c.close()
