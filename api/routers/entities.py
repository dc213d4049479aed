"""Entities (city -> district -> park -> enterprise): the hierarchy and its emissions."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.auth import ADMIN, READ
from api.errors import Problem
from api.state import ApiState, State
from api.tabular import (
    FORMAT_QUERY,
    TABLE_RESPONSES,
    TableFormat,
    instants,
    negotiate,
    table_response,
)
from api.timeparams import slot_window, time_range
from carbonstream.config import EntitySettings, MeterStream
from storage.entities import EntityNode, EntityTree, EntityTreeError, check_hierarchy
from storage.factors import FactorTable
from storage.products import ENTITIES_AXIS, METERS_AXIS
from stream.recompute import Recomputer

router = APIRouter(tags=["entities"])

DAY_NS = 86_400 * 1_000_000_000
DEFAULT_SPAN_NS = {"interval": DAY_NS, "day": 31 * DAY_NS, "month": 366 * DAY_NS}
MAX_PERIODS = 100_000
MAX_RECOMPUTE_NS = 366 * DAY_NS
"""A recomputation reads every meter interval of its range: at most a year per query."""


def _node_json(tree: EntityTree, n: EntityNode) -> dict[str, Any]:
    return {
        "id": n.id,
        "name": n.name,
        "kind": n.kind,
        "parent": n.parent,
        "children": tree.children[n.id],
        "meters": int(tree.direct_meters[n.id].size),
        "members": tree.member_count(n.id),
        "activity": None
        if n.activity is None
        else {"measure": n.activity.measure, "value": n.activity.value, "unit": n.activity.unit},
    }


@router.get("/v1/entities", dependencies=[READ], summary="The entity hierarchy")
def list_entities(state: State) -> dict[str, Any]:
    tree = EntityTree.load(state.db)
    return {"items": [_node_json(tree, n) for n in tree.nodes.values()]}


@router.get(
    "/v1/entities/{entity_id}",
    dependencies=[READ],
    summary="One entity, its children and member counts",
)
def get_entity(state: State, entity_id: str) -> dict[str, Any]:
    tree = EntityTree.load(state.db)
    if entity_id not in tree.nodes:
        raise Problem(404, "Unknown entity", f"entity {entity_id!r} is not registered")
    return _node_json(tree, tree.nodes[entity_id])


@router.get(
    "/v1/entities/{entity_id}/emissions",
    dependencies=[READ],
    summary="CO2 (by scope), consumption per commodity and intensity over a time range",
    responses=TABLE_RESPONSES,
)
def emissions(
    state: State,
    request: Request,
    entity_id: str,
    resolution: Literal["interval", "day", "month"] = Query("day"),
    start: str | None = Query(None, description="ISO 8601 with offset"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    format: TableFormat | None = FORMAT_QUERY,
    factor_version: int | None = Query(
        None,
        ge=1,
        description="Recompute from stored consumption with this factor-table version "
        "(day and month resolutions); default: the stored values",
    ),
) -> Response:
    tree = EntityTree.load(state.db)
    node = tree.nodes.get(entity_id)
    if node is None:
        raise Problem(404, "Unknown entity", f"entity {entity_id!r} is not registered")
    fmt = negotiate(request, format)
    if factor_version is not None:
        return _recomputed(state, tree, node, resolution, start, end, factor_version, fmt)
    reader = state.entity_readers[f"entities/{resolution}"]
    spec = reader.spec
    start_ns, end_ns = time_range(start, end, DEFAULT_SPAN_NS[resolution])
    slot0, slot1 = slot_window(spec, start_ns, end_ns, MAX_PERIODS)
    data = reader.read([node.row], slot0, slot1)
    # Completeness is the presence variable: read first, a period it shows has all its values.
    completeness = data["completeness"][0]
    keep = np.flatnonzero(
        ~np.isnan(completeness) & (~np.isnan(data["co2"][0]) | (completeness > 0))
    )
    starts = spec.slot_starts(slot0, slot1)[keep]
    columns: dict[str, Any] = {"period_start": instants(starts)}
    for v in spec.variables:
        name = f"{v.name}_kg" if v.name.startswith("co2") else v.name
        columns[name] = data[v.name][0, keep]
    if node.activity is not None:
        columns[f"co2_intensity_kg_per_{node.activity.unit}"] = (
            data["co2"][0, keep] / node.activity.value
        )
    envelope = {
        "entity": node.id,
        "resolution": resolution,
        "units": {v.name: v.attrs.get("units") for v in spec.variables if "units" in v.attrs},
        "activity": _node_json(tree, node)["activity"],
    }
    return table_response(pl.DataFrame(columns), fmt, envelope, "periods")


def _recomputed(
    state: ApiState,
    tree: EntityTree,
    node: EntityNode,
    resolution: str,
    start: str | None,
    end: str | None,
    version: int,
    format: str,
) -> Response:
    if resolution == "interval":
        raise Problem(400, "Unsupported", "factor_version recomputes day or month resolutions")
    if version not in {v.version for v in FactorTable(state.layout.metadata_db).versions()}:
        raise Problem(
            404, "Unknown factor version", f"factor table version {version} does not exist"
        )
    start_ns, end_ns = time_range(start, end, DEFAULT_SPAN_NS[resolution])
    if end_ns - start_ns > MAX_RECOMPUTE_NS:
        raise Problem(
            400, "Time range too long", "a recomputation covers at most 366 days per query"
        )
    recomputer = Recomputer(state.config)
    try:
        frame = recomputer.emissions(
            tree.meter_rows_below(node.id),
            start_ns,
            end_ns,
            version,
            "day" if resolution == "day" else "month",
        )
    finally:
        recomputer.close()
    envelope = {"entity": node.id, "resolution": resolution, "factor_version": version}
    return table_response(frame, format, envelope, "periods")


@router.post(
    "/v1/entities", dependencies=[ADMIN], status_code=201, summary="Register or update entities"
)
def register_entities(state: State, body: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        entities = [EntitySettings.model_validate(e) for e in body]
    except ValidationError as exc:
        raise Problem(422, "Invalid entity", str(exc.errors(include_url=False))) from None
    tree = EntityTree.load(state.db)
    parents: dict[str, str | None] = {n.id: n.parent for n in tree.nodes.values()}
    parents.update({e.id: e.parent for e in entities})
    try:
        check_hierarchy(parents)
    except EntityTreeError as exc:
        raise Problem(409, "Hierarchy conflict", str(exc)) from None
    rows = state.db.register_streams(
        ENTITIES_AXIS, {e.id: e.model_dump(exclude={"id"}) for e in entities}
    )
    return {"registered": rows}


@router.post(
    "/v1/meters", dependencies=[ADMIN], status_code=201, summary="Register or update meters"
)
def register_meters(state: State, body: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        meters = [MeterStream.model_validate(m) for m in body]
    except ValidationError as exc:
        raise Problem(422, "Invalid meter", str(exc.errors(include_url=False))) from None
    known = {s.id for s in state.db.streams(ENTITIES_AXIS)}
    unknown = sorted({m.entity for m in meters if m.entity and m.entity not in known})
    if unknown:
        raise Problem(409, "Unknown entity", f"entities {unknown} are not registered")
    rows = state.db.register_streams(
        METERS_AXIS, {m.id: m.model_dump(exclude={"id"}) for m in meters}
    )
    return {"registered": rows}
