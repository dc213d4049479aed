"""Eddy-covariance: sites, flux series (JSON, CSV, FLUXNET), live push of raw rows.

GET  /v1/ec/sites                                      configured and simulated sites
GET  /v1/ec/{site}/fluxes?start=&end=&format=json|csv|parquet|arrow|fluxnet
POST /v1/ingest/ec/{site}      raw rows (JSON columns/rows, NDJSON, CSV; chunked is fine)
WS   /v1/ingest/ec/{site}      one JSON batch per message, each acknowledged once durable
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import polars as pl
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import INGEST, READ, authorize_ws
from api.errors import Problem, storage_problem
from api.responses import NumericJSONResponse
from api.routers.ingest import read_limited
from api.state import ApiState, State
from api.tabular import TABLE_RESPONSES, TableFormat, instants, negotiate, table_response
from api.timeparams import iso, slot_window, time_range
from carbonstream.metrics import INGEST_REJECTED, JOURNAL_APPENDED, SAMPLES_INGESTED
from connectors.ec import fluxnet
from connectors.push.ec import EcBatch, EcBodyError, journal_ec_batch, parse_ec_body, parse_ec_json
from storage.errors import StorageUnavailable
from storage.products import EC_AXIS

router = APIRouter(tags=["ec"])

DAY_NS = 86_400 * 1_000_000_000
MAX_PERIODS_PER_QUERY = 100_000
SOURCE = "ingest.push.ec"


@router.get("/v1/ec/sites", dependencies=[READ], summary="Eddy-covariance sites")
def sites(state: State) -> dict[str, Any]:
    infos = {s.id: s for s in state.db.streams(EC_AXIS)}
    return {
        "items": [
            {
                "id": s.id,
                "row": infos[s.id].idx if s.id in infos else None,
                "averaging_min": s.averaging_min,
                "sampling_hz": s.sampling_hz,
                "product": state.ec_fluxes[s.period_s].spec.name,
            }
            for s in state.config.ec.all_sites()
        ]
    }


def _site_row(state: ApiState, site: str) -> tuple[int, float]:
    settings = state.config.ec.site(site)
    found = state.db.streams(EC_AXIS, [site])
    if settings is None or not found:
        raise Problem(404, "Unknown site", f"site {site!r} is not configured")
    return found[0].idx, settings.period_s


@router.get(
    "/v1/ec/{site}/fluxes",
    dependencies=[READ],
    summary="A site's fluxes over a time range",
    responses=TABLE_RESPONSES,
)
def fluxes(
    state: State,
    request: Request,
    site: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    format: TableFormat | Literal["fluxnet"] | None = Query(
        None,
        description="json, csv, parquet, arrow, or fluxnet (FLUXNET CSV: TIMESTAMP_START/END, "
        "-9999 for missing); default from the Accept header, else json",
    ),
) -> Response:
    row, period_s = _site_row(state, site)
    reader = state.ec_fluxes[period_s]
    spec = reader.spec
    start_ns, end_ns = time_range(start, end, DAY_NS)
    slot0, slot1 = slot_window(spec, start_ns, end_ns, MAX_PERIODS_PER_QUERY)
    data = reader.read([row], slot0, slot1)
    keep = np.flatnonzero(~np.isnan(data["N_SAMPLES"][0]))
    starts = spec.slot_starts(slot0, slot1)[keep]
    names = list(fluxnet.NAMES)
    if format == "fluxnet":
        rows = (
            (int(s), int(s) + spec.step_ns, {n: float(data[n][0, k]) for n in names})
            for s, k in zip(starts, keep, strict=True)
        )
        return Response(fluxnet.write_csv(rows, names), media_type="text/csv")
    frame = pl.DataFrame(
        {
            "period_start": instants(starts),
            "period_end": instants(starts + spec.step_ns),
            **{n: data[n][0, keep] for n in names},
        }
    )
    envelope = {
        "site": site,
        "averaging_min": period_s / 60.0,
        "start": iso(start_ns),
        "end": iso(end_ns),
        "units": {n: fluxnet.VARIABLES[n][0] for n in names},
    }
    return table_response(frame, negotiate(request, format), envelope, "periods")


def _push_site(state: ApiState, site: str) -> None:
    if state.config.ec.site(site) is None:
        raise Problem(404, "Unknown site", f"site {site!r} is not configured")


async def _journal(state: ApiState, site: str, batch: EcBatch) -> dict[str, Any]:
    placed = await run_in_threadpool(journal_ec_batch, state.journal, site, batch)
    if placed is not None:
        JOURNAL_APPENDED.labels(SOURCE).inc()
        SAMPLES_INGESTED.labels(SOURCE).inc(len(batch))
    if batch.rejected_rows:
        INGEST_REJECTED.labels(SOURCE, "bad_row").inc(batch.rejected_rows)
    out = batch.summary()
    out["journal"] = None if placed is None else {"partition": placed[0], "offset": placed[1]}
    return out


@router.post(
    "/v1/ingest/ec/{site}",
    dependencies=[INGEST],
    status_code=202,
    tags=["ingest"],
    summary="Push one tower's raw rows (JSON columns or rows, NDJSON, CSV; chunked accepted)",
    responses={
        202: {"description": "valid rows are durable; refused rows are counted and listed"},
        404: {"description": "unknown site"},
        413: {"description": "body too large"},
        415: {"description": "unsupported Content-Type"},
        422: {"description": "no valid row in the batch"},
        503: {"description": "storage full or read-only: nothing acknowledged, send it again"},
    },
)
async def push_ec(request: Request, state: State, site: str) -> Response:
    _push_site(state, site)
    body = await read_limited(request, state.config.api.max_body_bytes)
    try:
        batch = parse_ec_body(body, request.headers.get("content-type", "application/json"))
    except EcBodyError as exc:
        status = 415 if "Content-Type" in str(exc) else 400
        raise Problem(status, "Unreadable batch", str(exc)) from None
    if not len(batch):
        raise Problem(422, "No valid row", "every row was refused", rejected=batch.rejected)
    return NumericJSONResponse(await _journal(state, site, batch), status_code=202)


@router.websocket("/v1/ingest/ec/{site}")
async def push_ec_ws(websocket: WebSocket, site: str) -> None:
    """Each text message is one batch (columnar or row JSON); each gets one reply, sent after
    the batch is durable: {"seq", "accepted", "rejected_rows", ..., "journal"} or {"seq",
    "error"}. Unknown site: the socket is closed with code 4404."""
    state: ApiState = websocket.app.state.carbonstream
    if not await authorize_ws(websocket, "ingest"):
        return
    if state.config.ec.site(site) is None:
        await websocket.close(code=4404, reason=f"site {site!r} is not configured")
        return
    seq = 0
    try:
        while True:
            message = await websocket.receive_text()
            seq += 1
            try:
                if len(message) > state.config.api.max_body_bytes:
                    raise EcBodyError("message exceeds the body limit")
                batch = parse_ec_json(orjson.loads(message))
            except (EcBodyError, orjson.JSONDecodeError) as exc:
                INGEST_REJECTED.labels(SOURCE, "bad_batch").inc()
                await websocket.send_text(orjson.dumps({"seq": seq, "error": str(exc)}).decode())
                continue
            try:
                reply = await _journal(state, site, batch)
            except StorageUnavailable as exc:  # not durable: no acknowledgement, say why
                state.note_refusal(exc)
                problem = storage_problem(exc)
                reply = {"error": problem.detail, **problem.extra}
            await websocket.send_text(orjson.dumps({"seq": seq, **reply}).decode())
    except WebSocketDisconnect:
        return
