"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the real service on loopback (ingest, flow and API processes, real Zarr, Bytewax).

The service runs simulated meters and two eddy-covariance towers; a permit rule on a stack's
hourly CO2 is created through the API, then the HJ 212 stack simulator sends a simulated day over
TCP (~30 s), as tests/e2e/test_alerts.py does. The page is open all along:

- it loads: fleet status (roles alive, journal lag, last write, device counts) and the site lists;
- a firing alert is shown within 2 s of its event being recorded: the time from the event's
  `created_ns` (written by the flow when it records the transition) to the moment the page put it
  in the feed (its `data-shown-ms`, the page's clock, which is this machine's clock);
- charts render with data, and the values drawn are the API's: every hourly CO2 point of the
  stack, the last flux of each tower, and the entity's emissions.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from connectors.simulators.cems_stacks import run_simulator
from storage.alert_rules import AlertRule
from tests.conftest import free_port
from tests.e2e.service import Service
from tests.e2e.test_alerts import (
    SITE,
    SseListener,
    hourly_co2_of_the_day,
    permit_rule,
    simulated_day,
)
from tests.e2e.test_cems import yesterday_local_midnight

pytestmark = pytest.mark.e2e
expect.set_options(
    timeout=20_000
)  # the machine is shared: pages refresh every second, not instantly

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALERT_WITHIN_S = 2.0
HOURS_OF_THE_DAY = 24
TOWERS = ["sim-tower-000", "sim-tower-001"]

CONFIG = f"""
[storage]
data_dir = "{{data_dir}}"
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
count = 20
interval_s = 1.0
[connectors.cems_simulator]
enabled = false
[ec.simulator]
count = 2
averaging_min = 0.25
batch_s = 0.5
[[cems.sites]]
id = "{SITE}"
mn = "SIMSTACK000000"
password = "123456"
"""


class DaySender:
    """Sends the simulated day once, in a thread (the test thread drives the browser)."""

    def __init__(self, start: int, port: int) -> None:
        self.start, self.port = start, port
        self.counts: dict[str, int] | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def send(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cems-day", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            sim = simulated_day(self.start)
            self.counts = asyncio.run(run_simulator(sim, "127.0.0.1", self.port))
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def wait(self, timeout_s: float = 120.0) -> dict[str, int]:
        self.send()
        assert self._thread is not None
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the simulated day was not sent in time"
        assert self.error is None, repr(self.error)
        assert self.counts is not None and self.counts["unanswered"] == 0, self.counts
        return self.counts


@pytest.fixture(scope="module")
def day() -> tuple[int, AlertRule]:
    start = yesterday_local_midnight()
    return start, permit_rule(hourly_co2_of_the_day(simulated_day(start), start))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int]]:
    cwd = tmp_path_factory.mktemp("dashboard")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")))
    hj212_port = free_port()
    svc = Service.start(
        cwd, free_port(), config, env={"CARBONSTREAM_CEMS__SERVER__PORT": str(hj212_port)}
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/cems/sites")["items"] or None)
        yield svc, hj212_port
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


@pytest.fixture(scope="module")
def sender(service: tuple[Service, int], day: tuple[int, AlertRule]) -> DaySender:
    """The permit rule, created through the API, and the sender of the day that breaches it."""
    svc, port = service
    with svc.client() as c:
        r = c.post("/v1/alerts/rules", json=[day[1].model_dump(exclude_none=True)])
        assert r.status_code == 201, r.text
    return DaySender(day[0], port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class PageLog:
    """Console errors and uncaught exceptions of the page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location}")

    def exception(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")


@pytest.fixture(scope="module")
def page(
    browser: Browser, service: tuple[Service, int], sender: DaySender
) -> Iterator[tuple[Page, PageLog]]:
    svc, _ = service
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, color_scheme="light", timezone_id="UTC"
    )
    pg = context.new_page()
    log = PageLog()
    pg.on("console", log.console)
    pg.on("pageerror", log.exception)
    pg.set_default_timeout(30_000)
    pg.goto(f"{svc.base_url}/dashboard/?refresh=1")
    try:
        yield pg, log
    finally:
        context.close()


def test_the_page_loads_with_fleet_status_and_sites(
    page: tuple[Page, PageLog], service: tuple[Service, int]
) -> None:
    pg, log = page
    svc, _ = service
    expect(pg).to_have_title("carbonstream — live dashboard")
    expect(pg.locator("#dashboard")).to_have_attribute("data-state", "ready")
    for role in ("ingest", "flow", "api"):
        expect(pg.locator(f"#roles li[data-role={role}]")).to_have_attribute("data-alive", "true")
    expect(pg.locator("#overall")).to_have_attribute("data-status", "ok")
    expect(pg.locator("#meters-total")).to_have_attribute(
        "data-value", str(svc.get_json("/v1/meters", limit=1)["total"])
    )
    expect(pg.locator("#journal-lag-records")).not_to_have_attribute("data-value", "")
    expect(pg.locator("#last-write")).not_to_have_attribute("data-value", "")
    expect(pg.locator("#device-states li")).to_have_count(1)  # no polled (Modbus) device here
    expect(pg.locator(f"#cems-sites tr[data-site={SITE}]")).to_have_count(1)
    for tower in TOWERS:
        expect(pg.locator(f"#ec-sites tr[data-site={tower}]")).to_have_count(1)
    expect(pg.locator("#alert-stream-state")).to_have_attribute("data-state", "live")
    assert log.errors == []

    # Served by the API: /dashboard leads there, / links to it, nothing may load from elsewhere.
    with httpx.Client(base_url=svc.base_url, follow_redirects=True) as c:
        r = c.get("/dashboard")
        assert r.status_code == 200 and r.url.path == "/dashboard/"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert c.get("/").json()["links"]["dashboard"] == "/dashboard/"


def test_a_firing_alert_appears_in_the_feed_within_2_s(
    page: tuple[Page, PageLog],
    service: tuple[Service, int],
    sender: DaySender,
    day: tuple[int, AlertRule],
) -> None:
    pg, log = page
    svc, _ = service
    rule = day[1]
    expect(pg.locator("#alert-stream-state")).to_have_attribute("data-state", "live")
    listener = SseListener(f"{svc.base_url}/v1/alerts/stream?rule={rule.id}", {}, stop_after=1)
    listener.start()
    assert listener.connected.wait(30)

    sender.send()
    listener.join(120)
    assert [e["transition"] for e in listener.events] == ["firing"], svc.log_tail()
    delivered_ms = time.time() * 1000  # when this test's own SSE subscriber got it
    event = listener.events[0]

    item = pg.locator(f"#alert-feed li[data-seq='{event['seq']}']")
    expect(item).to_have_attribute("data-transition", "firing", timeout=10_000)
    shown_ms = float(item.get_attribute("data-shown-ms") or "nan")
    (recorded,) = [
        e
        for e in svc.get_json("/v1/alerts/events", rule=rule.id)["items"]
        if e["seq"] == event["seq"]
    ]
    created_ms = recorded["created_ns"] / 1e6
    latency_s = (shown_ms - created_ms) / 1000
    print(
        f"\nalert {event['seq']}: recorded -> shown in the page {latency_s * 1000:.0f} ms; "
        f"shown {(shown_ms - delivered_ms):+.0f} ms relative to a test SSE subscriber"
    )
    assert 0 <= latency_s < ALERT_WITHIN_S, f"shown {latency_s:.3f} s after it was recorded"

    # What the feed shows of it: severity colour, transition, rule and subject.
    expect(item).to_have_attribute("data-severity", "critical")
    expect(item).to_have_attribute("data-rule", rule.id)
    expect(item.locator(".badge.firing")).to_have_text("firing")
    expect(item.locator(".subject")).to_have_text(rule.subject)
    border = item.evaluate("el => getComputedStyle(el).borderLeftColor")
    assert border == "rgb(180, 35, 24)", border  # --bad: critical
    expect(pg.locator("#firing-count")).to_have_attribute("data-value", "1")

    # The day goes on: the alert resolves, and the feed keeps the newest first.
    sender.wait()
    resolved = pg.locator(f"#alert-feed li[data-alert-id='{event['alert_id']}']")
    expect(resolved).to_have_count(2, timeout=60_000)
    assert [resolved.nth(i).get_attribute("data-transition") for i in range(2)] == [
        "resolved",
        "firing",
    ]
    expect(pg.locator("#firing-count")).to_have_attribute("data-value", "0")
    assert log.errors == []


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _iso_z(t: str) -> str:
    return datetime.fromisoformat(t).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_charts_render_the_values_of_the_api(
    page: tuple[Page, PageLog], service: tuple[Service, int], sender: DaySender
) -> None:
    pg, log = page
    svc, _ = service
    sender.wait()

    # CEMS: every closed hour of the simulated day, drawn at the API's value.
    start = (datetime.now(UTC) - timedelta(hours=47)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hours = svc.wait_for(
        "the day's hours",
        lambda: (
            h
            if len(
                h := svc.get_json(f"/v1/cems/{SITE}/hourly", code="a05001", start=start)["hours"]
            )
            == HOURS_OF_THE_DAY
            else None
        ),
    )
    api = {_iso_z(h["hour_start"]): h["mass"] for h in hours}
    series = pg.locator(f"#chart-cems-co2 g.series[data-series={SITE}]")
    expect(series).to_have_attribute("data-count", str(len(api)), timeout=15_000)
    drawn = series.locator("circle").evaluate_all(
        "cs => cs.map(c => [c.dataset.t, Number(c.dataset.v)])"
    )
    assert len(drawn) == len(api)
    for t, v in drawn:
        assert _near(v, api[_iso_z(t)]), (t, v, api[_iso_z(t)])
    assert pg.locator("#chart-cems-co2 path").first.get_attribute("d")

    # EC: FC, H and LE of both towers; the newest drawn flux is the API's.
    for var in ("FC", "H", "LE"):
        figure = pg.locator(f"#chart-ec-{var}")
        expect(figure).to_have_attribute("data-state", "ready")
        for tower in TOWERS:
            g = figure.locator(f"g.series[data-series={tower}]")
            expect(g).not_to_have_attribute("data-count", "0")
            last_t = g.get_attribute("data-last-t") or ""
            last_v = float(g.get_attribute("data-last-v") or "nan")
            periods = svc.get_json(f"/v1/ec/{tower}/fluxes", start=last_t)["periods"]
            (p,) = [p for p in periods if _iso_z(p["period_start"]) == _iso_z(last_t)]
            assert _near(last_v, p[var]), (var, tower, last_v, p[var])
            assert g.locator("path").get_attribute("d")

    # Entities: the demo city's emissions by interval, then by day (the resolution selector).
    figure = pg.locator("#chart-entity-co2")
    expect(figure).to_have_attribute("data-state", "ready")
    expect(figure).to_have_attribute("data-entity", "demo-city")
    bars = figure.locator("g.bar-group")
    assert bars.count() >= 1
    drawn_t = [_iso_z(bars.nth(i).get_attribute("data-t") or "") for i in range(bars.count())]
    periods = svc.get_json("/v1/entities/demo-city/emissions", resolution="interval")["periods"]
    api_totals = {_iso_z(p["period_start"]): p["co2_kg"] for p in periods}
    assert set(drawn_t) <= set(api_totals)
    for i, t in enumerate(drawn_t[:-2]):  # the newest two minutes may still be filling
        assert _near(float(bars.nth(i).get_attribute("data-total") or "nan"), api_totals[t])
    assert all(float(bars.nth(i).get_attribute("data-total") or 0) > 0 for i in range(len(drawn_t)))

    pg.select_option("#entity-resolution", "day")
    expect(figure).to_have_attribute("data-resolution", "day")
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    expect(figure.locator(f"g.bar-group[data-t='{today.replace('Z', '.000Z')}']")).to_have_count(1)
    expect(pg.locator("#entity-latest dd").first).not_to_have_text("")
    assert log.errors == []
