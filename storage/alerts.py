"""Alert rules, current alerts and the event history, in the metadata database.

Events are the stream subscribers read: each transition (firing, resolved) of an alert is one
row, numbered by a sequence that only grows, which is the SSE event id and what a subscriber
resumes from (Last-Event-ID). A transition is unique per (alert id, transition): a replay of the
dataflow that decides the same transition again inserts nothing, so nobody is told twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from storage.alert_rules import AlertRule
from storage.database import DbLocation, open_db, rollback, storage_errors
from storage.notify import PgNotifier
from storage.postgres import is_postgres_url

ALERT_CHANNEL = "alert_events"
"""NOTIFY channel of new alert events on PostgreSQL (payload: the newest sequence number).
Readers keep polling at a slower pace as well, so a notification lost while nobody listened
delays an event, never loses it (storage/notify.py)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_rules (
    id         TEXT PRIMARY KEY,
    spec       TEXT    NOT NULL,  -- JSON of the AlertRule
    source     TEXT    NOT NULL,  -- 'config' or 'api'
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id    TEXT PRIMARY KEY,
    rule_id     TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    state       TEXT    NOT NULL,  -- firing | resolved
    severity    TEXT    NOT NULL,
    labels      TEXT    NOT NULL,  -- JSON: site / entity / stream
    since_ns    INTEGER NOT NULL,  -- start of the first breaching period
    value       REAL,
    threshold   REAL,
    updated_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state);
CREATE TABLE IF NOT EXISTS webhooks (
    id              TEXT PRIMARY KEY,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,  -- HMAC key shared with the receiver
    filters         TEXT    NOT NULL,  -- JSON: site / entity / severity / rule lists
    created_ns      INTEGER NOT NULL,
    delivered_seq   INTEGER NOT NULL,  -- every event up to here is delivered (or filtered out)
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ns INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE TABLE IF NOT EXISTS delivery_cursors (
    name TEXT PRIMARY KEY,    -- a delivery channel (e.g. 'mqtt')
    seq  INTEGER NOT NULL     -- every event up to here is delivered
);
CREATE TABLE IF NOT EXISTS rule_states (
    key   TEXT PRIMARY KEY,  -- rule id | subject (rules evaluated outside the dataflow)
    state TEXT NOT NULL      -- JSON of the state machine
);
CREATE TABLE IF NOT EXISTS alert_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   TEXT    NOT NULL,
    transition TEXT    NOT NULL,  -- firing | resolved
    rule_id    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    labels     TEXT    NOT NULL,
    value      REAL,
    threshold  REAL,
    period_ns  INTEGER NOT NULL,  -- start of the period that caused the transition
    message    TEXT    NOT NULL,
    created_ns INTEGER NOT NULL,
    UNIQUE (alert_id, transition)
);
"""


@dataclass(frozen=True)
class AlertEvent:
    alert_id: str
    transition: str
    rule_id: str
    subject: str
    severity: str
    value: float | None
    threshold: float
    period_ns: int
    since_ns: int
    message: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self, seq: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alert_id": self.alert_id,
            "transition": self.transition,
            "rule": self.rule_id,
            "subject": self.subject,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "period_ns": self.period_ns,
            "since_ns": self.since_ns,
            "message": self.message,
            "labels": self.labels,
        }
        if seq is not None:
            out["seq"] = seq
        return out


class AlertStore:
    def __init__(self, location: DbLocation) -> None:
        self.path = location
        self._conn = open_db(location)
        self._notifies = is_postgres_url(location)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    # -- rules ---------------------------------------------------------------------------------

    def put_rules(self, rules: Iterable[AlertRule], source: str) -> None:
        now = time.time_ns()
        with self._lock:
            self._conn.executemany(
                "INSERT INTO alert_rules (id, spec, source, updated_ns) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, source = excluded.source, "
                "updated_ns = excluded.updated_ns",
                [(r.id, r.model_dump_json(), source, now) for r in rules],
            )

    def sync_config_rules(self, rules: Sequence[AlertRule]) -> None:
        """Makes the configuration's rules the rules of source 'config' (API rules stay)."""
        keep = {r.id for r in rules}
        with self._lock:
            stale = [
                rid
                for (rid,) in self._conn.execute(
                    "SELECT id FROM alert_rules WHERE source = 'config'"
                ).fetchall()
                if rid not in keep
            ]
            self._conn.executemany("DELETE FROM alert_rules WHERE id = ?", [(r,) for r in stale])
        self.put_rules(rules, "config")

    def delete_rule(self, rule_id: str) -> bool:
        with self._lock:
            return (
                self._conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,)).rowcount > 0
            )

    def rules(self) -> list[tuple[AlertRule, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT spec, source FROM alert_rules ORDER BY id").fetchall()
        return [(AlertRule.model_validate_json(r[0]), str(r[1])) for r in rows]

    # -- events --------------------------------------------------------------------------------

    def record(self, events: Sequence[AlertEvent]) -> list[AlertEvent]:
        """Stores transitions not stored before; returns those that were new."""
        new: list[AlertEvent] = []
        last = 0
        now = time.time_ns()
        with self._lock, storage_errors(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for e in events:
                    labels = orjson.dumps(e.labels).decode()
                    cur = self._conn.execute(
                        "INSERT OR IGNORE INTO alert_events (alert_id, transition, rule_id, "
                        "subject, severity, labels, value, threshold, period_ns, message, "
                        "created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                        (
                            e.alert_id,
                            e.transition,
                            e.rule_id,
                            e.subject,
                            e.severity,
                            labels,
                            e.value,
                            e.threshold,
                            e.period_ns,
                            e.message,
                            now,
                        ),
                    ).fetchone()
                    if cur is None:
                        continue
                    new.append(e)
                    last = int(cur[0])
                    self._conn.execute(
                        "INSERT INTO alerts (alert_id, rule_id, subject, state, severity, labels, "
                        "since_ns, value, threshold, updated_seq) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (alert_id) DO UPDATE SET "
                        "state = excluded.state, value = excluded.value, "
                        "updated_seq = excluded.updated_seq",
                        (
                            e.alert_id,
                            e.rule_id,
                            e.subject,
                            e.transition,
                            e.severity,
                            labels,
                            e.since_ns,
                            e.value,
                            e.threshold,
                            int(cur[0]),
                        ),
                    )
                if new and self._notifies:
                    # In the transaction: delivered when it commits, so a woken reader finds
                    # the rows (and with BEGIN IMMEDIATE, in sequence order).
                    PgNotifier.notify_in(self._conn, ALERT_CHANNEL, str(last))
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        return new

    # -- delivery channels other than webhooks -------------------------------------------------

    def cursor(self, name: str) -> int | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT seq FROM delivery_cursors WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, seq: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO delivery_cursors (name, seq) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                (name, seq),
            )

    # -- state of rules evaluated outside the dataflow ------------------------------------------

    def rule_states(self, prefix: str) -> dict[str, str]:
        """Stored state machines whose key starts with `prefix` (a rule id and '|')."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, state FROM rule_states WHERE substr(key, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
        return {str(k): str(v) for k, v in rows}

    def save_rule_states(self, states: dict[str, str]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO rule_states (key, state) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                    list(states.items()),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def events_after(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with a sequence number above `seq`, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, alert_id, transition, rule_id, subject, severity, labels, value, "
                "threshold, period_ns, message, created_ns FROM alert_events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [
            {
                "seq": r[0],
                "alert_id": r[1],
                "transition": r[2],
                "rule": r[3],
                "subject": r[4],
                "severity": r[5],
                "labels": orjson.loads(r[6]),
                "value": r[7],
                "threshold": r[8],
                "period_ns": r[9],
                "message": r[10],
                "created_ns": r[11],
            }
            for r in rows
        ]

    def last_seq(self) -> int:
        with self._lock:
            (seq,) = self._conn.execute("SELECT coalesce(max(seq), 0) FROM alert_events").fetchone()
        return int(seq)

    def alerts(self, state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._lock:
            rows = self._conn.execute(
                "SELECT alert_id, rule_id, subject, state, severity, labels, since_ns, value, "
                f"threshold, updated_seq FROM alerts {where} ORDER BY updated_seq DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [
            {
                "alert_id": r[0],
                "rule": r[1],
                "subject": r[2],
                "state": r[3],
                "severity": r[4],
                "labels": orjson.loads(r[5]),
                "since_ns": r[6],
                "value": r[7],
                "threshold": r[8],
                "updated_seq": r[9],
            }
            for r in rows
        ]

    def history(self) -> list[tuple[str, str, str, str, int]]:
        """(alert id, transition, rule, subject, period) of every event, in a stable order (for
        comparing runs)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT alert_id, transition, rule_id, subject, period_ns FROM alert_events "
                "ORDER BY alert_id, transition"
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    # -- webhook subscriptions -------------------------------------------------------------

    def add_webhook(
        self, hook_id: str, url: str, secret: str, filters: dict[str, list[str] | None], since: int
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO webhooks (id, url, secret, filters, created_ns, delivered_seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (hook_id, url, secret, orjson.dumps(filters).decode(), time.time_ns(), since),
            )

    def webhooks(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, url, secret, filters, delivered_seq, failures, next_attempt_ns, "
                "last_error FROM webhooks ORDER BY created_ns"
            ).fetchall()
        return [
            {
                "id": r[0],
                "url": r[1],
                "secret": r[2],
                "filters": orjson.loads(r[3]),
                "delivered_seq": r[4],
                "failures": r[5],
                "next_attempt_ns": r[6],
                "last_error": r[7],
            }
            for r in rows
        ]

    def delete_webhook(self, hook_id: str) -> bool:
        with self._lock:
            return self._conn.execute("DELETE FROM webhooks WHERE id = ?", (hook_id,)).rowcount > 0

    def webhook_delivered(self, hook_id: str, seq: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE webhooks SET delivered_seq = max(delivered_seq, ?), failures = 0, "
                "next_attempt_ns = 0, last_error = NULL WHERE id = ?",
                (seq, hook_id),
            )

    def webhook_failed(self, hook_id: str, error: str, retry_at_ns: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE webhooks SET failures = failures + 1, next_attempt_ns = ?, last_error = ? "
                "WHERE id = ?",
                (retry_at_ns, error[:500], hook_id),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
