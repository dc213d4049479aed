"""The service's health, from what the roles record in the shared state (not from the API alone)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from api.state import ApiState
from api.timeparams import iso
from carbonstream.roles import ROLES
from storage.errors import check_space, disk_state
from storage.metadata import STATUS_ROLE, STATUS_ZARR

HEARTBEAT_STALE_S = 10.0
REFUSAL_RECENT_S = 10.0
"""A write the disk refused this long ago still makes the service unhealthy: a disk that is
full again a moment after a file was deleted must not look healthy in between."""


@dataclass(frozen=True)
class Health:
    ok: bool
    body: dict[str, Any]


def assess(state: ApiState) -> Health:
    now = time.time_ns()
    problems: list[str] = []
    storage = _storage(state, now, problems)

    beats = state.db.status(STATUS_ROLE)
    roles: dict[str, Any] = {}
    for role in ROLES:
        found = beats.get((STATUS_ROLE, role))
        if found is None:
            roles[role] = {"alive": False, "seen": False}
            problems.append(f"{role} role has never reported")
            continue
        value, updated = found
        age = (now - updated) / 1e9
        alive = age < HEARTBEAT_STALE_S
        roles[role] = {"alive": alive, "pid": value.get("pid"), "heartbeat_age_s": round(age, 3)}
        if not alive:
            # A full or read-only disk also stops heartbeats being recorded: say so.
            why = " (its heartbeats cannot be stored either)" if storage["problem"] else ""
            problems.append(f"{role} role silent for {age:.0f} s{why}")

    parts = state.journal.status()
    oldest = [p.oldest_unconsumed_ingest_ns for p in parts if p.oldest_unconsumed_ingest_ns]
    lag_s = (now - min(oldest)) / 1e9 if oldest else 0.0
    lag_records = sum(p.lag for p in parts)
    max_lag_s = state.config.flow.max_lag_s
    if lag_s > max_lag_s:
        problems.append(
            f"journal lag {lag_s:.0f} s (over {max_lag_s:g} s): the flow is behind its inputs"
        )

    writes = [v for (_, _), (v, _) in state.db.status(STATUS_ZARR).items()]
    last_write = max((int(w["flushed_ns"]) for w in writes), default=None)

    body = {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "process": {
            "pid": state.pid,
            "started": iso(state.started_ns),
            "uptime_s": round((now - state.started_ns) / 1e9, 3),
        },
        "roles": roles,
        "storage": storage,
        "journal": {
            "lag_records": lag_records,
            "lag_seconds": round(lag_s, 3),
            "max_lag_seconds": max_lag_s,
            "partitions": [
                {"partition": p.partition, "head": p.head, "consumed": p.consumed, "lag": p.lag}
                for p in parts
            ],
        },
        "last_write": {
            "time": None if last_write is None else iso(last_write),
            "age_s": None if last_write is None else round((now - last_write) / 1e9, 3),
        },
    }
    return Health(not problems, body)


def _storage(state: ApiState, now: int, problems: list[str]) -> dict[str, Any]:
    """The data directory's disk (read-only, free space against the reserve) and the last write
    it refused in this process; a problem naming the disk when ingest cannot store data."""
    data_dir = state.layout.data_dir
    reserve = state.config.storage.min_free_bytes
    disk = disk_state(data_dir)
    problem = None
    refused = check_space(data_dir, max(reserve, 1), probe=True)
    if refused is not None:
        problem = str(refused)
    elif state.last_refusal is not None and (now - state.last_refusal[0]) / 1e9 < REFUSAL_RECENT_S:
        problem = f"{state.last_refusal[1]} ({(now - state.last_refusal[0]) / 1e9:.0f} s ago)"
    if problem is not None:
        problems.insert(0, problem)
    last = state.last_refusal
    return {
        "path": str(data_dir),
        "read_only": disk.read_only,
        "free_bytes": disk.free_bytes,
        "total_bytes": disk.total_bytes,
        "reserve_bytes": reserve,
        "problem": problem,
        "last_refusal": None
        if last is None
        else {"time": iso(last[0]), "reason": last[1].reason, "detail": str(last[1])},
    }
