"""`carbonstream run`: starts the ingest, flow and API roles as child processes and keeps them up.

A child that exits unexpectedly is restarted with exponential back-off (1 s doubling to 30 s,
reset after a minute of uptime). A child that exits with status 2 refused its configuration:
restarting cannot help, so everything stops with that status. SIGINT/SIGTERM stop the children
(SIGTERM, then SIGKILL after a grace period) and end the run.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from carbonstream.roles import ROLES
from stream.cluster import ClusterSettings

log = logging.getLogger(__name__)

CONFIG_ERROR_EXIT = 2
GRACE_S = 10.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class _Child:
    role: str
    args: tuple[str, ...] = ()
    group: str | None = None
    """Children of a group (the processes of a flow cluster) are restarted together: when one
    dies, its peers cannot go on without it, and all must resume from the same snapshot."""
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 1.0
    restart_at: float = 0.0
    restarts: int = field(default=0)


def cluster_children(cluster: ClusterSettings, roles: tuple[str, ...] = ROLES) -> list[_Child]:
    """The roles, with the flow as this host's processes of the cluster."""
    out = [_Child(r) for r in roles if r != "flow"]
    if "flow" in roles:
        out += [
            _Child("flow", ("--process-id", str(i)), group="flow") for i in cluster.local_processes
        ]
    return out


def _name(c: _Child) -> str:
    return " ".join((c.role, *c.args))


def _spawn(
    role: str, config_path: Path | None, args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "carbonstream", role, *args]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    return subprocess.Popen(cmd)


def supervise(
    config_path: Path | None,
    roles: tuple[str, ...] = ROLES,
    children: list[_Child] | None = None,
) -> int:
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if children is None:
        children = [_Child(r) for r in roles]
    exit_code = 0
    while not stopping:
        now = time.monotonic()
        for c in children:
            if c.proc is None:
                if now >= c.restart_at:
                    c.proc = _spawn(c.role, config_path, c.args)
                    c.started = now
                    log.info("started %s (pid %d)", _name(c), c.proc.pid)
                continue
            code = c.proc.poll()
            if code is None:
                if now - c.started > STABLE_AFTER_S:
                    c.backoff = 1.0
                continue
            _forget_process(c.proc.pid)
            c.proc = None
            if code == CONFIG_ERROR_EXIT:
                log.error("%s refused its configuration; stopping", c.role)
                stopping, exit_code = True, CONFIG_ERROR_EXIT
                break
            c.restarts += 1
            c.restart_at = now + c.backoff
            log.warning(
                "%s exited with status %s; restart %d in %.0f s",
                _name(c),
                code,
                c.restarts,
                c.backoff,
            )
            c.backoff = min(c.backoff * 2, MAX_BACKOFF_S)
            if c.group is not None:
                _restart_group(children, c)
        time.sleep(0.2)
    _stop_all(children)
    return exit_code


def _restart_group(children: list[_Child], failed: _Child) -> None:
    """Stops the failed child's live peers and restarts the whole group at the same moment."""
    peers = [p for p in children if p.group == failed.group and p is not failed]
    _stop_all(peers)
    for p in peers:
        p.proc = None
        p.restart_at = failed.restart_at
        p.backoff = failed.backoff


def _stop_all(children: list[_Child]) -> None:
    live = [c for c in children if c.proc is not None and c.proc.poll() is None]
    for c in live:
        assert c.proc is not None
        c.proc.terminate()
    deadline = time.monotonic() + GRACE_S
    for c in live:
        assert c.proc is not None
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", _name(c), GRACE_S)
            c.proc.kill()
            c.proc.wait()
        _forget_process(c.proc.pid)


def _forget_process(pid: int) -> None:
    """Drops a dead child's live gauges from the shared metrics directory."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid)
    except OSError as exc:  # a full or read-only disk must not end the supervisor
        log.warning("could not drop the metrics files of pid %d: %s", pid, exc)
