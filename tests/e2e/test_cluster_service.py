"""`carbonstream run --cluster`: the flow as 2 processes under the supervisor, serving simulated
meters; one flow process killed (SIGKILL) brings the whole flow group down and back, and the
journal keeps being consumed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.service import Service
from tests.servers import cluster_addresses

pytestmark = pytest.mark.e2e


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the direct children of `pid`."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if int(ppid) == pid:
            out[int(d.name)] = cmdline
    return out


def _consumed(service: Service) -> int:
    return sum(p["consumed"] for p in service.get_json("/health")["journal"]["partitions"])


def test_cluster_serves_and_restarts_as_a_group(tmp_path: Path) -> None:
    addresses = ", ".join(f'"{a}"' for a in cluster_addresses(2))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        "[recovery]\nsnapshot_interval_s = 0.5\n"
        "[connectors.meter_simulator]\ncount = 20\ninterval_s = 1.0\n"
        "[connectors.cems_simulator]\nenabled = false\n"
        "[ec.simulator]\nenabled = false\n"
        f"[flow.cluster]\naddresses = [{addresses}]\n"
    )
    service = Service.start(tmp_path, free_port(), config, args=("--cluster",))
    try:
        service.wait_for(
            "meters served",
            lambda: service.get_json("/v1/meters/latest")["items"] or None,
            timeout_s=90,
        )
        flows = {pid: cmd for pid, cmd in _children(service.proc.pid).items() if " flow " in cmd}
        assert sorted(c.split("--process-id ")[1].split()[0] for c in flows.values()) == [
            "0",
            "1",
        ]
        victim = next(pid for pid, cmd in flows.items() if "--process-id 1" in cmd)
        before = _consumed(service)
        os.kill(victim, signal.SIGKILL)
        service.wait_for(
            "the group restarted",
            lambda: service.log_path.read_text().count("started flow --process-id 0") >= 2 or None,
            timeout_s=30,
        )
        service.wait_for(
            "the journal consumed again",
            lambda: _consumed(service) > before + 4 or None,
            timeout_s=60,
        )
        alive = [c for c in _children(service.proc.pid).values() if " flow " in c]
        assert len(alive) == 2 and not set(flows) & set(_children(service.proc.pid))
    finally:
        assert service.stop() == 0, service.log_tail()
