"""2,000 simulated Modbus meters polled by the real service for a simulated hour.

The fleet simulator (its own process: pymodbus servers, 247 unit ids per gateway) and the
service's poller share a clock running 60 times faster than real time, so a simulated hour takes
a real minute. Every interval of every live meter must be stored; the replaced meter misses only
the readings-interval around its replacement (consumption across a replacement is unknown); the
wrapping meters are integrated across their wrap; dead meters are reported dead and have no
data at all, never zeros.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from carbonstream.config import load_config
from carbonstream.products import meters_interval_spec
from connectors.simulators.modbus_fleet import FleetSpec, SimFleet
from storage.metadata import MetadataDB
from storage.products import METERS_AXIS
from storage.zarr_store import ProductReader, ProductStore
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

S = 10**9
METERS = 2_000
RATE = 60.0
POLL_S = 300.0  # simulated: every 5 minutes -> 5 s of real time per round
START = 1_772_323_200 * S  # simulated 2026-03-01T00:00Z
HOUR_S = 3_600


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, object], int]]:
    anchor = time.monotonic_ns()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.simulators.modbus_fleet",
            "--meters",
            str(METERS),
            "--rate",
            str(RATE),
            "--start-ns",
            str(START),
            "--anchor-ns",
            str(anchor),
        ],
        stdout=subprocess.PIPE,
        stderr=(tmp_path_factory.mktemp("fleet") / "fleet.log").open("wb"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        yield json.loads(line), anchor
    finally:
        proc.terminate()
        proc.wait(30)


def service_config(
    path: Path, gateways: list[dict[str, object]], anchor: int, wrapping: list[str]
) -> Path:
    lines = [
        f'[storage]\ndata_dir = "{path / "data"}"',
        "[journal]\npartitions = 4",
        "[rollups]\nenabled = false",
        # Polls every 5 simulated minutes at 60x: a 15 s stall of this shared machine would be a
        # 15-minute gap. Interpolate across up to 30 minutes.
        "[products.meters_interval]\nmax_gap_s = 1800.0",
        "[connectors.meter_simulator]\nenabled = false",
        "[connectors.cems_simulator]\nenabled = false",
        "[ec.simulator]\nenabled = false",
        "[connectors.modbus]\nenabled = true\nhealth_interval_s = 2.0",
        "[connectors.modbus.simulated_clock]",
        f"rate = {RATE}\nstart_ns = {START}\nanchor_ns = {anchor}",
    ]
    for g in gateways:
        lines += [
            "[[connectors.modbus.gateways]]",
            f'name = "{g["name"]}"\nhost = "{g["host"]}"\nport = {g["port"]}',
            "connections = 4\ntimeout_s = 30.0\ndead_after = 3",
        ]
        for d in g["devices"]:  # type: ignore[attr-defined]
            lines += [
                "[[connectors.modbus.gateways.devices]]",
                f'meter = "{d["meter"]}"\nunit_id = {d["unit_id"]}',
                f'register_map = "{d["register_map"]}"\ninterval_s = {POLL_S}',
            ]
    for m in wrapping:
        lines.append(f'[[streams.meters]]\nid = "{m}"\nrollover = 10000.0')
    config = path / "carbonstream.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_a_simulated_hour_of_2000_modbus_meters(
    fleet: tuple[dict[str, object], int], tmp_path: Path
) -> None:
    description, anchor = fleet
    gateways = description["gateways"]
    assert isinstance(gateways, list) and sum(len(g["devices"]) for g in gateways) == METERS
    sim = SimFleet(FleetSpec(meters=METERS), float(description["start_s"]))  # type: ignore[arg-type]
    dead = sorted(m.meter for m in sim.meters if m.dead)
    replaced = [m.meter for m in sim.meters if m.replaced_at_s is not None]
    wrapping = [m.meter for m in sim.meters if m.rollover_kwh is not None]
    assert len(dead) == 2 and len(replaced) == 1 and len(wrapping) == 2
    config_path = service_config(tmp_path, gateways, anchor, wrapping)

    svc = Service.start(tmp_path, free_port(), config_path)
    try:

        def simulated_now_s() -> float:
            return (START + (time.monotonic_ns() - anchor) * RATE) / S

        svc.wait_for("the API", lambda: svc.get_json("/health"))
        # An hour, or 50 simulated minutes from when the service is up if it started late (a
        # real second is a simulated minute: on a loaded machine it started 30 min late, and a
        # fixed hour left 40 min, too few for the checks below).
        end_s = max(START / S + HOUR_S, simulated_now_s() + 50 * 60) + 2 * POLL_S
        while simulated_now_s() < end_s:
            time.sleep(1.0)
        svc.wait_for(
            "the flow to catch up",
            lambda: h if (h := svc.get_json("/health"))["journal"]["lag_records"] == 0 else None,
            timeout_s=60,
        )
        time.sleep(3.0)  # one more snapshot: the last batches reach Zarr
        health = svc.get_json("/v1/meters/health", status="dead")
    finally:
        assert svc.stop() == 0, svc.log_tail()

    assert sorted(item["meter"] for item in health["items"]) == dead
    assert all(not item["last_good_ns"] and item["total_errors"] >= 2 for item in health["items"])

    config = load_config(config_path, environ={})
    spec = meters_interval_spec(config)
    layout = config.storage.layout
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(METERS_AXIS)}
    db.close()
    reader = ProductReader(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), refresh_s=0
    )
    # Each meter from its first reading to its last (the service starts a few simulated minutes
    # after the fleet): every interval in between must hold consumption.
    slot0 = spec.slot_of(START)
    slot1 = spec.slot_of(int(end_s * S)) + 1
    ids = sorted(rows)
    data = reader.read([rows[m] for m in ids], slot0, slot1, ["consumption", "coverage", "reading"])
    covered = data["coverage"] > 0
    spans = []
    for i, m in enumerate(ids):
        if m in dead:
            assert np.isnan(data["consumption"][i]).all(), f"dead meter {m} has values"
            assert np.isnan(data["reading"][i]).all()
            continue
        read = np.flatnonzero(~np.isnan(data["reading"][i]))
        assert read.size >= 10, f"{m}: only {read.size} readings"
        first, last = int(read[0]), int(read[-1])
        spans.append(last - first)
        inside = covered[i, first + 1 : last]
        if m in replaced:
            missing = np.flatnonzero(~inside)
            assert missing.size <= POLL_S / 60 + 1, f"{m}: more than the replacement window missing"
        else:
            assert inside.all(), (
                f"{m}: intervals missing {np.flatnonzero(~inside)[:10] + first + 1}"
            )
            assert (data["consumption"][i][covered[i]] >= 0).all()
    # The service starts some simulated minutes after the fleet (a real second is a simulated
    # minute: a fresh clone compiling its bytecode starts ~10 min late); from then on every
    # interval is held (checked above), and every live meter is polled from the first round or
    # the next (the first round opens 2,000 connections and can run over its 5 minutes).
    poll_min = POLL_S / 60
    assert max(spans) >= 40, f"the service polled for only {max(spans)} min of the hour"
    assert min(spans) >= max(spans) - 2 * poll_min - 1, (
        f"a live meter started late: spans {min(spans)}..{max(spans)} min"
    )
