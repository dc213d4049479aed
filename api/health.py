"""The service's health, from what the roles record in the shared state (not from the API alone)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from api.state import ApiState
from api.timeparams import iso
from carbonstream.roles import ROLES
from storage.metadata import STATUS_ROLE, STATUS_ZARR

HEARTBEAT_STALE_S = 10.0
LAG_DEGRADED_S = 60.0


@dataclass(frozen=True)
class Health:
    ok: bool
    body: dict[str, Any]


def assess(state: ApiState) -> Health:
    now = time.time_ns()
    problems: list[str] = []

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
            problems.append(f"{role} role silent for {age:.0f} s")

    parts = state.journal.status()
    oldest = [p.oldest_unconsumed_ingest_ns for p in parts if p.oldest_unconsumed_ingest_ns]
    lag_s = (now - min(oldest)) / 1e9 if oldest else 0.0
    lag_records = sum(p.lag for p in parts)
    if lag_s > LAG_DEGRADED_S:
        problems.append(f"journal lag {lag_s:.0f} s")

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
        "journal": {
            "lag_records": lag_records,
            "lag_seconds": round(lag_s, 3),
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
