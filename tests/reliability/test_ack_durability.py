"""What was acknowledged is never lost, and what is re-sent is never doubled.

The API process is killed (SIGKILL) right after a push's journal commit and before its answer
(the sender sees no acknowledgement, as after a lost answer), and at random moments. The sender
re-sends every batch it has no 202 for, as loggers and utilities do. The store computed from
that journal must equal, byte for byte, the store of the same batches pushed once each.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import load_config
from storage.metadata import MetadataDB
from storage.products import METERS_AXIS
from storage.tokens import TokenStore
from tests.conftest import free_port
from tests.reliability.harness import (
    START,
    S,
    deployment_toml,
    run_flow,
    store_contents,
    write_config,
)

METERS = [f"m{i:03d}" for i in range(12)]


def batches(seed: int) -> list[bytes]:
    """40 CSV batches of readings (every meter every 30 s, 5 minutes per batch)."""
    rng = np.random.default_rng(seed)
    register = {m: 100.0 * (i + 1) for i, m in enumerate(METERS)}
    out = []
    for b in range(40):
        lines = ["meter,ts,value"]
        for k in range(10):
            t = (START + (b * 300 + k * 30) * S) // S
            for m in METERS:
                register[m] += float(rng.uniform(0, 0.3))
                lines.append(f"{m},{t},{register[m]:.3f}")
        out.append(("\n".join(lines) + "\n").encode())
    return out


def data_dir(path: Path, deployment: str = "") -> tuple[Path, str]:
    """A prepared data directory and an ingest token of it."""
    path.mkdir()
    config = load_config(write_config(path, deployment), environ={})
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    db.register_streams(METERS_AXIS, {m: {} for m in METERS})
    db.close()
    tokens = TokenStore(config.storage.layout.metadata_db)
    token = tokens.create("sender", ["ingest"])
    tokens.close()
    return path, token


@contextmanager
def api(directory: Path, crash_at: str | None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONSTREAM_")}
    env["CARBONSTREAM_API__PORT"] = str(port)
    if crash_at:
        env["CARBONSTREAM_CRASH_AT"] = crash_at
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carbonstream",
            "api",
            "--config",
            str(directory / "carbonstream.toml"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(directory / "api.log").open("ab"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def push_all(
    directory: Path,
    token: str,
    bodies: list[bytes],
    crashes: list[str | None],
    rng: random.Random,
) -> int:
    """Pushes every body until each has a 202, restarting the API whenever it dies; returns how
    many times the API died."""
    deaths = 0
    pending = list(range(len(bodies)))
    schedule = iter(crashes)
    while pending:
        with (
            api(directory, next(schedule, None)) as (proc, url),
            httpx.Client(
                base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"}
            ) as c,
        ):
            kill_at = time.monotonic() + rng.uniform(0.3, 1.5) if rng.random() < 0.3 else None
            while pending:
                if kill_at is not None and time.monotonic() > kill_at:
                    proc.send_signal(signal.SIGKILL)
                try:
                    r = c.post(
                        "/v1/ingest/meters",
                        content=bodies[pending[0]],
                        headers={"content-type": "text/csv"},
                    )
                except httpx.TransportError:
                    deaths += 1
                    break  # no answer: re-send this body to a restarted API
                assert r.status_code == 202, r.text
                pending.pop(0)
    return deaths


@pytest.fixture
def seed() -> int:
    """Random per run (reported in every assertion); CARBONSTREAM_TEST_SEED replays one. Not a
    parameter: parallel test workers must collect the same test ids."""
    return int(os.environ.get("CARBONSTREAM_TEST_SEED", random.randrange(1_000_000)))


@pytest.mark.parametrize("journal", ["local", "kafka"])
def test_acknowledged_data_survives_and_resent_data_is_not_doubled(
    tmp_path: Path, seed: int, journal: str, request: pytest.FixtureRequest
) -> None:
    """On the local journal and on Kafka (each directory with a topic of its own)."""
    bodies = batches(seed)
    reference, ref_token = data_dir(tmp_path / "reference", deployment_toml(request, journal))
    push_all(reference, ref_token, bodies, [], random.Random(0))
    crashed, token = data_dir(tmp_path / "crashed", deployment_toml(request, journal))
    rng = random.Random(seed)
    crashes = [f"push.after_append:{rng.randint(1, 20)}" for _ in range(3)]
    deaths = push_all(crashed, token, bodies, crashes, rng)
    assert deaths >= 3, f"seed {seed}: the API died only {deaths} times"

    for d in (reference, crashed):
        assert run_flow(d) == 0, (d / "flow.log").read_text()[-2000:]
    expected, got = store_contents(reference), store_contents(crashed)
    assert any(k.startswith("meters/interval/consumption/c/") for k in expected)
    assert got == expected, f"seed {seed}: the re-sent batches changed the store"
