"""Monitoring sites of every kind in one list: CEMS stacks (HJ 212 loggers) and flux towers.

A site is where instruments are: it owns streams (a stack's variables, a tower's flux row) and
the kind-specific routes (/v1/cems/{site}/..., /v1/ec/{site}/...) hold its domain answers. This
list is what a fleet view or a map-free site picker reads.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import READ
from api.errors import Problem
from api.limits import MAX_OFFSET
from api.responses import NumericJSONResponse, json_example
from api.state import ApiState, State
from connectors.hj212.sites import effective_sites
from storage.products import CEMS_AXIS, EC_AXIS

router = APIRouter(prefix="/v1/sites", tags=["sites"])

SITE_EXAMPLE = {
    "id": "sim-stack-000",
    "kind": "cems",
    "name": "sim-stack-000",
    "streams": ["sim-stack-000/a05001", "sim-stack-000/a19001"],
    "links": {
        "hourly": "/v1/cems/sim-stack-000/hourly",
        "latest": "/v1/streams/cems/sim-stack-000/a05001/latest?product=cems/hour",
    },
}


def _all_sites(state: ApiState) -> list[dict[str, Any]]:
    """Every configured (or simulated) site, CEMS first, each in configuration order."""
    cems_rows: dict[str, list[str]] = {}
    for info in state.db.streams(CEMS_AXIS):
        cems_rows.setdefault(str(info.attrs.get("site", info.id.split("/")[0])), []).append(info.id)
    ec_rows = {info.id for info in state.db.streams(EC_AXIS)}
    out: list[dict[str, Any]] = []
    for s in effective_sites(state.config):
        streams = cems_rows.get(s.id, [])
        co2 = f"{s.id}/a05001"
        out.append(
            {
                "id": s.id,
                "kind": "cems",
                "name": s.name or s.id,
                "mn": s.mn,
                "policy": s.policy,
                "utc_offset": s.utc_offset,
                "streams": streams,
                "links": {
                    "hourly": f"/v1/cems/{s.id}/hourly",
                    "daily": f"/v1/cems/{s.id}/daily",
                    "totals": f"/v1/cems/{s.id}/totals",
                    "quality": f"/v1/cems/{s.id}/quality",
                    **(
                        {"latest": f"/v1/streams/cems/{co2}/latest?product=cems/hour"}
                        if co2 in streams
                        else {}
                    ),
                },
            }
        )
    for e in state.config.ec.all_sites():
        streams = [e.id] if e.id in ec_rows else []
        out.append(
            {
                "id": e.id,
                "kind": "ec",
                "name": e.id,
                "latitude_deg": e.latitude_deg,
                "longitude_deg": e.longitude_deg,
                "altitude_m": e.altitude_m,
                "averaging_min": e.averaging_min,
                "sampling_hz": e.sampling_hz,
                "streams": streams,
                "links": {
                    "fluxes": f"/v1/ec/{e.id}/fluxes",
                    **({"latest": f"/v1/streams/ec/{e.id}/latest"} if streams else {}),
                },
            }
        )
    return out


@router.get(
    "",
    dependencies=[READ],
    summary="Monitoring sites of every kind (paginated)",
    responses=json_example({"total": 1, "limit": 100, "offset": 0, "items": [SITE_EXAMPLE]}),
)
def list_sites(
    state: State,
    kind: Literal["cems", "ec"] | None = Query(None, description="Only sites of this kind"),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    sites = [s for s in _all_sites(state) if kind is None or s["kind"] == kind]
    return NumericJSONResponse(
        {
            "total": len(sites),
            "limit": limit,
            "offset": offset,
            "items": sites[offset : offset + limit],
        }
    )


@router.get(
    "/{site_id}",
    dependencies=[READ],
    summary="One site: its kind, streams and where its results are",
    responses=json_example(SITE_EXAMPLE),
)
def get_site(state: State, site_id: str) -> Response:
    for s in _all_sites(state):
        if s["id"] == site_id:
            return NumericJSONResponse(s)
    raise Problem(404, "Unknown site", f"no site {site_id!r}")
