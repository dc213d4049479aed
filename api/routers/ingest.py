"""Push ingest over HTTP. 202 means the accepted rows are durable in the journal."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import INGEST
from api.errors import Problem
from api.responses import NumericJSONResponse
from api.state import State
from connectors.push.meters import BodyError, journal_batch, parse_batch

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it exceeds `limit` bytes instead of buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
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
    dependencies=[INGEST],
    status_code=202,
    summary="Push cumulative meter readings (CSV, Arrow IPC, Parquet, JSON array or NDJSON)",
    responses={
        202: {"description": "valid rows are durable; refused rows are listed (first 1,000)"},
        400: {"description": "unreadable body"},
        413: {"description": "body or row count over the limit"},
        415: {"description": "unsupported Content-Type"},
        422: {"description": "no valid row in the batch, or wrong columns"},
        503: {
            "description": "storage full or read-only: nothing acknowledged, send it again "
            "after Retry-After (rows already stored are recognised and not doubled)"
        },
    },
)
async def push_meters(request: Request, state: State) -> Response:
    body = await read_limited(request, state.config.api.max_body_bytes)
    content_type = request.headers.get("content-type", "application/json")
    try:
        batch = await run_in_threadpool(
            parse_batch, body, content_type, state.known_meters, state.config.api.max_rows
        )
    except BodyError as exc:
        raise Problem(exc.status, "Unusable body", str(exc)) from None
    placed = await run_in_threadpool(journal_batch, state.journal, batch)
    rejected = [
        {"index": r.index, "reason": r.reason, "message": r.message} for r in batch.rejected
    ]
    summary = {
        "accepted": len(batch),
        "rejected_total": sum(batch.rejected_by_reason.values()),
        "rejected_by_reason": batch.rejected_by_reason,
        "rejected": rejected,
    }
    if not len(batch):
        raise Problem(422, "No valid reading", "every row was refused", **summary)
    return NumericJSONResponse(
        {**summary, "journal": [{"partition": p, "offset": o} for p, o in placed]},
        status_code=202,
    )
