"""The alert store and the token store behave the same on SQLite and on a real PostgreSQL server
(started by the test session): the statements are written once, in SQLite's SQL, and translated
(storage/postgres.py), so every operation is run on both. On PostgreSQL, two stores (two API
replicas, or the flow and an API) share one database: a token made by one verifies in the other,
and events recorded by several writers at once get distinct, increasing sequence numbers that a
reader resuming "after N" never skips."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from storage.alert_rules import AlertRule
from storage.alerts import AlertEvent, AlertStore
from storage.database import DbLocation
from storage.tokens import TokenStore
from tests.servers import new_database


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> DbLocation:
    if request.param == "sqlite":
        return tmp_path / "metadata.sqlite"
    server: str = request.getfixturevalue("postgres_server")
    return new_database(server)


def rule(rule_id: str, threshold: float = 10.0) -> AlertRule:
    return AlertRule.model_validate(
        {
            "id": rule_id,
            "product": "meters/interval",
            "variable": "consumption",
            "subject": "m-*",
            "threshold": threshold,
        }
    )


def event(alert_id: str, transition: str = "firing", period_ns: int = 0) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        transition=transition,
        rule_id="r1",
        subject="m-1",
        severity="warning",
        value=12.5,
        threshold=10.0,
        period_ns=period_ns,
        since_ns=period_ns,
        message=f"{alert_id} {transition}",
        labels={"site": "s1", "stream": "m-1"},
    )


def test_rules_events_states_webhooks_and_cursors(location: DbLocation) -> None:
    store = AlertStore(location)
    store.put_rules([rule("r1"), rule("r2")], "config")
    store.put_rules([rule("api-1", 3.0)], "api")
    store.sync_config_rules([rule("r1", 20.0)])  # r2 leaves the configuration; API rules stay
    assert [(r.id, r.threshold, src) for r, src in store.rules()] == [
        ("api-1", 3.0, "api"),
        ("r1", 20.0, "config"),
    ]
    assert store.delete_rule("api-1") and not store.delete_rule("api-1")

    assert store.last_seq() == 0
    new = store.record([event("a1"), event("a2")])
    assert [e.alert_id for e in new] == ["a1", "a2"]
    assert store.record([event("a1"), event("a2")]) == [], "a replayed transition is ignored"
    new = store.record([event("a1", "resolved", 60), event("a2")])
    assert [(e.alert_id, e.transition) for e in new] == [("a1", "resolved")]
    events = store.events_after(0)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and store.last_seq() == seqs[-1]
    assert [(e["alert_id"], e["transition"]) for e in events] == [
        ("a1", "firing"),
        ("a2", "firing"),
        ("a1", "resolved"),
    ]
    assert events[0]["labels"] == {"site": "s1", "stream": "m-1"}
    assert store.events_after(seqs[1]) == events[2:]
    assert {a["alert_id"]: a["state"] for a in store.alerts()} == {"a1": "resolved", "a2": "firing"}
    assert [a["alert_id"] for a in store.alerts("firing")] == ["a2"]
    assert store.alerts()[0]["updated_seq"] == seqs[2], "newest change first"
    assert store.history() == [
        ("a1", "firing", "r1", "m-1", 0),
        ("a1", "resolved", "r1", "m-1", 60),
        ("a2", "firing", "r1", "m-1", 0),
    ]

    store.save_rule_states({"q1|e1": '{"s": 1}', "q1|e2": '{"s": 2}', "q10|e1": "{}"})
    store.save_rule_states({"q1|e1": '{"s": 3}'})
    assert store.rule_states("q1|") == {"q1|e1": '{"s": 3}', "q1|e2": '{"s": 2}'}

    store.add_webhook("h1", "http://127.0.0.1:9/x", "k", {"site": ["s1"]}, since=seqs[0])
    store.webhook_failed("h1", "refused", retry_at_ns=123)
    hook = store.webhooks()[0]
    assert (hook["failures"], hook["next_attempt_ns"], hook["last_error"]) == (1, 123, "refused")
    store.webhook_delivered("h1", seqs[2])
    store.webhook_delivered("h1", seqs[1])  # late, out of order: never moves back
    hook = store.webhooks()[0]
    assert (hook["delivered_seq"], hook["failures"], hook["last_error"]) == (seqs[2], 0, None)
    assert hook["filters"] == {"site": ["s1"]}
    assert store.delete_webhook("h1") and store.webhooks() == []

    assert store.cursor("mqtt") is None
    store.set_cursor("mqtt", 5)
    store.set_cursor("mqtt", 7)
    assert store.cursor("mqtt") == 7
    store.close()

    again = AlertStore(location)  # the schema script runs again on an existing database
    assert again.last_seq() == seqs[-1]
    assert again.record([event("a3")])[0].alert_id == "a3"
    assert again.last_seq() > seqs[-1], "numbers are never reused"
    again.close()


def test_writers_at_once_get_distinct_increasing_numbers(location: DbLocation) -> None:
    """Four stores (separate connections) record at once; a reader that resumes after every
    number it saw sees each event exactly once, in order."""
    stores = [AlertStore(location) for _ in range(4)]
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        reader = AlertStore(location)
        while not stop.is_set() or reader.last_seq() > (seen[-1] if seen else 0):
            seen.extend(e["seq"] for e in reader.events_after(seen[-1] if seen else 0))
        reader.close()

    def write(i: int) -> None:
        for k in range(25):
            stores[i].record([event(f"w{i}-{k}"), event(f"w{(i + 1) % 4}-{k}")])

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert len(seen) == 100, "each (alert, transition) once, whoever recorded it first"
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    for s in stores:
        s.close()


def test_tokens(location: DbLocation) -> None:
    replica_a, replica_b = TokenStore(location), TokenStore(location)
    token = replica_a.create("sender", ["ingest", "read"])
    info = replica_b.verify(token)
    assert info is not None and info.name == "sender"
    assert info.allows("ingest") and info.allows("read") and not info.allows("admin")
    assert replica_b.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert replica_b.verify("cst_nope_secret") is None and replica_b.verify("garbage") is None
    admin = replica_b.create("ops", ["admin"])
    assert [t.name for t in replica_a.list()] == ["sender", "ops"]
    assert replica_a.revoke(info.id) and not replica_a.revoke(info.id)
    revoked = replica_b.verify(token)
    assert revoked is not None and revoked.revoked and not revoked.allows("read")
    assert replica_a.verify(admin) is not None
    replica_a.close()
    replica_b.close()
