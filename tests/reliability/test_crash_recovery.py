"""Nothing lost, nothing doubled: the flow killed with SIGKILL at chosen and random moments
(between two chunk writes, inside a snapshot, between roll-up products, anywhere) and restarted
ends with the same store, cell for cell, and the same dead letters as an uninterrupted run.

The same test runs on each deployment: the local journal in one process (the default), a Kafka
journal (a real broker on loopback; skipped only where Java is absent) and a 2-process Bytewax
cluster, where a kill takes one process down and its peer with it.

The random kill times come from a seed printed on failure; CARBONSTREAM_TEST_SEED repeats one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.reliability.harness import (
    clone,
    deployment_toml,
    fixed_input,
    run_flow,
    store_contents,
)

KILLED = -9
SLOW_BATCHES_S = 0.05
"""Sleep after each journal batch of the runs that get killed: 45 batches of the fixed input
then take over 2 s to read, many epochs and flushes, so the kill points below come with work
left. Without it, on a fast machine (2026-11-22 19:27), a run read and committed the whole input
in its first epochs; after the first kill nothing was left to reach the later points, and 5 of 8
seeds failed with 1 kill of 6."""


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("CARBONSTREAM_TEST_SEED", random.randrange(1_000_000)))


@pytest.mark.parametrize("deployment", ["local", "kafka", "cluster2"])
def test_flow_killed_repeatedly_converges_to_the_uninterrupted_store(
    tmp_path: Path, seed: int, deployment: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(seed)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    fixed_input(crashed, deployment=deployment_toml(request, deployment))
    reference = clone(crashed, tmp_path / "reference")

    assert run_flow(reference) == 0, (reference / "flow.log").read_text()[-3000:]
    expected = store_contents(reference)
    assert any(k.startswith("meters/interval/consumption/c/") for k in expected), "data stored"
    assert any(k.startswith("entities/month/co2/c/") for k in expected), "roll-ups stored"
    assert len(expected["alert_history"]) >= 4, "alerts fired and resolved"

    # Early points, so that each run still has work left when it is killed.
    kills = [
        ("zarr.flush.chunk", rng.randint(2, 8)),
        ("flow.source.snapshot", rng.randint(2, 6)),
        ("rollup.between_products", 1),
        ("zarr.flush.chunk", rng.randint(1, 3)),
    ]
    random_kills = 2
    if deployment != "local":
        # What a deployment changes is where offsets and chunks live and who writes them: a kill
        # inside a source snapshot and one between chunk writes (plus one anywhere) exercise
        # that; the roll-up point is the same code in every deployment and stays with "local".
        # Fewer runs keep the scale-out tests within the suite's time budget.
        kills, random_kills = kills[:2], 1
    outcomes = []
    for point, n in kills:
        outcomes.append(run_flow(crashed, crash_at=f"{point}:{n}", slow_batches_s=SLOW_BATCHES_S))
    for _ in range(random_kills):
        kill_after_s = rng.uniform(1.5, 3.0)
        outcomes.append(run_flow(crashed, kill_after_s=kill_after_s, slow_batches_s=SLOW_BATCHES_S))
    need = 3 if deployment == "local" else 2
    assert outcomes.count(KILLED) >= need, f"too few kills landed (seed {seed}): {outcomes}"
    print(f"seed {seed}: kill outcomes {outcomes}")
    finished = run_flow(crashed)
    assert finished == 0, (crashed / "flow.log").read_text()[-3000:]

    if deployment == "kafka":
        assert not list((crashed / "data" / "journal").glob("*.sqlite")), "read from Kafka"
    if deployment.startswith("cluster"):
        assert "process 1 of 2" in (crashed / "flow.log").read_text(), "ran as a cluster"

    got = store_contents(crashed)
    assert got.keys() == expected.keys(), f"seed {seed}"
    different = sorted(k for k in expected if got[k] != expected[k])
    assert not different, f"seed {seed}: arrays differ after crashes {outcomes}: {different}"
