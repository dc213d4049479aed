"""End to end on loopback for eddy covariance: the real service (ingest, flow, API processes, real
ports, Zarr, Bytewax). Simulated towers stream 10 Hz turbulence and their fluxes come back over
HTTP; a tower pushed over HTTP gets exactly the fluxes the kernel gives for its samples."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from carbonstream.core import ec as ec_core
from connectors.ec.settings import EcSimulatorSettings, simulated_sites, site_columns
from connectors.simulators.ec_towers import TowerFleet
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

S = 10**9
START = 1_772_323_200 * S  # 2026-03-01T00:00Z

CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
count = 5
[ec.simulator]
count = 2
sampling_hz = 10
averaging_min = 0.25
batch_s = 0.5
[[ec.sites]]
id = "pushed-tower"
sampling_hz = 10
averaging_min = 0.5
sonic = { model = "csat3", height_m = 4.0 }
gas = { model = "generic", path = "open", path_length_m = 0.127, path_diameter_m = 0.0095, \
        response_time_s = 0.1 }
columns = { pressure = "PA" }
units = { co2 = "mixing_ratio", h2o = "mixing_ratio" }
methods = { lag_co2 = [0.3, 0.0, 1.3], lag_h2o = [0.3, 0.0, 1.3] }
sonic_diag = false
gas_diag = false
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp: Path = tmp_path_factory.mktemp("ec-e2e")
    cfg = tmp / "carbonstream.toml"
    cfg.write_text(CONFIG.replace("{data_dir}", str(tmp / "data")))
    svc = Service.start(tmp, free_port(), cfg)
    try:
        yield svc
    finally:
        assert svc.stop() == 0, svc.log_tail()


def test_simulated_towers_fluxes_appear_over_http(service: Service) -> None:
    sites = service.wait_for("the API", lambda: service.get_json("/v1/ec/sites"))
    ids = [s["id"] for s in sites["items"]]
    assert {"sim-tower-000", "sim-tower-001", "pushed-tower"} <= set(ids)

    def periods() -> list[dict[str, float]] | None:
        # The first period is partial (the tower starts streaming in its middle): wait for the
        # first complete one.
        got = service.get_json("/v1/ec/sim-tower-001/fluxes")["periods"]
        return got[1:] if len(got) >= 2 else None

    for p in service.wait_for("a complete simulated period", periods, timeout_s=400):
        assert p["FC"] is not None, f"no fluxes for a complete period: {p}"
        # 15-s simulated periods (150 samples): the simulator's mean fluxes are an uptake of CO2
        # and upward H and LE, but one short period can fluctuate past zero; plausible ranges.
        assert -60 < p["FC"] < 20 and -200 < p["H"] < 800 and -200 < p["LE"] < 800, p
        assert p["USTAR"] > 0.1
        # Exactly the kernel's fluxes for the period's samples. The lag found is not always the
        # simulated 0.3 s: in 24 of 300 simulated 15-s periods the cross-covariance peaks
        # elsewhere (150 red-noise samples), and the wall clock picks the periods served.
        expected = simulated_period_fluxes(1, unix_ns(str(p["period_start"])))
        for name in ("FC", "H", "LE", "USTAR", "CO2_TLAG_ACTUAL"):
            assert p[name] == pytest.approx(expected[name], rel=1e-9), (name, p)
    with service.client() as c:
        text = c.get("/v1/ec/sim-tower-001/fluxes", params={"format": "fluxnet"}).text
    header, first = text.splitlines()[:2]
    assert header.startswith("TIMESTAMP_START,TIMESTAMP_END,FC,")
    assert len(first.split(",")[0]) == 12


def test_pushed_tower_gets_the_kernels_fluxes(service: Service) -> None:
    service.wait_for("the API", lambda: service.get_json("/v1/ec/sites"))
    sim = EcSimulatorSettings(count=1, sampling_hz=10, averaging_min=0.5)
    fleet = TowerFleet(sim)
    period_ns = fleet.period_ns
    with service.client() as c:
        # One whole period in 1-s batches, then the first second of the next one closes it.
        for t in range(START, START + period_ns + S, S):
            ts, cols = fleet.samples(0, t, t + S)
            body = {"ts_ns": ts.tolist(), **{k: v.tolist() for k, v in cols.items()}}
            body["PA"] = body.pop("pressure_pa")
            r = c.post("/v1/ingest/ec/pushed-tower", content=orjson.dumps(rename(body)))
            assert r.status_code == 202, r.text

    params = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T01:00:00Z"}

    def periods() -> list[dict[str, float]] | None:
        got = service.get_json("/v1/ec/pushed-tower/fluxes", **params)["periods"]
        return got or None

    (got,) = service.wait_for("pushed fluxes", periods, timeout_s=60)
    from connectors.ec.settings import EcSiteSettings

    site = EcSiteSettings.model_validate(
        {
            "id": "pushed-tower",
            "sampling_hz": 10,
            "averaging_min": 0.5,
            "sonic": {"model": "csat3", "height_m": 4.0},
            "gas": {
                "model": "generic",
                "path": "open",
                "path_length_m": 0.127,
                "path_diameter_m": 0.0095,
                "response_time_s": 0.1,
            },
            "columns": {"pressure": "PA"},
            "units": {"co2": "mixing_ratio", "h2o": "mixing_ratio"},
            "methods": {"lag_co2": [0.3, 0.0, 1.3], "lag_h2o": [0.3, 0.0, 1.3]},
            "sonic_diag": False,
            "gas_diag": False,
        }
    )
    cols = {k: v for k, v in fleet.period(0, START // period_ns).items() if k in site_columns(site)}
    expected, _ = ec_core.EcProcessor(site.kernel_config()).process(cols)
    for name in ("FC", "LE", "H", "USTAR", "ZL"):
        assert math.isfinite(got[name])
        assert got[name] == pytest.approx(expected[name], rel=1e-9), name
    assert got["period_start"] == "2026-03-01T00:00:00Z"


def unix_ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * S


def simulated_period_fluxes(tower: int, period_start_ns: int) -> dict[str, float]:
    """What the kernel gives for one whole period of a simulated tower of CONFIG."""
    sim = EcSimulatorSettings(count=2, sampling_hz=10, averaging_min=0.25, batch_s=0.5)
    site = simulated_sites(sim)[tower]
    fleet = TowerFleet(sim)
    samples = fleet.period(tower, period_start_ns // fleet.period_ns)
    cols = {k: v for k, v in samples.items() if k in site_columns(site)}
    fluxes, _ = ec_core.EcProcessor(site.kernel_config()).process(cols)
    return dict(fluxes)


def rename(body: dict[str, list[float]]) -> dict[str, list[float]]:
    """The push columns are the kernel's names (pressure_pa), whatever the site's file names."""
    body["pressure_pa"] = body.pop("PA")
    return body
