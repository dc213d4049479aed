"""Utility push of meter readings: parse a batch, keep the valid rows, journal them durably.

Accepted bodies (by Content-Type), each row a reading `meter`, `ts`, `value`:
- `text/csv` (header row), `application/vnd.apache.arrow.stream` (Arrow IPC),
  `application/vnd.apache.parquet` (Parquet): parsed and validated column-wise (polars), the
  fast path for large batches;
- `application/json` (an array of objects) and `application/x-ndjson` (one object per line):
  validated row by row, for small pushes and hand-written requests.
`ts` is an ISO 8601 timestamp with a UTC offset (`2026-11-21T08:00:00Z`, `...+08:00`) or a number
of seconds since the Unix epoch. A timestamp without an offset is refused: meter data in local
time without saying so is the classic source of one-hour errors.

Valid rows are journaled even when others in the same batch are refused; refused rows come back
with their index and reason (the first MAX_LISTED of them, plus counts per reason), so the sender
can fix and resend only those. Re-sending rows already accepted is harmless: the same
(meter, time, value) is a duplicate the flow ignores; the same (meter, time) with another value
is a conflict, kept as a dead letter. Meters must be registered before data is pushed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import polars as pl

from carbonstream.core import timestamps
from carbonstream.faults import crash_point
from carbonstream.metrics import INGEST_REJECTED, JOURNAL_APPENDED, SAMPLES_INGESTED
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.records import METER_READINGS, encode_meter_readings

SOURCE = "push.meters"
TABULAR = {
    "text/csv": "csv",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
}
ROWWISE = ("application/json", "application/x-ndjson")
CONTENT_TYPES = (*ROWWISE, *TABULAR)
MAX_LISTED = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = ("meter", "ts", "value")
MAX_EPOCH_S = 9e9
"""Largest |epoch seconds| accepted (year 2255): every accepted instant fits int64 nanoseconds,
the unit of the journal and the products."""
_MAX_OFFSET = timedelta(hours=14, minutes=59)


class BodyError(ValueError):
    """The body as a whole cannot be read; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RowRejection:
    index: int
    reason: str
    message: str


@dataclass(frozen=True)
class ParsedBatch:
    """Valid readings (meter, ts_ns, value) and the refused rows."""

    valid: pl.DataFrame
    rejected: list[RowRejection]
    rejected_by_reason: dict[str, int]

    def __len__(self) -> int:
        return self.valid.height


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def parse_batch(
    body: bytes, content_type: str, known: Callable[[Iterable[str]], set[str]], max_rows: int
) -> ParsedBatch:
    """Reads and validates a body of any accepted type; `known(ids)` gives the registered ids."""
    media = media_type(content_type)
    if media in TABULAR:
        frame = _read_tabular(body, TABULAR[media])
        _check_rows(frame.height, max_rows)
        ids = frame["meter"].cast(pl.String).drop_nulls().unique().to_list()
        return validate_frame(frame, known(ids))
    if media in ROWWISE:
        rows = parse_rows(body, media)
        _check_rows(len(rows), max_rows)
        return validate_rows(rows, known(meter_ids(rows)))
    raise BodyError(
        f"unsupported Content-Type {media!r}; use one of {', '.join(CONTENT_TYPES)}", 415
    )


def _check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise BodyError(f"{n} rows exceed the limit of {max_rows} per request; split it", 413)


# -- tabular bodies, validated column-wise ------------------------------------------------------


def _read_tabular(body: bytes, kind: str) -> pl.DataFrame:
    try:
        if kind == "csv":
            frame = pl.read_csv(io.BytesIO(body), infer_schema=False)
        elif kind == "arrow":
            frame = pl.read_ipc_stream(io.BytesIO(body))
        else:
            frame = pl.read_parquet(io.BytesIO(body))
    except Exception as exc:  # each reader raises its own family of errors
        raise BodyError(f"body is not valid {kind}: {exc}") from None
    missing = [c for c in _COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in _COLUMNS]
    if missing or extra:
        raise BodyError(
            f"columns must be {list(_COLUMNS)}; missing {missing}, unknown {extra}", 422
        )
    # Arrow and Parquet carry types. Nested values, raw bytes and objects cannot be a meter id, a
    # time or a reading (the column-wise checks could not even cast them), and a boolean is not a
    # register value (a JSON body refuses `true` too).
    unusable = [
        f"{c} ({frame[c].dtype})"
        for c in _COLUMNS
        if frame[c].dtype.is_nested()
        or frame[c].dtype in (pl.Binary, pl.Object)
        or (c == "value" and frame[c].dtype == pl.Boolean)
    ]
    if unusable:
        raise BodyError(
            f"column(s) {', '.join(unusable)} cannot hold readings; use text or numbers", 422
        )
    return frame


def _timestamps_ns(ts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(epoch ns or null, message for the nulls) from ISO strings with offsets or epoch seconds."""
    frame = pl.DataFrame({"ts": ts})
    if ts.dtype.is_numeric():
        seconds = pl.col("ts").cast(pl.Float64)
        plausible = seconds.is_finite() & (seconds.abs() <= MAX_EPOCH_S)
        out = frame.select(
            ns=pl.when(plausible).then((seconds * 1e9).round().cast(pl.Int64)),
            msg=pl.lit("not a plausible number of epoch seconds"),
        )
        return out["ns"], out["msg"]
    # One pass over the column's bytes in the Rust core (no Python object per row).
    text = ts.cast(pl.String)
    lengths = text.str.len_bytes().fill_null(0).to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    joined = text.fill_null("").str.join("").item() if len(text) else ""
    buffer = np.frombuffer(joined.encode(), dtype=np.uint8)
    ns_values, error = timestamps.parse_iso8601(buffer, offsets)
    # Text formats (CSV) carry epoch seconds as text too: a cell that is not ISO but a number.
    syntax = np.flatnonzero(error == 1)
    if syntax.size:
        as_number = text.gather(syntax).cast(pl.Float64, strict=False).to_numpy()
        numeric = np.isfinite(as_number) & (np.abs(as_number) <= MAX_EPOCH_S)
        ns_values[syntax[numeric]] = np.round(as_number[numeric] * 1e9).astype(np.int64)
        error[syntax[numeric]] = 0
    ns = pl.DataFrame({"ns": ns_values, "ok": error == 0}).select(ns=pl.when("ok").then("ns"))["ns"]
    msg = np.array(_TIMESTAMP_ERRORS, dtype=object)[error]
    return ns, pl.Series("msg", msg, dtype=pl.String)


_TIMESTAMP_ERRORS = (
    "",
    "timestamp is not ISO 8601 (YYYY-MM-DDTHH:MM:SS[.f] with Z or an offset)",
    "timestamp has no UTC offset (add Z or +08:00)",
    "timestamp has a date or time field out of range (years 1678 to 2262 only)",
)


def validate_frame(frame: pl.DataFrame, known: set[str]) -> ParsedBatch:
    meter = frame["meter"].cast(pl.String)
    ts_ns, ts_message = _timestamps_ns(frame["ts"])
    value = frame["value"].cast(pl.Float64, strict=False)
    known_series = pl.Series(sorted(known), dtype=pl.String)
    reason = (
        pl.DataFrame({"meter": meter, "ts_ns": ts_ns, "value": value, "ts_msg": ts_message})
        .with_row_index("index")
        .with_columns(
            reason=pl.when(pl.col("meter").is_null() | (pl.col("meter") == ""))
            .then(pl.lit("bad_meter"))
            .when(~pl.col("meter").is_in(known_series.implode()))
            .then(pl.lit("unknown_meter"))
            .when(pl.col("ts_ns").is_null())
            .then(pl.lit("bad_timestamp"))
            .when(pl.col("value").is_null() | ~pl.col("value").is_finite() | (pl.col("value") < 0))
            .then(pl.lit("bad_value"))
            .otherwise(pl.lit(None))
        )
    )
    valid = reason.filter(pl.col("reason").is_null()).select("meter", "ts_ns", "value")
    bad = reason.filter(pl.col("reason").is_not_null())
    listed = bad.head(MAX_LISTED).with_columns(
        message=pl.when(pl.col("reason") == "bad_timestamp")
        .then(pl.col("ts_msg"))
        .when(pl.col("reason") == "unknown_meter")
        .then(pl.lit("meter is not registered"))
        .when(pl.col("reason") == "bad_meter")
        .then(pl.lit("meter must be a non-empty string"))
        .otherwise(pl.lit("value must be a finite register reading >= 0"))
    )
    rejected = [
        RowRejection(int(r["index"]), str(r["reason"]), str(r["message"]))
        for r in listed.iter_rows(named=True)
    ]
    counts = dict(bad.group_by("reason").len().iter_rows())
    return ParsedBatch(valid, rejected, {str(k): int(v) for k, v in counts.items()})


# -- JSON bodies, validated row by row ----------------------------------------------------------


@dataclass(frozen=True)
class _BadLine:
    line: int
    error: str


def parse_rows(body: bytes, media: str) -> list[Any]:
    if media == "application/json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"body is not valid JSON: {exc}") from None
        if not isinstance(doc, list):
            raise BodyError("a JSON body must be an array of readings")
        return doc
    rows: list[Any] = []
    for n, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            # One bad line must not cost the good ones: it becomes a refused row.
            rows.append(_BadLine(n, str(exc)))
    return rows


def validate_rows(rows: Sequence[Any], known: set[str]) -> ParsedBatch:
    meters: list[str] = []
    stamps: list[int] = []
    values: list[float] = []
    rejected: list[RowRejection] = []
    counts: dict[str, int] = {}
    for i, row in enumerate(rows):
        checked = _check_row(row, known)
        if isinstance(checked, RowRejection):
            counts[checked.reason] = counts.get(checked.reason, 0) + 1
            if len(rejected) < MAX_LISTED:
                rejected.append(RowRejection(i, checked.reason, checked.message))
            continue
        meters.append(checked[0])
        stamps.append(checked[1])
        values.append(checked[2])
    valid = pl.DataFrame(
        {"meter": meters, "ts_ns": stamps, "value": values},
        schema={"meter": pl.String, "ts_ns": pl.Int64, "value": pl.Float64},
    )
    return ParsedBatch(valid, rejected, counts)


def _check_row(row: Any, known: set[str]) -> RowRejection | tuple[str, int, float]:
    if isinstance(row, _BadLine):
        return RowRejection(0, "bad_json", f"line {row.line} is not valid JSON: {row.error}")
    if not isinstance(row, dict):
        return RowRejection(0, "not_an_object", "each reading must be a JSON object")
    extra = set(row) - set(_COLUMNS)
    if extra:
        return RowRejection(0, "unknown_field", f"unknown field(s) {sorted(extra)}")
    meter = row.get("meter")
    if not isinstance(meter, str) or not meter:
        return RowRejection(0, "bad_meter", "meter must be a non-empty string")
    if meter not in known:
        return RowRejection(0, "unknown_meter", f"meter {meter!r} is not registered")
    ts = _parse_ts(row.get("ts"))
    if isinstance(ts, str):
        return RowRejection(0, "bad_timestamp", ts)
    value = row.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return RowRejection(0, "bad_value", f"value must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        return RowRejection(
            0, "bad_value", f"value must be a finite register reading >= 0, got {value}"
        )
    return meter, ts, float(value)


def _parse_ts(ts: Any) -> int | str:
    """Epoch ns, or a message saying what is wrong."""
    if isinstance(ts, bool):
        return "ts must be an ISO 8601 string or epoch seconds"
    if isinstance(ts, int | float):
        if not np.isfinite(ts) or abs(ts) > MAX_EPOCH_S:
            return f"ts {ts} is not a plausible number of epoch seconds"
        return round(ts * 1e9)
    if not isinstance(ts, str):
        return "ts must be an ISO 8601 string or epoch seconds"
    try:
        parsed = datetime.fromisoformat(ts)
    except ValueError:
        return f"ts {ts!r} is not an ISO 8601 timestamp"
    offset = parsed.utcoffset()
    if offset is None:
        return f"ts {ts!r} has no UTC offset (add Z or +08:00)"
    # The same limits as the column parser of the other formats (core-rs/src/timestamps.rs).
    if abs(offset) > _MAX_OFFSET:
        return f"ts {ts!r} has a UTC offset beyond ±14:59"
    ns = ((parsed - _EPOCH) // timedelta(microseconds=1)) * 1_000
    if not -(2**63) <= ns < 2**63:
        return f"ts {ts!r} is out of range (int64 nanoseconds hold years 1678 to 2262)"
    return ns


def meter_ids(body_rows: Sequence[Any]) -> list[str]:
    """Meter ids named by row-wise input (to look up which are registered)."""
    return sorted(
        {r["meter"] for r in body_rows if isinstance(r, dict) and isinstance(r.get("meter"), str)}
    )


# -- journaling ---------------------------------------------------------------------------------


def journal_batch(journal: JournalBackend, batch: ParsedBatch) -> list[tuple[int, int]]:
    """Appends the valid rows, one record per journal partition; durable on return."""
    for reason, n in batch.rejected_by_reason.items():
        INGEST_REJECTED.labels(SOURCE, reason).inc(n)
    if not len(batch):
        return []
    frame = batch.valid
    ids = frame["meter"].unique()
    part_of = pl.DataFrame(
        {"meter": ids, "partition": [journal.partition_for(m) for m in ids.to_list()]}
    )
    frame = frame.join(part_of, on="meter", how="left", maintain_order="left")
    placed = []
    for (p,), sub in frame.group_by("partition", maintain_order=True):
        payload = encode_meter_readings(sub["meter"], sub["ts_ns"], sub["value"])
        # The same rows re-sent (an answer lost, a client retrying) make the same payload: the
        # journal keeps them once.
        key = hashlib.blake2b(payload, digest_size=16, person=b"push.meters").digest()
        (offset,) = journal.append(int(p), [JournalEntry(SOURCE, METER_READINGS, payload, key)])
        crash_point("push.after_append")
        placed.append((int(p), offset))
    JOURNAL_APPENDED.labels(SOURCE).inc(len(placed))
    SAMPLES_INGESTED.labels(SOURCE).inc(len(batch))
    return placed
