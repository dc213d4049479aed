"""Two API replicas on one PostgreSQL metadata database, with the flow.

Replica A is the API role of `carbonstream run` (with ingest and the flow: simulated meters);
replica B is a second `carbonstream api` process on another port, same configuration. Their
tokens, rules and alert events live in a PostgreSQL server the test session starts, and each
replica's alert hub is woken by the NOTIFY of the flow's transaction that records an event.

- a token (made with `carbonstream tokens create`, which has no API endpoint) is accepted by both
  replicas, and a subscription call without it is refused by B;
- a rule put through A is evaluated by the flow and fires; a subscriber on B's SSE stream,
  connected before the rule existed, receives the firing event exactly once;
- a subscriber on A resuming with Last-Event-ID gets the same events with the same ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.service import Service
from tests.e2e.test_alerts import SseListener
from tests.servers import new_database

pytestmark = pytest.mark.e2e

METER = "sim-meter-00001"
RULE = {
    "id": "replica-check",
    "product": "meters/interval",
    "variable": "consumption",
    "subject": METER,
    "threshold": -1.0,  # every reading breaches: fires once, never resolves
    "severity": "critical",
}

CONFIG = """
[storage]
data_dir = "{data_dir}"
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
count = 3
interval_s = 1.0
[connectors.cems_simulator]
enabled = false
[ec.simulator]
enabled = false
"""


@pytest.fixture
def replicas(tmp_path: Path, postgres_server: str) -> Iterator[tuple[Service, str]]:
    """(replica A with ingest and flow, base URL of replica B)."""
    config = tmp_path / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(tmp_path / "data")))
    env = {"CARBONSTREAM_STORAGE__METADATA_URL": new_database(postgres_server)}
    a = Service.start(tmp_path, free_port(), config, env=env)
    port_b = free_port()
    log_b = tmp_path / "replica-b.log"
    b = subprocess.Popen(
        [sys.executable, "-m", "carbonstream", "api", "--config", str(config)],
        cwd=tmp_path,
        env={**os.environ, **env, "CARBONSTREAM_API__PORT": str(port_b)},
        stdout=log_b.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url_b = f"http://127.0.0.1:{port_b}"
    try:
        a.wait_for("replica A", lambda: a.get_json("/v1/alerts/rules") or None, timeout_s=90)

        def b_up() -> bool | None:
            assert b.poll() is None, log_b.read_text()
            return httpx.get(f"{url_b}/v1/alerts/rules", timeout=5).status_code == 200 or None

        a.wait_for("replica B", b_up, timeout_s=90)
        yield a, url_b
    finally:
        b.terminate()
        try:
            # A role run alone stops on SIGTERM by the signal (the supervisor is not there to
            # turn it into an orderly exit); anything else is a failure.
            assert b.wait(timeout=30) in (0, -signal.SIGTERM), log_b.read_text()[-3000:]
        finally:
            if b.poll() is None:
                b.kill()
            assert a.stop() == 0, a.log_tail()


def test_tokens_rules_and_alert_events_are_shared_by_replicas(
    replicas: tuple[Service, str],
) -> None:
    a, url_b = replicas
    admin = a.token("admin")
    auth = {"Authorization": f"Bearer {admin}"}
    for base in (a.base_url, url_b):
        assert httpx.get(f"{base}/v1/subscriptions/webhooks", headers=auth).status_code == 200
    assert httpx.get(f"{url_b}/v1/subscriptions/webhooks").status_code == 401

    stream = "/v1/alerts/stream?rule=" + RULE["id"]
    on_b = SseListener(url_b + stream, auth)
    on_b.start()
    assert on_b.connected.wait(30)
    r = httpx.post(f"{a.base_url}/v1/alerts/rules", json=[RULE], headers=auth, timeout=30)
    assert r.status_code == 201, r.text
    assert RULE["id"] in [x["id"] for x in httpx.get(f"{url_b}/v1/alerts/rules").json()["items"]]

    deadline = time.monotonic() + 90
    while not on_b.events and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)  # a duplicate would arrive now
    on_b.stop()
    assert [(e["rule"], e["subject"], e["transition"]) for e in on_b.events] == [
        (RULE["id"], METER, "firing")
    ], a.log_tail()

    resumed = SseListener(f"{a.base_url}{stream}", {**auth, "Last-Event-ID": "0"}, stop_after=1)
    resumed.start()
    resumed.join(30)
    assert resumed.ids == on_b.ids and resumed.events == on_b.events
