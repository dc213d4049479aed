"""Meter results: the registry, the latest interval of each meter, a meter's interval series."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import READ
from api.errors import Problem
from api.latest import ProductState, newest_cells
from api.limits import MAX_OFFSET
from api.responses import NumericJSONResponse
from api.state import State
from api.tabular import (
    FORMAT_QUERY,
    TABLE_RESPONSES,
    TableFormat,
    instants,
    negotiate,
    table_response,
)
from api.timeparams import iso, slot_window, time_range

router = APIRouter(prefix="/v1/meters", tags=["meters"])

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


@router.get(
    "/latest",
    dependencies=[READ],
    summary="The most recent period with data, per meter (a page of meters, cached until the "
    "product is written again)",
)
async def latest(
    state: State,
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    spec = state.meters.spec

    def render(product: ProductState) -> bytes:
        infos = state.db.streams_by_rows(spec.axis, offset, offset + limit)
        cells = newest_cells(state.meters, [s.idx for s in infos], product.newest_slot)
        items = [
            {
                "meter": info.id,
                "period_start": iso(spec.slot_start_ns(cell[0])),
                "unit": info.attrs.get("unit"),
                "consumption": cell[1]["consumption"],
                "co2_kg": cell[1]["co2"],
                "coverage": cell[1]["coverage"],
                "reading": cell[1]["reading"],
            }
            for info, cell in zip(infos, cells, strict=True)
            if cell is not None
        ]
        newest = product.newest_slot
        body = {
            "resolution_s": spec.step_ns // 1_000_000_000,
            "newest_period_start": None if newest is None else iso(spec.slot_start_ns(newest)),
            "items": items,
        }
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    body = await state.latest.get(("meters", limit, offset), spec.name, render)
    return Response(body, media_type="application/json")


@router.get(
    "/{meter_id}/intervals",
    dependencies=[READ],
    summary="A meter's interval consumption and CO2 over a time range",
    responses=TABLE_RESPONSES,
)
def intervals(
    state: State,
    request: Request,
    meter_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    format: TableFormat | None = FORMAT_QUERY,
) -> Response:
    spec = state.meters.spec
    found = state.db.streams(spec.axis, [meter_id])
    if not found:
        raise Problem(404, "Unknown meter", f"meter {meter_id!r} is not registered")
    info = found[0]
    start_ns, end_ns = time_range(start, end, DAY_NS)
    slot0, slot1 = slot_window(spec, start_ns, end_ns, MAX_SLOTS_PER_QUERY)
    data = state.meters.read([info.idx], slot0, slot1)
    # Coverage is the presence variable: read first, a cell it shows has all its values.
    coverage = data["coverage"][0]
    keep = np.flatnonzero(~np.isnan(coverage) & ((coverage > 0) | ~np.isnan(data["reading"][0])))
    frame = pl.DataFrame(
        {
            "period_start": instants(spec.slot_starts(slot0, slot1)[keep]),
            "consumption": data["consumption"][0, keep],
            "co2_kg": data["co2"][0, keep],
            "coverage": data["coverage"][0, keep],
            "reading": data["reading"][0, keep],
        }
    )
    envelope = {
        "meter": info.id,
        "unit": info.attrs.get("unit"),
        "resolution_s": spec.step_ns // 1_000_000_000,
        "start": iso(start_ns),
        "end": iso(end_ns),
    }
    return table_response(frame, negotiate(request, format), envelope, "intervals")
