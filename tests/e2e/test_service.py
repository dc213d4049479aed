"""End to end on loopback: the real service (3 processes, real ports, real Zarr directory, real
Bytewax run) is fed over HTTP and its results are read back over HTTP and with xarray."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xarray as xr

from benchmarks.reference.meters import interval_consumption
from storage.factors import seed_table_text
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

S = 10**9
STEP = 60 * S
ORIGIN = 1_577_836_800 * S  # 2020-01-01, the default grid origin
START = 1_772_323_200 * S  # 2026-03-01T00:00Z
PUSHED_RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}

CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
count = 20
interval_s = 1.0
[[streams.meters]]
id = "e2e-grid"
region = "CN"
[[streams.meters]]
id = "e2e-green"
commodity = "green_electricity"
basis = "market"
"""


def seed_factor(energy_type: str, region: str, year: str, basis: str) -> float:
    for r in csv.DictReader(io.StringIO(seed_table_text())):
        if (r["energy_type"], r["region"], r["year"], r["basis"]) == (
            energy_type,
            region,
            year,
            basis,
        ):
            return float(r["factor"])
    raise KeyError(energy_type)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    cwd = tmp_path_factory.mktemp("service")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")))
    svc = Service.start(cwd, free_port(), config)
    try:
        svc.wait_for("the API", lambda: svc.get_json("/health"))
        yield svc
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


def pushed_series(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = START + np.cumsum(rng.integers(10, 30, 200)) * S
    v = 1_000.0 + np.round(np.cumsum(rng.uniform(0.0, 0.3, 200)), 3)
    return t.astype(np.int64), v


def test_pushed_readings_come_back_as_intervals_over_http(service: Service) -> None:
    series = {"e2e-grid": pushed_series(1), "e2e-green": pushed_series(2)}
    rows = [
        {"meter": m, "ts": int(t) / 1e9, "value": float(v)}
        for m, (ts, vs) in series.items()
        for t, v in zip(ts, vs, strict=True)
    ]
    bad = [
        {"meter": "nobody", "ts": "2026-03-01T00:00:00Z", "value": 1.0},
        {"meter": "e2e-grid", "ts": "2026-03-01T00:00:00", "value": 1.0},
    ]
    with service.client() as c:
        r = c.post("/v1/ingest/meters", json=rows + bad)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == len(rows)
    assert [(x["index"], x["reason"]) for x in body["rejected"]] == [
        (len(rows), "unknown_meter"),
        (len(rows) + 1, "bad_timestamp"),
    ]

    factors = {
        "e2e-grid": seed_factor("electricity", "CN", "2023", "location"),
        "e2e-green": seed_factor("green_electricity", "*", "*", "market"),
    }
    for meter, (t, v) in series.items():
        slots, cons, cov = interval_consumption(t, v, ORIGIN, STEP)
        expected_last = (int(t[-1]) - ORIGIN) // STEP * STEP + ORIGIN

        def complete(meter: str = meter, last: int = expected_last) -> dict[str, object] | None:
            got = service.get_json(f"/v1/meters/{meter}/intervals", **PUSHED_RANGE)
            ivs = got["intervals"]
            return got if ivs and ivs[-1]["period_start"] == _iso(last) else None

        got = service.wait_for(f"intervals of {meter}", complete)
        assert got["unit"] == "kWh" and got["resolution_s"] == 60
        ivs = [iv for iv in got["intervals"] if iv["coverage"] > 0]
        assert [iv["period_start"] for iv in ivs] == [
            _iso(ORIGIN + int(s) * STEP) for s in slots[cov > 0]
        ]
        np.testing.assert_allclose([iv["consumption"] for iv in ivs], cons[cov > 0], rtol=1e-9)
        np.testing.assert_allclose([iv["coverage"] for iv in ivs], cov[cov > 0], rtol=1e-6)
        np.testing.assert_allclose(
            [iv["co2_kg"] for iv in ivs], cons[cov > 0] * factors[meter], rtol=1e-9, atol=1e-12
        )

    with service.client() as c:
        text = c.get("/v1/meters/e2e-grid/intervals", params={**PUSHED_RANGE, "format": "csv"}).text
    header, first = text.splitlines()[:2]
    assert header == "period_start,consumption,co2_kg,coverage,reading"
    assert first.startswith("2026-03-01T00:0")

    # The same cells through the generic stream routes; latest is the newest of them.
    listed = service.get_json("/v1/streams", kind="meters", limit=10_000)["items"]
    assert {"kind": "meters", "id": "e2e-grid"}.items() <= next(
        i for i in listed if i["id"] == "e2e-grid"
    ).items()
    cells = service.get_json("/v1/streams/meters/e2e-grid/data", **PUSHED_RANGE)["cells"]
    grid = service.get_json("/v1/meters/e2e-grid/intervals", **PUSHED_RANGE)["intervals"]
    assert [c["time"] for c in cells] == [iv["period_start"] for iv in grid]
    assert [c["co2"] for c in cells] == [iv["co2_kg"] for iv in grid]
    newest = service.get_json("/v1/streams/meters/e2e-grid/latest")
    assert newest["time"] == grid[-1]["period_start"]
    assert newest["values"]["reading"] == grid[-1]["reading"]
    with service.client() as c:
        assert c.get("/v1/streams/meters/no-such-meter/latest").status_code == 404
        assert c.get("/v1/streams/meters/e2e-grid/latest?product=cems/hour").status_code == 400

    # Parquet and Arrow (by parameter and by Accept header) carry the same rows, typed.
    as_json = service.get_json("/v1/meters/e2e-grid/intervals", **PUSHED_RANGE)["intervals"]
    with service.client() as c:
        url = "/v1/meters/e2e-grid/intervals"
        parquet = c.get(url, params={**PUSHED_RANGE, "format": "parquet"})
        arrow = c.get(
            url, params=PUSHED_RANGE, headers={"accept": "application/vnd.apache.arrow.stream"}
        )
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    for frame in (pl.read_parquet(io.BytesIO(parquet.content)), pl.read_ipc_stream(arrow.content)):
        assert frame.schema["period_start"] == pl.Datetime("ns", "UTC")
        assert frame.height == len(as_json)
        assert [_iso(t) for t in frame["period_start"].cast(pl.Int64)] == [
            iv["period_start"] for iv in as_json
        ]
        np.testing.assert_array_equal(
            frame["consumption"].fill_nan(None).to_numpy(),
            np.array([iv["consumption"] for iv in as_json], dtype=float),
        )


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // S))


def test_simulated_meters_appear_and_grow(service: Service) -> None:
    def reading_of(meter: str) -> tuple[str, float] | None:
        items = service.get_json("/v1/meters/latest", limit=100)["items"]
        for it in items:
            if it["meter"] == meter and it["reading"] is not None:
                return it["period_start"], it["reading"]
        return None

    first = service.wait_for("a simulated reading", lambda: reading_of("sim-meter-00003"))
    later = service.wait_for(
        "a larger reading",
        lambda: r if (r := reading_of("sim-meter-00003")) and r[1] > first[1] else None,
    )
    assert later[1] > first[1] and later[0] >= first[0]


def test_health_and_metrics(service: Service) -> None:
    health = service.wait_for(
        "a healthy service with a recent write",
        lambda: h if (h := service.get_json("/health"))["last_write"]["time"] else None,
    )
    assert health["status"] == "ok", health
    assert all(r["alive"] for r in health["roles"].values())
    assert len(health["journal"]["partitions"]) == 2
    with service.client() as c:
        text = c.get("/metrics").text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['carbonstream_samples_ingested_total{source="meter-simulator"}'] >= 20
    assert samples['carbonstream_meter_readings_total{status="accepted"}'] > 0
    assert 'carbonstream_journal_lag_records{partition="0"}' in samples


def test_the_product_opens_in_xarray_with_stream_and_time(service: Service) -> None:
    service.wait_for(
        "the pushed meter in the store",
        lambda: (
            service.get_json(
                "/v1/meters/e2e-grid/intervals",
                start="2026-03-01T00:00:00Z",
                end="2026-03-01T01:00:00Z",
            )["intervals"]
            or None
        ),
    )
    ds = xr.open_zarr(service.data_dir / "products.zarr", group="meters/interval")
    assert set(ds.coords) >= {"stream", "time"}
    assert ds["consumption"].dims == ("stream", "time")
    assert ds["co2"].attrs["units"] == "kg"
    cell = ds.sel(stream="e2e-grid", time=np.datetime64("2026-03-01T00:10:00", "ns"))
    api = service.get_json(
        "/v1/meters/e2e-grid/intervals", start="2026-03-01T00:10:00Z", end="2026-03-01T00:11:00Z"
    )["intervals"][0]
    assert float(cell["consumption"]) == pytest.approx(api["consumption"], rel=1e-12)
    assert str(cell["unit"].values) == "kWh"


def test_default_run_serves_growing_values_within_15_s(tmp_path: Path) -> None:
    """`make run` = `carbonstream run` with no config file: data under ./carbonstream-data, a
    simulated fleet as input. (The port is moved off 8000 so the test cannot collide.)"""
    svc = Service.start(tmp_path, free_port())
    try:

        def some_values() -> list[dict[str, object]] | None:
            items = svc.get_json("/v1/meters/latest", limit=5)["items"]
            return items or None

        first = svc.wait_for("simulated meter values", some_values, timeout_s=15.0)
        elapsed = time.monotonic() - svc.started
        assert elapsed < 15.0
        assert (tmp_path / "carbonstream-data" / "products.zarr").is_dir()
        grown = svc.wait_for(
            "values to grow",
            lambda: (
                items
                if (items := some_values()) and items[0]["reading"] > first[0]["reading"]  # type: ignore[operator]
                else None
            ),
        )
        assert grown[0]["meter"] == first[0]["meter"]
    finally:
        assert svc.stop() == 0, svc.log_tail()


def test_entity_rollups_sum_the_simulated_fleet(service: Service) -> None:
    """The demo city holds every simulated meter: its CO2 for a closed interval equals the sum of
    the meters' CO2 read back from the meter endpoint."""
    tree = service.get_json("/v1/entities")["items"]
    city = next(e for e in tree if e["id"] == "demo-city")
    assert city["members"] == 20 and sorted(city["children"]) == ["demo-north", "demo-south"]

    def closed_city_interval() -> dict[str, object] | None:
        periods = service.get_json("/v1/entities/demo-city/emissions", resolution="interval")[
            "periods"
        ]
        done = [p for p in periods if p["completeness"] == 1.0]
        return done[-2] if len(done) >= 2 else None

    start = str(
        service.wait_for("a complete city interval", closed_city_interval, timeout_s=150)[
            "period_start"
        ]
    )
    end = _iso(int(np.datetime64(start.rstrip("Z"), "ns").astype(np.int64)) + STEP)

    def city_equals_its_meters() -> tuple[float, float] | None:
        # The roll-up follows the meters within a cycle: wait until both agree.
        total = 0.0
        for m in (f"sim-meter-{i:05d}" for i in range(20)):
            (iv,) = service.get_json(f"/v1/meters/{m}/intervals", start=start, end=end)["intervals"]
            total += iv["co2_kg"]
        periods = service.get_json(
            "/v1/entities/demo-city/emissions", resolution="interval", start=start, end=end
        )["periods"]
        city = periods[0]
        if city["co2_kg"] != pytest.approx(total, rel=1e-12):
            return None
        return city["co2_kg"], city["co2_scope2_kg"]

    co2, scope2 = service.wait_for(
        "the city to equal the sum of its meters", city_equals_its_meters
    )
    assert scope2 == co2
    day = service.get_json("/v1/entities/demo-ent-01/emissions", resolution="day")
    assert day["activity"]["unit"] == "m2"
    (today,) = day["periods"][-1:]
    assert today["co2_intensity_kg_per_m2"] == pytest.approx(today["co2_kg"] / 5000.0)


def test_a_rule_on_entity_emissions_fires_after_a_rollup(service: Service) -> None:
    """Entity totals are materialized by the roll-up, not cells of the flow: their rules are
    judged after a roll-up cycle, on closed intervals, with the entity as label."""
    rule = {
        "id": "city-any-co2",
        "product": "entities/interval",
        "variable": "co2",
        "subject": "demo-city",
        "threshold": 0.0,
    }
    with service.client() as c:
        assert c.post("/v1/alerts/rules", json=[rule]).status_code == 201
        bad = c.post("/v1/alerts/rules", json=[{**rule, "variable": "co3"}])
        assert bad.status_code == 422 and "no variable 'co3'" in bad.json()["detail"]

    def fired() -> dict[str, object] | None:
        items = service.get_json("/v1/alerts", status="firing")["items"]
        return next((a for a in items if a["rule"] == "city-any-co2"), None)

    alert = service.wait_for("the entity alert", fired, timeout_s=180)
    assert alert["subject"] == "demo-city" and alert["labels"] == {"entity": "demo-city"}


def test_push_limits_and_mixed_csv_over_http(service: Service) -> None:
    with service.client() as c:
        # 100 MB: refused with 413 from the declared length, before the body is buffered.
        r = c.post(
            "/v1/ingest/meters", content=b"x" * (100 << 20), headers={"content-type": "text/csv"}
        )
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert "exceeds" in r.json()["detail"]
        # 1e6 rows (about 40 MB, under the byte limit): refused by the row limit.
        rows = b"meter,ts,value\n" + b"e2e-grid,1772323200,1.0\n" * 1_000_000
        r = c.post("/v1/ingest/meters", content=rows, headers={"content-type": "text/csv"})
        assert r.status_code == 413 and "exceed the limit of 500000" in r.json()["detail"]
        # Wrong types, negative counters, unknown meters next to a valid row: 202, row by row.
        body = (
            b"meter,ts,value\n"
            b"e2e-grid,2026-03-02T00:00:00Z,2000.5\n"
            b"e2e-grid,2026-03-02T00:01:00Z,lots\n"
            b"e2e-grid,2026-03-02T00:02:00Z,-4\n"
            b"nobody,2026-03-02T00:03:00Z,1\n"
        )
        r = c.post("/v1/ingest/meters", content=body, headers={"content-type": "text/csv"})
        assert r.status_code == 202
        got = r.json()
        assert got["accepted"] == 1
        assert [(x["index"], x["reason"]) for x in got["rejected"]] == [
            (1, "bad_value"),
            (2, "bad_value"),
            (3, "unknown_meter"),
        ]
        r = c.post(
            "/v1/ingest/meters",
            content=b"meter,ts,value\nnobody,1,1\n",
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 422 and r.json()["rejected_by_reason"] == {"unknown_meter": 1}


def test_factor_versions_and_recomputed_reports_over_http(service: Service) -> None:
    with service.client() as c:
        assert [v["version"] for v in c.get("/v1/factors").json()["items"]][:1] == [1]
        bad = c.post("/v1/factors", params={"note": "x"}, content=b"not,a,table\n")
        assert bad.status_code == 422 and "header must be" in bad.json()["detail"]
        revised = seed_table_text().replace(
            "electricity,CN,2023,0.5306,", "electricity,CN,2023,1.0612,"
        )
        r = c.post(
            "/v1/factors", params={"note": "doubled 2023 grid factor"}, content=revised.encode()
        )
        assert r.status_code == 201
        v2 = r.json()["version"]
        service.wait_for(
            "a stored day of the demo city",
            lambda: (
                service.get_json("/v1/entities/demo-city/emissions", resolution="day")["periods"]
                or None
            ),
        )
        today = {
            "resolution": "day",
            "start": _iso(time.time_ns() - 86_400 * S),
            "end": _iso(time.time_ns() + 60 * S),
        }
        one = c.get(
            "/v1/entities/demo-city/emissions", params={**today, "factor_version": 1}
        ).json()["periods"]
        two = c.get(
            "/v1/entities/demo-city/emissions", params={**today, "factor_version": v2}
        ).json()["periods"]
        assert one and len(one) == len(two)
        # The live day grows between the two requests: compare CO2 per kWh, which does not.
        ratio = [
            (b["co2_kg"] / b["electricity"]) / (a["co2_kg"] / a["electricity"])
            for a, b in zip(one, two, strict=True)
            if a["electricity"]
        ]
        assert ratio and all(x == pytest.approx(2.0, rel=1e-9) for x in ratio)
        missing = c.get("/v1/entities/demo-city/emissions", params={"factor_version": 99})
        assert missing.status_code == 404


def test_writes_need_a_token_with_the_right_scope(service: Service) -> None:
    body = b"meter,ts,value\ne2e-grid,2026-03-03T00:00:00Z,3000.0\n"
    csv = {"content-type": "text/csv"}
    with service.client(token="") as anonymous:
        r = anonymous.post("/v1/ingest/meters", content=body, headers=csv)
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        assert anonymous.post("/v1/entities", json=[{"id": "x"}]).status_code == 401
        assert anonymous.get("/v1/meters").status_code == 200, "reads are anonymous here"
    with service.client(token=service.token("read")) as reader:
        r = reader.post("/v1/ingest/meters", content=body, headers=csv)
        assert r.status_code == 403 and "'ingest' scope" in r.json()["detail"]
    with service.client(token=service.token("ingest")) as ingester:
        assert ingester.post("/v1/ingest/meters", content=body, headers=csv).status_code == 202
        assert ingester.post("/v1/entities", json=[{"id": "x"}]).status_code == 403
    with service.client(token="cst_nothere_secret") as forged:
        assert forged.post("/v1/ingest/meters", content=body, headers=csv).status_code == 401
