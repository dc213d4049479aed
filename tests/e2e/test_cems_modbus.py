"""A CEMS site read from a Modbus data-acquisition unit, end to end: a simulated DAU (a real
pymodbus TCP server on loopback, registers set by the test) polled by the real service (ingest
with the DAU poller, the Bytewax flow, the API), on a simulated clock 180 times faster than real
time shared by the test. The minute and hourly products served over HTTP must hold the register
values; a stretch of NaN SO2 readings must show as fault minutes and be counted, not vanish."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.clock import NS_PER_S, ScaledClock
from connectors.simulators.cems_dau import DauServer, SimDau
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

RATE = 180.0
HOUR = 3600
CO2_K = 44.01 / 22.414 * 1e-2  # kg/h per (% x m3/h)
FLOW_M3_S, CO2_PCT, SO2, O2 = 52.5, 11.25, 35.5, 6.2

CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
durability = "os"
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[rollups]
enabled = false

[[cems.sites]]
id = "dau-stack"
mn = "DAU0001"
password = "123456"
repeat_packets = 0                  # the test's registers hold still
[[cems.sites.channels]]
code = "a05001"
unit = "%"
[[cems.sites.channels]]
code = "a21026"
[[cems.sites.channels]]
code = "a19001"

[cems.modbus]
health_interval_s = 1.0
simulated_clock = {{ rate = {rate}, start_ns = {start_ns}, anchor_ns = {anchor_ns} }}
[[cems.modbus.gateways]]
name = "sim-dau"
host = "127.0.0.1"
port = {port}
timeout_s = 20.0                    # simulated seconds: 0.11 s of wall time
backoff_s = 2.0
[[cems.modbus.gateways.units]]
site = "dau-stack"
unit_id = 1
interval_s = 20.0
phase_s = 10.0
[[cems.modbus.gateways.units.registers]]
code = "a00000"
address = 0
[[cems.modbus.gateways.units.registers]]
code = "a05001"
address = 2
valid_max = 25.0
[[cems.modbus.gateways.units.registers]]
code = "a21026"
address = 4
valid_min = 0.0
[[cems.modbus.gateways.units.registers]]
code = "a19001"
function = "input"
address = 0
data_type = "int16"
scale = 0.1
"""


def iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


@pytest.fixture(scope="module")
def dau() -> Iterator[tuple[SimDau, int]]:
    unit = SimDau(unit_id=1)
    unit.set_value(0, FLOW_M3_S)
    unit.set_value(2, CO2_PCT)
    unit.set_value(4, SO2)
    unit.set_value(0, round(O2 * 10), "int16", function="input")
    server = DauServer([unit])
    port = server.start_in_thread()
    try:
        yield unit, port
    finally:
        server.stop_thread()


def test_a_dau_site_gives_minutes_and_hours_of_its_registers(
    dau: tuple[SimDau, int], tmp_path: Path
) -> None:
    unit, port = dau
    # Simulated time starts an hour before a whole hour H0 (20 s of wall time for the service to
    # start), 3-4 h in the past (packets must not be from the future); H0 and H0 + 1 h are the
    # hours checked.
    h0 = int(time.time()) // HOUR * HOUR - 3 * HOUR
    start_ns = (h0 - HOUR) * NS_PER_S
    anchor = time.monotonic_ns()
    clock = ScaledClock(start_ns, rate=RATE, anchor_ns=anchor)
    config = tmp_path / "carbonstream.toml"
    config.write_text(
        CONFIG.replace("{data_dir}", str(tmp_path / "data"))
        .replace("{{", "{")
        .replace("}}", "}")
        .replace("{rate}", str(RATE))
        .replace("{start_ns}", str(start_ns))
        .replace("{anchor_ns}", str(anchor))
        .replace("{port}", str(port))
    )
    svc = Service.start(tmp_path, free_port(), config)
    try:
        # SO2 reads NaN for ten minutes of the second hour.
        nan_from, nan_to = h0 + HOUR + 600, h0 + HOUR + 1200
        while clock.now_s() < nan_from:
            assert svc.proc.poll() is None, svc.log_tail()
            time.sleep(0.02)
        unit.set_value(4, float("nan"))
        while clock.now_s() < nan_to:
            time.sleep(0.02)
        unit.set_value(4, SO2)

        window = {"start": iso(h0), "end": iso(h0 + 2 * HOUR)}

        def both_hours() -> list[dict[str, object]] | None:
            hours = svc.get_json("/v1/cems/dau-stack/hourly", **window)["hours"]
            mass = [h for h in hours if h["code"] in ("a05001", "a21026") and h["rule"]]
            return hours if len(mass) == 4 else None

        hours = svc.wait_for("two closed hours", both_hours, 120.0)
        by = {(unix(str(h["hour_start"])), str(h["code"])): h for h in hours}
        assert sorted({t for t, _ in by}) == [h0, h0 + HOUR]
        for t in (h0, h0 + HOUR):
            flow, co2, o2 = by[(t, "a00000")], by[(t, "a05001")], by[(t, "a19001")]
            assert flow["value"] == pytest.approx(FLOW_M3_S * 3600, rel=1e-6)
            assert co2["value"] == pytest.approx(CO2_PCT, rel=1e-6)
            assert o2["value"] == pytest.approx(O2, rel=1e-6)
            assert co2["status"] == "valid" and co2["rule"] == "measured"
            op = int(co2["operating_minutes"])  # type: ignore[call-overload]
            assert 45 <= op <= 60 and int(co2["valid_minutes"]) >= 45  # type: ignore[call-overload]
            want = CO2_K * CO2_PCT * FLOW_M3_S * 3600 * op / 60
            assert co2["mass"] == pytest.approx(want, rel=1e-6), t
        so2 = by[(h0 + HOUR, "a21026")]
        assert so2["status"] == "valid" and so2["value"] == pytest.approx(SO2, rel=1e-6)

        # Minutes: the register values, flag N; the NaN stretch as D (fault) minutes.
        minutes = svc.get_json("/v1/cems/dau-stack/minutes", code="a21026", **window)["minutes"]
        flags = {unix(str(m["minute_start"])): m["flag"] for m in minutes}
        fault = sorted(t for t, f in flags.items() if f == "D")
        assert fault and nan_from - 60 <= fault[0] and fault[-1] < nan_to + 60
        assert 5 <= len(fault) <= 11, fault  # 10, fewer if the test itself was late
        good = [m for m in minutes if m["flag"] == "N"]
        assert len(good) >= 90 and all(m["value"] == pytest.approx(SO2) for m in good)
        co2_min = svc.get_json("/v1/cems/dau-stack/minutes", code="a05001", **window)["minutes"]
        co2_good = [m for m in co2_min if m["flag"] == "N"]
        assert len(co2_good) >= 90 and all(m["value"] == pytest.approx(CO2_PCT) for m in co2_good)
        # A minute whose every poll timed out (0.11 s of wall time: a stall of this shared
        # machine) is a B minute, as it would be at a site; anything else is wrong.
        co2_lost = [m for m in co2_min if m["flag"] != "N"]
        assert all(m["flag"] == "B" for m in co2_lost) and len(co2_lost) <= 5, co2_lost

        # The unit's health, where meters' and CEMS sites' are, and the NaN count.
        (site,) = svc.get_json("/v1/cems/sites")["items"]

        def published() -> dict[str, object] | None:
            m: dict[str, object] = svc.get_json("/v1/cems/sites")["items"][0]["modbus"]
            return m if m.get("polls_ok") else None

        modbus: dict[str, object] = svc.wait_for("unit health", published)
        assert site["id"] == "dau-stack" and modbus["state"] == "ok"
        assert int(modbus["total_errors"]) >= len(co2_lost)  # type: ignore[call-overload]
        assert modbus["gateway"] == "sim-dau" and modbus["unit_id"] == 1
        # 600 s at one poll per 20 s: 30, fewer if this shared machine stalls the poller.
        assert 15 <= modbus["bad_values"]["not_a_number"] <= 31  # type: ignore[index]
        health = svc.get_json("/v1/meters/health")["items"]
        assert [h["state"] for h in health if h["meter"] == "cems:dau-stack"] == ["ok"]
        with svc.client() as c:
            text = c.get("/metrics").text
        assert (
            'carbonstream_cems_modbus_values_total{outcome="not_a_number",site="dau-stack"}' in text
        )
        assert 'carbonstream_cems_packets_total{outcome="realtime",site="dau-stack"}' in text
    finally:
        code = svc.stop()
    assert code == 0, svc.log_tail()
