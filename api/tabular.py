"""Time-series answers in the format the caller asked for: JSON (orjson), CSV, Parquet or Arrow.

Routes build one polars frame; this module turns it into the response. JSON keeps the route's
envelope (site, units, range...) around the rows; the file formats carry the rows only, with
typed columns (Parquet and Arrow keep lists and nulls as they are; CSV joins lists with commas),
so a notebook reads them with `pl.read_parquet(url)` or `pyarrow.ipc.open_stream`.

The format comes from `?format=` or, when that is absent, from the Accept header.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import polars as pl
from fastapi import Query, Request
from fastapi.responses import Response

from api.errors import Problem
from api.responses import NumericJSONResponse

TableFormat = Literal["json", "csv", "parquet", "arrow"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
FORMAT_QUERY: Any = Query(
    None,
    description="json, csv, parquet or arrow (Arrow IPC stream); default from the Accept "
    "header, else json",
)
TABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            MEDIA_TYPES["csv"]: {},
            MEDIA_TYPES["parquet"]: {},
            MEDIA_TYPES["arrow"]: {},
        },
        "description": "Rows as JSON (with the envelope), CSV, Parquet or Arrow.",
    }
}
"""OpenAPI `responses=` for a route answering with table_response."""


def negotiate(request: Request, format: str | None) -> str:
    """The requested format: the query parameter, else the first Accept type we produce."""
    if format is not None:
        return format
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        for name, known in MEDIA_TYPES.items():
            if media == known:
                return name
    return "json"


def rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A frame from row dicts built by a route (types inferred from all rows, not the first)."""
    return pl.DataFrame(rows, infer_schema_length=None)


def instants(starts_ns: Any) -> pl.Series:
    """Period starts (epoch ns) as a UTC datetime column: typed in Parquet and Arrow, ISO 8601
    text (`2026-01-01T00:00:00Z`) in JSON and CSV."""
    return pl.Series(starts_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


def _as_text_times(frame: pl.DataFrame) -> pl.DataFrame:
    stamps = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    if not stamps:
        return frame
    return frame.with_columns(pl.col(n).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for n in stamps)


def table_response(
    frame: pl.DataFrame,
    format: str,
    envelope: dict[str, Any] | None = None,
    rows_key: str = "rows",
) -> Response:
    if format == "json":
        body = dict(envelope or {})
        body[rows_key] = _as_text_times(frame).to_dicts()
        return NumericJSONResponse(body)
    buf = io.BytesIO()
    if format == "csv":
        lists = [n for n, t in frame.schema.items() if isinstance(t, pl.List)]
        flat = frame.with_columns(pl.col(n).list.join(",") for n in lists) if lists else frame
        _as_text_times(flat).write_csv(buf)
    elif format == "parquet":
        frame.write_parquet(buf)
    elif format == "arrow":
        frame.write_ipc_stream(buf)
    else:  # guarded by the Literal of the route; kept for direct callers
        raise Problem(400, "Unknown format", f"format={format!r}: use one of {list(MEDIA_TYPES)}")
    return Response(buf.getvalue(), media_type=MEDIA_TYPES[format])
