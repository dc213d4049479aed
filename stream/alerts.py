"""The alert engine in the dataflow: product cells -> observations -> per (rule, subject) state
machines -> transitions stored and streamed to subscribers.

Alerts are evaluated on the cells the pipelines produce, before they reach Zarr, so a breach is
announced within the journal poll and processing time (well under a second), not at the next
flush. State lives in Bytewax (snapshotted with the journal offsets), so after a crash the replay
takes the same decisions and the store ignores the repeated transitions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from carbonstream.metrics import ALERT_TRANSITIONS
from storage.alert_rules import AlertRule
from storage.alerts import AlertEvent, AlertStore
from storage.database import DbLocation
from storage.metadata import MetadataDB
from storage.products import ProductSpec
from stream.alert_state import RuleState, heard, observe, silence
from stream.items import CellBatch
from stream.storage_wait import until_stored

log = logging.getLogger(__name__)

RULES_REFRESH_S = 2.0

Observation = tuple[str, str, int, int, float]
"""(key, rule fingerprint, period index, period start ns, value). The key travels with the
observation because a Bytewax logic is built without being told its key."""


def key_of(rule_id: str, subject: str) -> str:
    return f"{rule_id}|{subject}"


class AlertRouter:
    """Turns a batch of cells into the observations of the rules that watch them."""

    def __init__(self, metadata_db: DbLocation, specs: dict[str, ProductSpec]) -> None:
        self._path = metadata_db
        self._specs = specs
        self._store: AlertStore | None = None
        self._db: MetadataDB | None = None
        self._rules: list[AlertRule] = []
        self._loaded = -float("inf")
        self._ids: dict[str, dict[int, str]] = {}

    def _open(self) -> tuple[AlertStore, MetadataDB]:
        # Opened lazily, on the worker that routes (connections are not picklable).
        if self._store is None or self._db is None:
            self._store, self._db = AlertStore(self._path), MetadataDB(self._path)
        return self._store, self._db

    def _current_rules(self) -> list[AlertRule]:
        store, _ = self._open()
        if time.monotonic() - self._loaded > RULES_REFRESH_S:
            self._rules = [r for r, _ in store.rules()]
            self._loaded = time.monotonic()
        return self._rules

    def _stream_ids(self, axis: str, rows: np.ndarray) -> dict[int, str]:
        ids = self._ids.setdefault(axis, {})
        if any(int(r) not in ids for r in np.unique(rows)):
            _, db = self._open()
            ids.update({s.idx: s.id for s in db.streams(axis)})
        return ids

    def __call__(self, batch: CellBatch) -> list[tuple[str, Observation]]:
        rules = [r for r in self._current_rules() if r.product == batch.product]
        spec = self._specs.get(batch.product)
        if not rules or spec is None:
            return []
        ids = self._stream_ids(spec.axis, batch.rows)
        starts = spec.slot_starts(int(batch.slots.min()), int(batch.slots.max()) + 1)
        out: list[tuple[str, Observation]] = []
        for rule in rules:
            if rule.kind != "silence" and rule.variable not in batch.values:
                continue
            values = batch.values.get(rule.variable)
            fingerprint = rule.fingerprint()
            for i in range(len(batch)):
                if batch.closed is not None and not batch.closed[i]:
                    continue  # an open period: judged when it closes
                subject = ids.get(int(batch.rows[i]))
                if subject is None or not rule.matches(subject):
                    continue
                slot = int(batch.slots[i])
                v = float(values[i]) if values is not None else 0.0
                if rule.kind != "silence" and not np.isfinite(v):
                    continue  # a period without a value is not an observation
                start = int(starts[slot - int(batch.slots.min())])
                key = key_of(rule.id, subject)
                out.append((key, (key, fingerprint, slot, start, v)))
        return out


class RuleBook:
    """The rules by id for the alert logics of one worker, refreshed from the store."""

    def __init__(self, metadata_db: DbLocation) -> None:
        self._path = metadata_db
        self._rules: dict[str, AlertRule] = {}
        self._loaded = -float("inf")
        self._store: AlertStore | None = None

    def current(self) -> dict[str, AlertRule]:
        if time.monotonic() - self._loaded > RULES_REFRESH_S:
            if self._store is None:
                self._store = AlertStore(self._path)
            self._rules.clear()
            self._rules.update({r.id: r for r, _ in self._store.rules()})
            self._loaded = time.monotonic()
        return self._rules


class AlertLogic(StatefulBatchLogic[Observation, AlertEvent, dict[str, Any]]):
    """The state machine of one (rule, subject)."""

    def __init__(
        self, book: RuleBook, specs: dict[str, ProductSpec], resume: dict[str, Any] | None
    ) -> None:
        self._book = book
        self._specs = specs
        self._key = "|"
        self._state: RuleState | None = None
        if resume:
            self._key = resume["key"]
            self._state = RuleState(**resume["state"])

    @property
    def _subject(self) -> str:
        return self._key.split("|", 1)[1]

    def _rule(self) -> AlertRule | None:
        return self._book.current().get(self._key.split("|", 1)[0])

    def on_batch(self, values: list[Observation]) -> tuple[list[AlertEvent], bool]:
        self._key = values[0][0]
        rule = self._rule()
        if rule is None:
            return [], StatefulBatchLogic.DISCARD
        step = self._specs[rule.product].step_ns or 86_400 * 1_000_000_000
        out: list[AlertEvent] = []
        for _, fingerprint, period, start, value in values:
            if self._state is None or self._state.fingerprint != fingerprint:
                self._state = RuleState(fingerprint)  # a changed rule starts afresh
            if rule.kind == "silence":
                out += heard(rule, self._subject, self._state, period, start)
            else:
                out += observe(rule, self._subject, self._state, period, start, value, step)
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        rule, st = self._rule(), self._state
        if rule is None or st is None or rule.kind != "silence" or st.last_period is None:
            return None
        if st.state == "firing":
            return None
        step = self._specs[rule.product].step_ns
        due = st.starts[st.last_period] + (rule.silence_periods + 1) * step
        return datetime.fromtimestamp(due / 1e9, UTC) + timedelta(milliseconds=1)

    def on_notify(self) -> tuple[list[AlertEvent], bool]:
        rule, st = self._rule(), self._state
        if rule is None or st is None:
            return [], StatefulBatchLogic.RETAIN
        step = self._specs[rule.product].step_ns
        return silence(rule, self._subject, st, time.time_ns(), step), StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        if self._state is None:
            return {}
        return {"key": self._key, "state": asdict(self._state)}


class AlertSink(DynamicSink[AlertEvent]):
    def __init__(self, metadata_db: DbLocation) -> None:
        self._path = metadata_db

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _AlertPartition:
        return _AlertPartition(AlertStore(self._path))


class _AlertPartition(StatelessSinkPartition[AlertEvent]):
    def __init__(self, store: AlertStore) -> None:
        self._store = store

    def write_batch(self, items: list[AlertEvent]) -> None:
        # A refused write waits and retries: alert transitions are never dropped.
        stored = until_stored("flow.alerts", self._store.path, lambda: self._store.record(items))
        for e in stored:
            ALERT_TRANSITIONS.labels(e.rule_id, e.transition).inc()
            log.info("alert %s: %s", e.transition, e.message)

    def close(self) -> None:
        self._store.close()
