"""Push ingest over HTTP. 202 means the accepted rows are durable in the journal."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.responses import NumericJSONResponse
from api.state import State
from connectors.push.meters import BodyError, journal_batch, parse_body, validate_rows

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it exceeds `limit` bytes instead of buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(
            413, "Body too large", f"body of {declared} bytes exceeds the {limit}-byte limit"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Body too large", f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/meters",
    status_code=202,
    summary="Push cumulative meter readings (JSON array or NDJSON)",
    responses={
        202: {"description": "valid rows are durable; refused rows are listed"},
        413: {"description": "body too large"},
        415: {"description": "unsupported Content-Type"},
        422: {"description": "no valid row in the batch"},
    },
)
async def push_meters(request: Request, state: State) -> Response:
    body = await read_limited(request, state.config.api.max_body_bytes)
    try:
        rows = parse_body(body, request.headers.get("content-type", "application/json"))
    except BodyError as exc:
        status = 415 if "Content-Type" in str(exc) else 400
        raise Problem(status, "Unreadable body", str(exc)) from None
    known = {s.id for s in state.db.streams(state.meters.spec.axis, _meter_ids(rows))}
    batch = validate_rows(rows, known)
    placed = await run_in_threadpool(journal_batch, state.journal, batch)
    rejected = [
        {"index": r.index, "reason": r.reason, "message": r.message} for r in batch.rejected
    ]
    if not len(batch):
        raise Problem(422, "No valid reading", "every row was refused", rejected=rejected)
    return NumericJSONResponse(
        {
            "accepted": len(batch),
            "rejected": rejected,
            "journal": [{"partition": p, "offset": o} for p, o in placed],
        },
        status_code=202,
    )


def _meter_ids(rows: list[Any]) -> list[str]:
    return sorted(
        {r["meter"] for r in rows if isinstance(r, dict) and isinstance(r.get("meter"), str)}
    )
