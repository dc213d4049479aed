"""CEMS acceptance, end to end: the real service (ingest with the HJ 212 server, the Bytewax flow,
the API) on loopback; the simulator sends three stacks' packets for a whole simulated day over
TCP, accelerated; the hourly CO2 served by the API must equal an independent computation from
the frames that were sent (decoded by the pure-Python reference decoder, integrated with numpy)
to 0.01 %, and the day, the accounting comparison and the quality signals must follow."""

from __future__ import annotations

import asyncio
import io
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.reference import hj212 as ref212
from benchmarks.reference.cems import hourly_mass, minute_means
from connectors.hj212.settings import CemsSimulatorSettings
from connectors.simulators.cems_stacks import run_simulator
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

NS = 10**9
DAY = 86_400
OFFSET_S = 8 * 3600
STACKS = 3
CO2_K = 44.01 / 22.414 * 1e-2  # kg/h per (% x m3/h)


def sites_toml() -> str:
    return "".join(
        f'[[cems.sites]]\nid = "sim-stack-{i:03d}"\nmn = "SIMSTACK{i:06d}"\npassword = "123456"\n'
        '[[cems.sites.fuel_meters]]\ncode = "f01"\n'
        for i in range(STACKS)
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
"""


def yesterday_local_midnight() -> int:
    """Start of yesterday at +08:00, in Unix seconds: the simulated day ends before now."""
    now = time.time()
    return int((now + OFFSET_S) // DAY * DAY - OFFSET_S - DAY)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int]]:
    cwd = tmp_path_factory.mktemp("cems-service")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")) + sites_toml())
    hj212_port = free_port()
    svc = Service.start(
        cwd, free_port(), config, env={"CARBONSTREAM_CEMS__SERVER__PORT": str(hj212_port)}
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/cems/sites") or None)
        yield svc, hj212_port
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


def independent_hourly_co2(frames: list[bytes]) -> dict[int, float]:
    """Hour start (Unix s) -> CO2 kg, from the real-time packets as sent."""
    t, q, qf, c, cf = [], [], [], [], []
    for f in frames:
        p = ref212.decode(f, verify_crc=False)
        if p.cn != 2011:
            continue
        assert p.data_time is not None
        local = p.data_time.replace(tzinfo=UTC).timestamp()
        t.append(int((local - OFFSET_S) * 1000))
        q.append((p.number("a00000", "Rtd") or np.nan) * 3600)
        qf.append(ord(p.flag("a00000") or "N"))
        c.append(p.number("a05001", "Rtd") or np.nan)
        cf.append(ord(p.flag("a05001") or "N"))
    t_ms = np.array(t, np.int64)
    minutes, qm = minute_means(t_ms, np.array(q), np.array(qf, np.uint8))
    _, cm = minute_means(t_ms, np.array(c), np.array(cf, np.uint8))
    h = hourly_mass(minutes, qm, cm, CO2_K)
    assert h.valid.all()
    return {int(hr) * 3600: float(m) for hr, m in zip(h.hour, h.mass, strict=True)}


def iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_simulated_day_over_tcp_gives_the_hourly_co2_of_what_was_sent(
    service: tuple[Service, int], tmp_path: Path
) -> None:
    svc, port = service
    start = yesterday_local_midnight()
    sim = CemsSimulatorSettings(
        count=STACKS,
        rate=3000.0,
        realtime_interval_s=30.0,
        start=iso(start),
        duration_s=DAY,
        seed=11,
    )
    sent: dict[str, list[bytes]] = defaultdict(list)
    counts = asyncio.run(
        run_simulator(sim, "127.0.0.1", port, lambda site, f: sent[site].append(f))
    )
    assert counts["unanswered"] == 0 and counts["answered"] == STACKS * (2880 + 1440 + 24)

    window = {"start": iso(start), "end": iso(start + DAY)}

    def all_hours(site: str) -> list[dict[str, object]] | None:
        hours = svc.get_json(f"/v1/cems/{site}/hourly", code="a05001", **window)["hours"]
        done = [h for h in hours if h["rule"] == "measured"]
        return hours if len(done) == 24 else None

    for i in range(STACKS):
        site = f"sim-stack-{i:03d}"
        hours = svc.wait_for(f"24 hours of {site}", lambda site=site: all_hours(site), 60.0)
        want = independent_hourly_co2(sent[site])
        got = {
            int(datetime.fromisoformat(str(h["hour_start"])).timestamp()): float(h["mass"])  # type: ignore[arg-type]
            for h in hours
        }
        assert sorted(got) == sorted(want) == [start + 3600 * k for k in range(24)]
        for hour, mass in want.items():
            assert got[hour] == pytest.approx(mass, rel=1e-4), iso(hour)
        # The calibration (03:xx local) is visible, and does not invalidate its hour.
        cal = [h for h in hours if h["calibration_minutes"]]
        assert len(cal) == 1 and "calibration" in cal[0]["quality"]  # type: ignore[operator]

        # The local day is complete, valid, and its CO2 is the sum of its hours.
        (day,) = svc.get_json(f"/v1/cems/{site}/daily", code="a05001", **window)["days"]
        assert day["status"] == "valid" and day["measured_hours"] == 24
        assert day["mass"] == pytest.approx(sum(want.values()), rel=1e-4)

        # Monitoring vs accounting: stack 2 reports 15 % more gas than its CO2 implies.
        totals = svc.get_json(f"/v1/cems/{site}/totals", **window)["channels"]
        co2 = next(c for c in totals if c["code"] == "a05001")
        acc = co2["accounting"]
        assert acc["hours"] == 24
        assert acc["flagged"] is (i == 2)
        assert acc["relative_error"] == pytest.approx(
            1 / (1 + (0.03, -0.05, 0.15)[i]) - 1, abs=2e-3
        )
        assert ("accounting_disagreement" in day["quality"]) is (i == 2)

    # Stack 1's SO2 fault (10:00-12:00 local) was substituted by the HJ 75 rule.
    so2 = svc.get_json("/v1/cems/sim-stack-001/hourly", code="a21026", **window)["hours"]
    assert [h["rule"] for h in so2[10:12]] == ["hj75_short_gap"] * 2
    # Sites of every kind in one list, and the stack's newest hour through the stream routes.
    sites = svc.get_json("/v1/sites", kind="cems")["items"]
    assert [s["id"] for s in sites] == [f"sim-stack-{i:03d}" for i in range(STACKS)]
    assert "sim-stack-001/a05001" in sites[1]["streams"]
    last_hour = svc.get_json(sites[1]["links"]["latest"].split("?")[0], product="cems/hour")
    hours = svc.get_json("/v1/cems/sim-stack-001/hourly", code="a05001", **window)["hours"]
    assert last_hour["time"] == hours[-1]["hour_start"]
    assert last_hour["values"]["mass"] == pytest.approx(hours[-1]["mass"])
    with svc.client() as c:
        r = c.get("/v1/cems/sim-stack-001/hourly", params={**window, "format": "parquet"})
    table = pl.read_parquet(io.BytesIO(r.content))
    assert table.height == len(svc.get_json("/v1/cems/sim-stack-001/hourly", **window)["hours"])
    assert table.schema["quality"] == pl.List(pl.String), "lists stay lists in Parquet"
    assert (
        table.filter(pl.col("code") == "a21026")["rule"].to_list()[10:12] == ["hj75_short_gap"] * 2
    )
    quality = svc.get_json("/v1/cems/sim-stack-001/quality", **window)
    counts_by_code = {v["code"]: v["counts"] for v in quality["variables"]}
    assert counts_by_code["a05001"]["calibration"] == 1
    with svc.client() as c:
        text = c.get("/metrics").text
    assert 'carbonstream_hj212_packets_total{cn="2011",site="sim-stack-000"}' in text
