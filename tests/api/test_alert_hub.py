"""The alert hub of an API process hands events recorded by another process (another connection)
to its subscribers: on SQLite by polling, on a real PostgreSQL server (started by the test
session) woken by the NOTIFY of the recording transaction. The PostgreSQL case reads without a
notification only every 30 s here, so an event arriving within seconds proves the wake-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from api.alert_hub import AlertHub
from storage.alerts import AlertEvent, AlertStore
from storage.database import DbLocation
from tests.servers import new_database


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> DbLocation:
    if request.param == "sqlite":
        return tmp_path / "metadata.sqlite"
    server: str = request.getfixturevalue("postgres_server")
    return new_database(server)


def event(alert_id: str) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        transition="firing",
        rule_id="r1",
        subject="m-1",
        severity="critical",
        value=2.0,
        threshold=1.0,
        period_ns=0,
        since_ns=0,
        message=alert_id,
        labels={"site": "s1"},
    )


def test_events_of_another_writer_reach_subscribers_once(location: DbLocation) -> None:
    postgres = isinstance(location, str)

    async def scenario() -> tuple[list[str], float, int]:
        store, writer = AlertStore(location), AlertStore(location)
        writer.record([event("before")])  # before the hub starts: not live news
        hub = AlertHub(store, notified_read_s=30.0)
        await hub.start()
        sub = hub.subscribe(lambda e: e["severity"] == "critical")
        got: list[str] = []
        started = time.monotonic()
        for name in ("a1", "a2", "a3"):
            await asyncio.to_thread(writer.record, [event(name), event(name)])
            await asyncio.sleep(0.2)
        while len(got) < 3 and time.monotonic() - started < 20:
            e = await asyncio.wait_for(sub.queue.get(), timeout=20)
            assert e is not None
            got.append(e["alert_id"])
        took = time.monotonic() - started
        await asyncio.sleep(0.5)
        assert sub.queue.empty(), "each event once"
        await hub.stop()
        store.close()
        writer.close()
        return got, took, hub.wakes

    got, took, wakes = asyncio.run(scenario())
    assert got == ["a1", "a2", "a3"]
    assert took < 15, f"took {took:.1f} s"
    if postgres:
        assert wakes >= 1, "read on a notification, not on the 30 s fallback"
    else:
        assert wakes == 0, "SQLite polls"
