"""Emission-factor table versions: list, inspect, load a revision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN, READ
from api.errors import Problem
from api.routers.ingest import read_limited
from api.state import State
from storage.factors import FactorTable, FactorTableError

router = APIRouter(prefix="/v1/factors", tags=["factors"])


@router.get("", dependencies=[READ], summary="Versions of the emission-factor table")
def versions(state: State) -> dict[str, Any]:
    table = FactorTable(state.layout.metadata_db)
    try:
        return {"items": [v.__dict__ for v in table.versions()]}
    finally:
        table.close()


@router.post(
    "",
    dependencies=[ADMIN],
    status_code=201,
    summary="Load a revised factor table (CSV with the seed table's header) as a new version",
)
async def load(request: Request, state: State, note: str = Query(min_length=1)) -> dict[str, Any]:
    body = await read_limited(request, 1 << 20)
    table = FactorTable(state.layout.metadata_db)
    try:
        version = await run_in_threadpool(table.load, body.decode(errors="replace"), note)
    except FactorTableError as exc:
        raise Problem(422, "Invalid factor table", str(exc)) from None
    finally:
        table.close()
    return {"version": version}
