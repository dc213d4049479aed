"""The API under load, on one core: `latest` requests per second and the latency of a one-day,
one-stream, 1-minute query.

A store is prepared by the real service (2,000 simulated meters, plus one meter pushed with a
full day of 1-minute readings), then the api role alone serves it from core 0 while the load
generator (benchmarks/http_load.py) runs on core 1. Each figure is paired in the same run with
its reference:
- `latest` against the framework's ceiling, a constant-JSON FastAPI route served the same way
  (benchmarks/reference/trivial_api.py): the ratio says how much of FastAPI's speed is kept;
- the one-day query against reading the same window straight from Zarr with xarray in-process
  (what a user with file access would write).
Targets (issue 6): latest >= 3,000 req/s on one core; one-day query p99 < 50 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import xarray as xr
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.http_load import LoadResult, closed_loop_load
from tests.conftest import free_port
from tests.e2e.service import Service

S = 10**9
DAY_START = 1_772_323_200  # 2026-03-01T00:00Z
DAY = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
LOAD_S = float(os.environ.get("API_BENCH_SECONDS", "8"))
SERVER_CORE, CLIENT_CORE = 0, 1
REPO = Path(__file__).resolve().parents[1]

CONFIG = """
[storage]
data_dir = "{data_dir}"
[connectors.meter_simulator]
count = 2000
interval_s = 10.0
[[streams.meters]]
id = "bench-meter"
region = "CN"
"""


def _pinned(core: int) -> None:
    os.sched_setaffinity(0, {core})


def _on_core(core: int) -> list[str]:
    """Command prefix running a server on one core (not preexec_fn: unsafe with threads)."""
    return ["taskset", "-c", str(core)]


def _wait_http(port: int, path: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered {path} on port {port}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory written by the real service: 2,000 simulated meters for a while and
    one meter with a full day of 1-minute readings."""
    cwd = tmp_path_factory.mktemp("api-bench")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")))
    svc = Service.start(cwd, free_port(), config)
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/meters", limit=1) or None, 60)
        t = DAY_START + np.arange(0, 86_400 + 60, 60)
        rows = [
            {"meter": "bench-meter", "ts": int(ts), "value": 1000.0 + 0.25 * k}
            for k, ts in enumerate(t)
        ]
        with svc.client() as c:
            assert c.post("/v1/ingest/meters", json=rows).status_code == 202

        def day_stored() -> bool | None:
            got = svc.get_json("/v1/meters/bench-meter/intervals", **DAY)["intervals"]
            return True if len(got) == 1440 else None

        svc.wait_for("a day of intervals", day_stored, 120)
        time.sleep(20)  # let the simulated fleet write a few periods
    finally:
        assert svc.stop() == 0, svc.log_tail()
    return config


@pytest.fixture(scope="module")
def api_port(store: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "CARBONSTREAM_API__PORT": str(port)}
    proc = subprocess.Popen(
        [
            *_on_core(SERVER_CORE),
            sys.executable,
            "-m",
            "carbonstream",
            "api",
            "--config",
            str(store),
        ],
        cwd=store.parent,
        env=env,
    )
    try:
        _wait_http(port, "/v1/streams/meters/bench-meter/latest")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def trivial_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *_on_core(SERVER_CORE),
            sys.executable,
            "-m",
            "benchmarks.reference.trivial_api",
            str(port),
        ],
        cwd=REPO,
    )
    try:
        _wait_http(port, "/latest")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(autouse=True)
def client_core() -> Iterator[None]:
    before = os.sched_getaffinity(0)
    _pinned(CLIENT_CORE)
    yield
    os.sched_setaffinity(0, before)


def _report(benchmark: BenchmarkFixture, name: str, r: LoadResult) -> None:
    benchmark.extra_info[name] = {
        "req_per_s": round(r.per_s),
        "p50_ms": round(r.p50_ms, 2),
        "p99_ms": round(r.p99_ms, 2),
        "errors": r.errors,
    }


@pytest.mark.benchmark(group="api-latest")
def test_latest_requests_per_second_on_one_core(
    benchmark: BenchmarkFixture,
    api_port: int,
    trivial_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ours: dict[str, LoadResult] = {}

    def run() -> None:
        ours["latest"] = closed_loop_load(
            api_port, "/v1/streams/meters/bench-meter/latest", 16, LOAD_S
        )
        ours["fleet page"] = closed_loop_load(api_port, "/v1/meters/latest?limit=100", 16, LOAD_S)
        ours["framework ceiling"] = closed_loop_load(trivial_port, "/latest", 16, LOAD_S)

    benchmark.pedantic(run, rounds=1, iterations=1)
    for name, r in ours.items():
        _report(benchmark, name, r)
    ratio = ours["latest"].per_s / ours["framework ceiling"].per_s
    benchmark.extra_info["latest_vs_ceiling"] = round(ratio, 3)
    with capsys.disabled():
        print()
        for name, r in ours.items():
            print(
                f"{name:>18}: {r.per_s:7.0f} req/s  p50 {r.p50_ms:5.2f} ms  "
                f"p99 {r.p99_ms:5.2f} ms  errors {r.errors}"
            )
        print(f"latest / framework ceiling = {ratio:.2f} (target: latest >= 3000 req/s)")
    assert ours["latest"].errors == 0 and ours["fleet page"].errors == 0


@pytest.mark.benchmark(group="api-query")
def test_one_day_one_stream_query_latency(
    benchmark: BenchmarkFixture, api_port: int, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/v1/meters/bench-meter/intervals?start=2026-03-01T00:00:00Z&end=2026-03-02T00:00:00Z"
    body = httpx.get(f"http://127.0.0.1:{api_port}{path}").json()
    assert len(body["intervals"]) == 1440
    result: dict[str, LoadResult] = {}

    def run() -> None:
        result["api"] = closed_loop_load(api_port, path, 1, LOAD_S)

    benchmark.pedantic(run, rounds=1, iterations=1)
    api = result["api"]

    # Reference: the same window read from the Zarr store directly, in this process.
    data_dir = store.parent / "data"
    zarr_path = next(data_dir.glob("*.zarr"))
    row = None
    durations = []
    for _ in range(max(50, min(api.requests, 300))):
        t0 = time.perf_counter()
        ds = xr.open_zarr(zarr_path, group="meters/interval")
        if row is None:
            row = int(np.flatnonzero(ds["stream"].values == "bench-meter")[0])
        window = ds.isel(stream=row).sel(
            time=slice(np.datetime64("2026-03-01T00:00"), np.datetime64("2026-03-01T23:59"))
        )
        values = {k: window[k].values for k in ("consumption", "co2", "coverage", "reading")}
        durations.append(time.perf_counter() - t0)
    assert values["consumption"].size == 1440
    ref_p50, ref_p99 = (float(np.percentile(durations, q)) * 1000 for q in (50, 99))
    _report(benchmark, "api", api)
    benchmark.extra_info["xarray_direct"] = {
        "p50_ms": round(ref_p50, 2),
        "p99_ms": round(ref_p99, 2),
    }
    with capsys.disabled():
        print(
            f"\none day x 1 stream x 1 min (1440 periods): API p50 {api.p50_ms:.1f} ms, "
            f"p99 {api.p99_ms:.1f} ms ({api.per_s:.0f} req/s sequential); xarray direct "
            f"p50 {ref_p50:.1f} ms, p99 {ref_p99:.1f} ms; "
            f"API/direct p99 = {api.p99_ms / ref_p99:.2f} (target: API p99 < 50 ms)"
        )
    assert api.errors == 0
