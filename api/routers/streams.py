"""Every stream of every kind, one way: the registry, a stream's cells in any product over a time
range, and its latest values.

A stream is a row of the products of its kind (axis): a meter of meters/interval, a stack
variable of cems/minute|hour|day (id `<site>/<code>`), a flux site of ec/flux_<N>min, an entity
of entities/interval|day|month. The kind-specific routers (meters, cems, ec, entities) answer
with domain vocabulary; these routes answer with the stored variables as they are, so a client
written once reads any product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import READ
from api.errors import Problem
from api.latest import SEARCH_SLOTS, ProductState, newest_cells
from api.limits import MAX_OFFSET
from api.responses import NumericJSONResponse, json_example
from api.state import ApiState, State
from api.tabular import (
    FORMAT_QUERY,
    TABLE_RESPONSES,
    TableFormat,
    instants,
    negotiate,
    table_response,
)
from api.timeparams import iso, slot_window, time_range
from storage.metadata import StreamInfo
from storage.products import CEMS_AXIS, EC_AXIS, ENTITIES_AXIS, METERS_AXIS, ProductSpec

router = APIRouter(prefix="/v1/streams", tags=["streams"])

Kind = Literal["meters", "cems", "ec", "entities"]
KINDS: tuple[str, ...] = (METERS_AXIS, CEMS_AXIS, EC_AXIS, ENTITIES_AXIS)
MAX_SLOTS = 200_000
DAY_NS = 86_400 * 1_000_000_000
_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

STREAM_EXAMPLE = {
    "kind": "cems",
    "id": "sim-stack-000/a05001",
    "row": 3,
    "attrs": {"site": "sim-stack-000", "code": "a05001", "unit": "mg/m3", "role": "mass"},
    "products": ["cems/minute", "cems/hour", "cems/day"],
}


def _stream(state: ApiState, kind: str, stream_id: str) -> StreamInfo:
    found = state.db.streams(kind, [stream_id])
    if not found:
        raise Problem(404, "Unknown stream", f"no {kind} stream {stream_id!r}")
    return found[0]


def _product(state: ApiState, kind: str, product: str | None) -> str:
    names = state.products_of(kind)
    if product is None:
        return names[0]
    if product not in names:
        raise Problem(400, "Unknown product", f"{kind} streams are in {names}, not {product!r}")
    return product


def _describe(state: ApiState, info: StreamInfo) -> dict[str, Any]:
    return {
        "kind": info.axis,
        "id": info.id,
        "row": info.idx,
        "attrs": info.attrs,
        "products": state.products_of(info.axis),
    }


@router.get(
    "",
    dependencies=[READ],
    summary="Registered streams of every kind (paginated)",
    responses=json_example({"total": 1, "limit": 100, "offset": 0, "items": [STREAM_EXAMPLE]}),
)
def list_streams(
    state: State,
    kind: Kind | None = Query(None, description="Only streams of this kind"),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(
        0, ge=0, le=MAX_OFFSET, description="Position in the list (kinds in a fixed order)"
    ),
) -> Response:
    kinds = [kind] if kind is not None else list(KINDS)
    counts = {k: state.db.stream_count(k) for k in kinds}
    items: list[dict[str, Any]] = []
    skip, room = offset, limit
    for k in kinds:
        if room == 0:
            break
        if skip >= counts[k]:
            skip -= counts[k]
            continue
        for info in state.db.streams_by_rows(k, skip, skip + room):
            items.append(_describe(state, info))
        room = limit - len(items)
        skip = 0
    return NumericJSONResponse(
        {"total": sum(counts.values()), "limit": limit, "offset": offset, "items": items}
    )


@router.get(
    "/{kind}/{stream_id:path}/data",
    dependencies=[READ],
    summary="A stream's stored cells in one product over a time range",
    responses=TABLE_RESPONSES,
)
def stream_data(
    state: State,
    request: Request,
    kind: Kind,
    stream_id: str,
    product: str | None = Query(None, description="e.g. cems/hour; default: the kind's first"),
    variable: list[str] | None = Query(None, description="Only these variables (repeatable)"),
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    format: TableFormat | None = FORMAT_QUERY,
) -> Response:
    info = _stream(state, kind, stream_id)
    name = _product(state, kind, product)
    reader = state.products[name]
    spec = reader.spec
    names = [v.name for v in spec.variables]
    if variable:
        unknown = sorted(set(variable) - set(names))
        if unknown:
            raise Problem(400, "Unknown variable", f"{name} has no {unknown[0]!r}; it has {names}")
        names = [n for n in names if n in variable]
    start_ns, end_ns = time_range(start, end, DAY_NS)
    slot0, slot1 = slot_window(spec, start_ns, end_ns, MAX_SLOTS)
    # A product with a presence variable (written last) marks a cell present only once every
    # variable of it is stored: a cell a flush is writing right now is left out, not shown
    # half written. It is read even when not asked for (the reader reads it first).
    marks = [spec.written_last] if spec.written_last else []
    data = reader.read([info.idx], slot0, slot1, list(dict.fromkeys([*marks, *names])))
    present = _any_present(spec, data, names)
    if marks:
        present &= _any_present(spec, data, marks)
    keep = np.flatnonzero(present)
    frame = pl.DataFrame(
        {
            "time": instants(spec.slot_starts(slot0, slot1)[keep]),
            **{n: data[n][0, keep] for n in names},
        }
    )
    envelope = {
        "kind": kind,
        "id": info.id,
        "product": name,
        "start": iso(start_ns),
        "end": iso(end_ns),
        "units": {v.name: v.attrs["units"] for v in spec.variables if "units" in v.attrs},
    }
    return table_response(frame, negotiate(request, format), envelope, "cells")


def _any_present(spec: ProductSpec, data: Mapping[str, np.ndarray], names: Sequence[str]) -> Any:
    """Per slot of the (one-row) read: any of `names` holds a value (not its fill)."""
    present = np.zeros(data[names[0]].shape[1], dtype=bool)
    for n in names:
        present |= spec.variable(n).holds(data[n][0])
    return present


@router.get(
    "/{kind}/{stream_id:path}/latest",
    dependencies=[READ],
    summary="A stream's newest period with data (served from a cache kept current with the store)",
    responses=json_example(
        {
            "kind": "meters",
            "id": "sim-meter-00003",
            "product": "meters/interval",
            "time": "2026-11-21T08:14:00Z",
            "values": {
                "consumption": 0.41,
                "co2": 0.24,
                "coverage": 1.0,
                "reading": 18234.5,
            },
        }
    ),
)
async def stream_latest(
    state: State,
    kind: Kind,
    stream_id: str,
    product: str | None = Query(None, description="e.g. cems/hour; default: the kind's first"),
) -> Response:
    name = _product(state, kind, product)

    def render(product_state: ProductState) -> bytes:
        info = _stream(state, kind, stream_id)
        reader = state.products[name]
        (cell,) = newest_cells(reader, [info.idx], product_state.newest_slot, SEARCH_SLOTS)
        body: dict[str, Any] = {"kind": kind, "id": info.id, "product": name}
        if cell is None:
            body |= {"time": None, "values": None}
        else:
            body |= {"time": iso(reader.spec.slot_start_ns(cell[0])), "values": cell[1]}
        return orjson.dumps(body, option=_JSON)

    body = await state.latest.get(("stream", kind, stream_id, name), name, render)
    return Response(body, media_type="application/json")


@router.get(
    "/{kind}/{stream_id:path}",
    dependencies=[READ],
    summary="One stream: its attributes and the products holding it",
    responses=json_example(STREAM_EXAMPLE),
)
def get_stream(state: State, kind: Kind, stream_id: str) -> Response:
    return NumericJSONResponse(_describe(state, _stream(state, kind, stream_id)))
