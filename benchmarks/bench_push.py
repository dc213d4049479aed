"""Push ingest of meter readings over HTTP: the API process (one core: one polars thread, one
uvicorn worker) receiving 100,000-row CSV and Arrow bodies, vs plain-Python parsing, checking and
journaling of the same CSV body in this process (the reference; it has no HTTP cost at all).

Readings/s = rows / median request time. Target: >= 200,000 readings/s with CSV/Arrow bodies.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference.push import ingest_csv
from storage.journal import Journal
from tests.conftest import free_port

ROWS = 100_000
METERS = 10_000


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    meters = [f"bench-{i:05d}" for i in rng.integers(0, METERS, ROWS)]
    ts = np.datetime64("2026-03-01T00:00:00", "ns") + np.arange(ROWS) * np.timedelta64(1, "s")
    return pl.DataFrame(
        {
            "meter": meters,
            "ts": [str(t) + "Z" for t in ts],
            "value": np.round(rng.uniform(0, 1e5, ROWS), 3),
        }
    )


@pytest.fixture(scope="module")
def bodies() -> dict[str, bytes]:
    frame = _frame()
    csv_buf, arrow_buf = io.BytesIO(), io.BytesIO()
    frame.write_csv(csv_buf)
    frame.write_ipc_stream(arrow_buf)
    return {
        "text/csv": csv_buf.getvalue(),
        "application/vnd.apache.arrow.stream": arrow_buf.getvalue(),
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(URL of an API process, an ingest token for it)."""
    cwd = tmp_path_factory.mktemp("push")
    config = cwd / "c.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{cwd / "data"}"\n[connectors.meter_simulator]\nenabled = false\n'
        "[rollups]\nenabled = false\n"
        + "".join(f'[[streams.meters]]\nid = "bench-{i:05d}"\n' for i in range(METERS))
    )
    port = free_port()
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "CARBONSTREAM_API__PORT": str(port)}
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonstream",
            "tokens",
            "create",
            "--name",
            "bench",
            "--scopes",
            "ingest",
            "--config",
            str(config),
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonstream", "api", "--config", str(config)], env=env, cwd=cwd
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    try:
        yield url, token
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("ctype", ["text/csv", "application/vnd.apache.arrow.stream"])
@pytest.mark.benchmark(group="push-meters")
def test_http_push(
    benchmark: BenchmarkFixture, api: tuple[str, str], bodies: dict[str, bytes], ctype: str
) -> None:
    url, token = api
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:

        def post() -> int:
            r = c.post("/v1/ingest/meters", content=bodies[ctype], headers={"content-type": ctype})
            assert r.status_code == 202, r.text
            return int(r.json()["accepted"])

        assert benchmark.pedantic(post, rounds=8, warmup_rounds=1) == ROWS
    benchmark.extra_info["readings_per_s"] = ROWS / benchmark.stats.stats.median


@pytest.mark.benchmark(group="push-meters")
def test_plain_python_reference(
    benchmark: BenchmarkFixture, bodies: dict[str, bytes], tmp_path: Path
) -> None:
    journal = Journal(tmp_path, partitions=4)
    known = {f"bench-{i:05d}" for i in range(METERS)}
    assert (
        benchmark.pedantic(ingest_csv, args=(bodies["text/csv"], known, journal), rounds=3) == ROWS
    )
    benchmark.extra_info["readings_per_s"] = ROWS / benchmark.stats.stats.median
