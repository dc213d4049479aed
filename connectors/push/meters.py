"""Utility push of meter readings: parse a batch, keep the valid rows, journal them durably.

Accepted body formats (by Content-Type):
- `application/json`: an array of objects `{"meter": str, "ts": str | number, "value": number}`;
- `application/x-ndjson`: one such object per line.
`ts` is an ISO 8601 timestamp with a UTC offset (`2026-11-21T08:00:00Z`) or a number of seconds
since the Unix epoch. A timestamp without an offset is refused: meter data in local time without
saying so is the classic source of one-hour errors.

Valid rows are journaled even when others in the same batch are refused; refused rows are reported
back with their index and reason (and counted), so the sender can fix and resend only those.
Meters must be registered (declared in the configuration or by a connector) before data is pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import polars as pl

from carbonstream.metrics import INGEST_REJECTED, JOURNAL_APPENDED, SAMPLES_INGESTED
from storage.journal import Journal, JournalEntry
from storage.records import METER_READINGS, encode_meter_readings

SOURCE = "push.meters"
CONTENT_TYPES = ("application/json", "application/x-ndjson")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BodyError(ValueError):
    """The body as a whole cannot be read (not the format announced)."""


@dataclass(frozen=True)
class RowRejection:
    index: int
    reason: str
    message: str


@dataclass
class ParsedBatch:
    meters: list[str] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rejected: list[RowRejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.meters)


def parse_body(body: bytes, content_type: str) -> list[Any]:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"body is not valid JSON: {exc}") from None
        if not isinstance(doc, list):
            raise BodyError("a JSON body must be an array of readings")
        return doc
    if media == "application/x-ndjson":
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
    raise BodyError(f"unsupported Content-Type {media!r}; use one of {', '.join(CONTENT_TYPES)}")


@dataclass(frozen=True)
class _BadLine:
    line: int
    error: str


def validate_rows(rows: Sequence[Any], known_meters: set[str]) -> ParsedBatch:
    out = ParsedBatch()
    for i, row in enumerate(rows):
        problem = _check_row(row, known_meters)
        if isinstance(problem, RowRejection):
            out.rejected.append(RowRejection(i, problem.reason, problem.message))
            continue
        meter, ts_ns, value = problem
        out.meters.append(meter)
        out.ts_ns.append(ts_ns)
        out.values.append(value)
    return out


def _check_row(row: Any, known: set[str]) -> RowRejection | tuple[str, int, float]:
    if isinstance(row, _BadLine):
        return RowRejection(0, "bad_json", f"line {row.line} is not valid JSON: {row.error}")
    if not isinstance(row, dict):
        return RowRejection(0, "not_an_object", "each reading must be a JSON object")
    extra = set(row) - {"meter", "ts", "value"}
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
        if not np.isfinite(ts) or abs(ts) > 1e11:
            return f"ts {ts} is not a plausible number of epoch seconds"
        return round(ts * 1e9)
    if not isinstance(ts, str):
        return "ts must be an ISO 8601 string or epoch seconds"
    try:
        parsed = datetime.fromisoformat(ts)
    except ValueError:
        return f"ts {ts!r} is not an ISO 8601 timestamp"
    if parsed.tzinfo is None:
        return f"ts {ts!r} has no UTC offset (add Z or +08:00)"
    return ((parsed - _EPOCH) // timedelta(microseconds=1)) * 1_000


def journal_batch(journal: Journal, batch: ParsedBatch) -> list[tuple[int, int]]:
    """Appends the valid rows, one record per journal partition; durable on return."""
    for r in batch.rejected:
        INGEST_REJECTED.labels(SOURCE, r.reason).inc()
    if not len(batch):
        return []
    frame = pl.DataFrame(
        {"meter": batch.meters, "ts_ns": batch.ts_ns, "value": batch.values},
        schema={"meter": pl.String, "ts_ns": pl.Int64, "value": pl.Float64},
    )
    part = np.array([journal.partition_for(m) for m in batch.meters])
    placed = []
    for p in np.unique(part):
        sub = frame.filter(pl.Series(part == p))
        payload = encode_meter_readings(sub["meter"], sub["ts_ns"], sub["value"])
        (offset,) = journal.append(int(p), [JournalEntry(SOURCE, METER_READINGS, payload)])
        placed.append((int(p), offset))
    JOURNAL_APPENDED.labels(SOURCE).inc(len(placed))
    SAMPLES_INGESTED.labels(SOURCE).inc(len(batch))
    return placed
