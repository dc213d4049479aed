"""A role process killed under the running service: the supervisor restarts it, the senders
re-send what was not acknowledged, and everything acknowledged is in the products once.

The connector role (`carbonstream ingest`: the HJ 212 server an HJ 212 data logger is connected
to) and then the API role (which takes the utility's HTTP pushes) are each killed with SIGKILL
mid-stream: no cleanup, as an OOM kill does. The logger loses its connection and its unanswered
packet, reconnects and sends it again; the utility's push fails and is sent again. The other
roles keep running (same pids), the killed one comes back under a new pid, and the products hold
every acknowledged reading and packet with the value sent, with no dead letters (a re-sent
duplicate is recognised, not stored twice or refused).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.service import Service
from tests.reliability.live import LoggerSender, MeterSender, metric, role_pids
from tests.reliability.test_disk_faults import (
    assert_products_hold,
    health,
    metrics_text,
    senders,
    service,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_killed_connector_and_api_roles_restart_and_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hj212_port = free_port()
    with service(tmp_path, data, hj212_port) as svc:
        meters, logger = senders(svc, hj212_port)
        meters.start()
        logger.start()
        try:
            wait_until(
                "acknowledgements",
                lambda: meters.batches_acked >= 5 and len(logger.answered) >= 20,
                60,
                svc,
            )
            for role in ("ingest", "api"):
                kill_and_wait_for_recovery(svc, role, meters, logger)
        finally:
            meters.stop()
            logger.stop()
        assert logger.unanswered > 0 or meters.errors, "a kill cost no acknowledgement"
        assert_products_hold(data, svc, meters, logger)
        assert metric(metrics_text(svc), "carbonstream_dead_letters_total") == 0
        wait_until("healthy", lambda: health(svc)[0] == 200, 30, svc)


def kill_and_wait_for_recovery(
    svc: Service, role: str, meters: MeterSender, logger: LoggerSender
) -> None:
    """SIGKILL `role`; returns once it runs again under a new pid (the others untouched) and
    both senders are being acknowledged again."""
    before = role_pids(svc.proc.pid)
    acked = (meters.batches_acked, len(logger.answered))
    os.kill(before[role], signal.SIGKILL)
    after = svc.wait_for(
        f"the {role} role restarted",
        lambda: (
            pids
            if len(pids := role_pids(svc.proc.pid)) == 3 and pids[role] != before[role]
            else None
        ),
        timeout_s=60,
    )
    others = {r: p for r, p in before.items() if r != role}
    assert {r: after[r] for r in others} == others, "only the killed role restarts"
    wait_until(
        f"acknowledgements after the {role} role came back",
        lambda: meters.batches_acked > acked[0] + 3 and len(logger.answered) > acked[1] + 10,
        90,
        svc,
    )
