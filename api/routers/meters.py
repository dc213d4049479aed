"""Meter results: the registry, the latest interval of each meter, a meter's interval series."""

from __future__ import annotations

import io
import time
from typing import Any, Literal

import numpy as np
import polars as pl
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import READ
from api.errors import Problem
from api.limits import MAX_OFFSET
from api.responses import NumericJSONResponse
from api.state import ApiState, State
from api.timeparams import iso, parse_instant
from storage.metadata import STATUS_ZARR

router = APIRouter(prefix="/v1/meters", tags=["meters"])

LATEST_LOOKBACK_SLOTS = 16
MAX_SLOTS_PER_QUERY = 200_000
DAY_NS = 86_400 * 1_000_000_000


@router.get("", dependencies=[READ], summary="Registered meters")
def list_meters(
    state: State,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    axis = state.meters.spec.axis
    infos = state.db.streams_by_rows(axis, offset, offset + limit)
    return {
        "total": state.db.stream_count(axis),
        "limit": limit,
        "offset": offset,
        "items": [{"id": s.id, "row": s.idx, **s.attrs} for s in infos],
    }


def _newest_slot(state: ApiState) -> int | None:
    product = state.meters.spec.name
    slots = [
        int(v["max_slot"])
        for (_, key), (v, _) in state.db.status(STATUS_ZARR).items()
        if key.startswith(product + "#")
    ]
    return max(slots) if slots else None


@router.get(
    "/health",
    dependencies=[READ],
    summary="Health of polled meters (Modbus): state, last good read, error counts",
)
def meter_health(
    state: State,
    status: Literal["unknown", "ok", "degraded", "dead"] | None = Query(
        None, description="Only devices in this state (e.g. dead)"
    ),
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    return NumericJSONResponse(
        {
            "states": state.db.device_states(),
            "items": state.db.device_health(status, limit, offset),
        }
    )


@router.get("/latest", dependencies=[READ], summary="The most recent period with data, per meter")
def latest(
    state: State,
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    spec = state.meters.spec
    infos = state.db.streams_by_rows(spec.axis, offset, offset + limit)
    newest = _newest_slot(state)
    items: list[dict[str, Any]] = []
    if newest is not None and infos:
        first = newest - LATEST_LOOKBACK_SLOTS + 1
        data = state.meters.read([s.idx for s in infos], first, newest + 1)
        has_data = ~np.isnan(data["reading"]) | (data["coverage"] > 0)
        for i, info in enumerate(infos):
            cols = np.flatnonzero(has_data[i])
            if cols.size == 0:
                continue
            j = int(cols[-1])
            items.append(
                {
                    "meter": info.id,
                    "period_start": iso(spec.slot_start_ns(first + j)),
                    "unit": info.attrs.get("unit"),
                    "consumption": data["consumption"][i, j],
                    "co2_kg": data["co2"][i, j],
                    "coverage": data["coverage"][i, j],
                    "reading": data["reading"][i, j],
                }
            )
    return NumericJSONResponse(
        {
            "resolution_s": spec.step_ns // 1_000_000_000,
            "newest_period_start": None if newest is None else iso(spec.slot_start_ns(newest)),
            "items": items,
        }
    )


@router.get(
    "/{meter_id}/intervals",
    dependencies=[READ],
    summary="A meter's interval consumption and CO2 over a time range",
)
def intervals(
    state: State,
    meter_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    format: Literal["json", "csv"] = Query("json"),
) -> Response:
    spec = state.meters.spec
    found = state.db.streams(spec.axis, [meter_id])
    if not found:
        raise Problem(404, "Unknown meter", f"meter {meter_id!r} is not registered")
    info = found[0]
    end_ns = parse_instant("end", end)
    end_ns = time.time_ns() if end_ns is None else end_ns
    start_ns = parse_instant("start", start)
    start_ns = end_ns - DAY_NS if start_ns is None else start_ns
    if end_ns <= start_ns:
        raise Problem(400, "Bad time range", "end must be after start")
    slot0 = max(0, spec.slot_of(start_ns))
    slot1 = max(slot0, spec.slot_of(end_ns - 1) + 1)
    if slot1 - slot0 > MAX_SLOTS_PER_QUERY:
        raise Problem(
            400, "Time range too long", f"at most {MAX_SLOTS_PER_QUERY} periods per query"
        )
    data = state.meters.read([info.idx], slot0, slot1)
    keep = np.flatnonzero(~np.isnan(data["reading"][0]) | (data["coverage"][0] > 0))
    starts = spec.origin_ns + (slot0 + keep) * spec.step_ns
    frame = pl.DataFrame(
        {
            "period_start": [iso(int(t)) for t in starts],
            "consumption": data["consumption"][0, keep],
            "co2_kg": data["co2"][0, keep],
            "coverage": data["coverage"][0, keep],
            "reading": data["reading"][0, keep],
        }
    )
    if format == "csv":
        buf = io.BytesIO()
        frame.write_csv(buf)
        return Response(buf.getvalue(), media_type="text/csv")
    return NumericJSONResponse(
        {
            "meter": info.id,
            "unit": info.attrs.get("unit"),
            "resolution_s": spec.step_ns // 1_000_000_000,
            "start": iso(start_ns),
            "end": iso(end_ns),
            "intervals": frame.to_dicts(),
        }
    )
