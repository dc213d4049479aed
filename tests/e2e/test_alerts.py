"""Emission warnings end to end: a simulated stack exceeds its hourly CO2 permit.

The real service runs (HJ 212 server, flow, API); the stack simulator sends a simulated day over
TCP. Its load follows the day, so its hourly CO2 rises above the permit and falls back below the
clear level once. A subscriber connected over SSE throughout receives exactly one firing and one
resolved event; a subscriber that leaves after the firing event and comes back with
Last-Event-ID receives the resolved event it missed, exactly once.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from connectors.hj212.settings import CemsSimulatorSettings
from connectors.hj212.sites import simulated_sites
from connectors.simulators.cems_stacks import StackLogger, StackModel, run_simulator
from storage.alert_rules import AlertRule
from stream.alert_state import RuleState, observe
from tests.conftest import free_port
from tests.e2e.service import Service
from tests.e2e.test_cems import DAY, NS, independent_hourly_co2, iso, yesterday_local_midnight
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SITE = "sim-stack-000"


def simulated_day(start: int) -> CemsSimulatorSettings:
    return CemsSimulatorSettings(
        count=1, rate=3000.0, realtime_interval_s=30.0, start=iso(start), duration_s=DAY, seed=5
    )


def hourly_co2_of_the_day(sim: CemsSimulatorSettings, start: int) -> dict[int, float]:
    """The stack's hourly CO2 (kg) over the day, from the frames it will send (same seed)."""
    interval = int(sim.realtime_interval_s * NS)
    logger = StackLogger(StackModel(0, simulated_sites(sim)[0], sim.seed), interval)
    frames: list[bytes] = []
    t, end = start * NS, (start + DAY) * NS
    while t <= end:
        frames += logger.frames_until(t, end)
        t += interval
    return independent_hourly_co2(frames)


def permit_rule(hours: dict[int, float]) -> AlertRule:
    """A permit the afternoon peak exceeds, with hysteresis, that must fire exactly once and
    resolve exactly once over the day (checked here against the state machine itself)."""
    masses = np.array([hours[h] for h in sorted(hours)])
    rule = AlertRule(
        id="co2-permit",
        product="cems/hour",
        variable="mass",
        subject=f"{SITE}/a05001",
        threshold=float(np.quantile(masses, 0.75)),
        clear=float(np.quantile(masses, 0.45)),
        severity="critical",
    )
    st = RuleState(rule.fingerprint())
    transitions = []
    for k, h in enumerate(sorted(hours)):
        transitions += [
            e.transition for e in observe(rule, rule.subject, st, k, h * NS, hours[h], 3600 * NS)
        ]
    assert transitions == ["firing", "resolved"], f"choose another permit: {transitions}"
    return rule


def rule_toml(rule: AlertRule) -> str:
    return "\n".join(
        ["[[alerts.rules]]"]
        + [
            f"{k} = {orjson.dumps(v).decode()}"
            for k, v in rule.model_dump(exclude_none=True).items()
        ]
    )


CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[ec.simulator]
enabled = false
[[cems.sites]]
id = "sim-stack-000"
mn = "SIMSTACK000000"
password = "123456"
"""


class SseListener(threading.Thread):
    """Reads an SSE stream into a list until stopped, or until `stop_after` events."""

    def __init__(self, url: str, headers: dict[str, str], stop_after: int | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.stop_after = url, headers, stop_after
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self.connected = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        """Reads events; after a dropped connection it reconnects with the last id received,
        as an EventSource does."""
        with httpx.Client(timeout=httpx.Timeout(5.0, read=20.0)) as c:
            while not self._halt.is_set():
                headers = dict(self.headers)
                if self.ids:
                    headers["Last-Event-ID"] = str(self.ids[-1])
                try:
                    with c.stream("GET", self.url, headers=headers) as r:
                        assert r.status_code == 200
                        self.connected.set()
                        event_id = None
                        for line in r.iter_lines():
                            if line.startswith("id: "):
                                event_id = int(line[4:])
                            elif line.startswith("data: "):
                                assert event_id is not None
                                self.ids.append(event_id)
                                self.events.append(orjson.loads(line[6:]))
                                if (
                                    self.stop_after is not None
                                    and len(self.events) >= self.stop_after
                                ):
                                    return
                            if self._halt.is_set():
                                return
                except httpx.TransportError:
                    time.sleep(0.2)

    def stop(self) -> None:
        self._halt.set()


@pytest.fixture(scope="module")
def day() -> tuple[int, AlertRule]:
    start = yesterday_local_midnight()
    return start, permit_rule(hourly_co2_of_the_day(simulated_day(start), start))


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, day: tuple[int, AlertRule]
) -> Iterator[tuple[Service, int]]:
    cwd = tmp_path_factory.mktemp("alerts")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")) + rule_toml(day[1]) + "\n")
    port = free_port()
    svc = Service.start(
        cwd, free_port(), config, env={"CARBONSTREAM_CEMS__SERVER__PORT": str(port)}
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/alerts/rules")["items"] or None)
        yield svc, port
    finally:
        assert svc.stop() == 0, svc.log_tail()


def test_a_permit_exceedance_reaches_sse_subscribers_exactly_once(
    service: tuple[Service, int], day: tuple[int, AlertRule], tmp_path: Path
) -> None:
    svc, port = service
    start, rule = day
    headers = {"Authorization": f"Bearer {svc.token('read')}"}
    url = f"{svc.base_url}/v1/alerts/stream?site={SITE}"
    steady = SseListener(url, headers)
    leaver = SseListener(url, headers, stop_after=1)
    for s in (steady, leaver):
        s.start()
        assert s.connected.wait(30)
    receiver = WebhookReceiver(fail_first=2).__enter__()
    with svc.client(token=svc.token("read")) as c:
        r = c.post("/v1/subscriptions/webhooks", json={"url": receiver.url, "site": [SITE]})
        assert r.status_code == 201, r.text
        hook = r.json()

    counts = asyncio.run(run_simulator(simulated_day(start), "127.0.0.1", port))
    assert counts["unanswered"] == 0

    deadline = time.monotonic() + 90
    while len(steady.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)  # any duplicate would arrive now
    steady.stop()
    assert [e["transition"] for e in steady.events] == ["firing", "resolved"], svc.log_tail()
    firing, resolved = steady.events
    assert firing["alert_id"] == resolved["alert_id"] and firing["rule"] == rule.id
    assert firing["severity"] == "critical" and firing["labels"] == {"site": SITE}
    assert firing["value"] > rule.threshold and resolved["value"] <= rule.clear_level

    leaver.join(30)
    assert [e["transition"] for e in leaver.events] == ["firing"]
    resumed = SseListener(url, {**headers, "Last-Event-ID": str(leaver.ids[0])})
    resumed.start()
    assert resumed.connected.wait(30)
    time.sleep(3.0)
    resumed.stop()
    assert [e["transition"] for e in resumed.events] == ["resolved"], "what was missed, once"
    assert resumed.ids == [steady.ids[1]]

    # The same history through the other doors.
    with svc.client(token="") as c:
        history = c.get("/v1/alerts/events", params={"rule": rule.id}).json()["items"]
        assert [e["transition"] for e in history] == ["firing", "resolved"]
        (current,) = c.get("/v1/alerts").json()["items"]
        assert current["state"] == "resolved" and current["alert_id"] == firing["alert_id"]

    # The webhook refused twice, then took both events, in order, once each, signed.
    deadline = time.monotonic() + 30
    while len(receiver.accepted()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    receiver.__exit__(None, None, None)
    assert [r.event_id for r in receiver.requests] == [steady.ids[0]] * 3 + [steady.ids[1]]
    assert [r.event for r in receiver.accepted()] == [
        {**e, "seq": i, "created_ns": r.event["created_ns"]}
        for e, i, r in zip(steady.events, steady.ids, receiver.accepted(), strict=True)
    ]
    for r in receiver.requests:
        signed = hmac.new(hook["secret"].encode(), r.timestamp.encode() + b"." + r.body, "sha256")
        assert r.signature == "sha256=" + signed.hexdigest()


def test_webhook_subscriptions_need_a_token_and_a_sane_url(service: tuple[Service, int]) -> None:
    svc, _ = service
    with svc.client(token="") as c:
        r = c.post("/v1/subscriptions/webhooks", json={"url": "http://127.0.0.1:9/x"})
        assert r.status_code == 401, "anonymous reads do not extend to subscriptions"
    with svc.client(token=svc.token("read")) as c:
        r = c.post("/v1/subscriptions/webhooks", json={"url": "ftp://example.org/x"})
        assert r.status_code == 422 and "http(s)" in r.json()["detail"]
        created = c.post("/v1/subscriptions/webhooks", json={"url": "http://127.0.0.1:9/x"}).json()
        listed = c.get("/v1/subscriptions/webhooks").json()["items"]
        assert created["id"] in [h["id"] for h in listed]
        assert all("secret" not in h for h in listed), "the secret is shown once, at creation"
        assert c.delete(f"/v1/subscriptions/webhooks/{created['id']}").status_code == 204
        assert c.delete(f"/v1/subscriptions/webhooks/{created['id']}").status_code == 404
