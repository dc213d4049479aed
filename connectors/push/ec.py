"""Live push of raw eddy-covariance rows (HTTP, chunked HTTP, WebSocket): parsing and validation.

A batch is one tower's rows, in one of three shapes:

- columnar JSON: `{"ts_ns": [...], "u": [...], "v": [...], ...}` (or `"time"`: ISO 8601 strings);
- row JSON: `[{"ts_ns": ..., "u": ..., ...}, ...]` or the same as NDJSON (one object a line);
- CSV (`text/csv`) with a header line naming the same columns.

Columns are the kernel's (see storage/records.py EC_COLUMNS; u, v, w, ts [K] required). A value
that is null, NaN, -9999 or not a number is missing (NaN; non-numbers are counted); a row without
a usable timestamp is refused and listed. The valid rows go to the journal as one `ec_raw`
record, acknowledged once durable.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.records import EC_COLUMNS, EC_RAW, EC_REQUIRED, encode_ec_raw

MAX_REJECTED_LISTED = 100


class EcBodyError(ValueError):
    """A body that is not a batch at all (HTTP 400/415)."""


@dataclass
class EcBatch:
    ts_ns: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.float32]]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_rows: int = 0
    non_numeric: int = 0

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def reject(self, index: int, reason: str) -> None:
        self.rejected_rows += 1
        if len(self.rejected) < MAX_REJECTED_LISTED:
            self.rejected.append({"index": index, "reason": reason})

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": len(self),
            "rejected_rows": self.rejected_rows,
            "rejected": self.rejected,
            "non_numeric_values": self.non_numeric,
        }


def _time_ns(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str):
        if v.strip().lstrip("-").isdigit():
            return int(v.strip())
        try:
            t = datetime.fromisoformat(v.strip())
        except ValueError:
            return None
        if t.tzinfo is None:
            return None
        return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
    return None


def parse_ec_body(body: bytes, content_type: str) -> EcBatch:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        text = body.decode("utf-8", errors="replace")
        rows: list[Any] = list(csv.DictReader(io.StringIO(text)))
        return _from_rows(rows)
    if ctype in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        rows = []
        for i, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                rows.append({"__bad_json__": i})
        return _from_rows(rows)
    if ctype not in ("application/json", ""):
        raise EcBodyError(
            f"unsupported Content-Type {content_type!r}: use application/json, "
            "application/x-ndjson or text/csv"
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EcBodyError(f"body is not JSON: {exc}") from None
    return parse_ec_json(doc)


def parse_ec_json(doc: Any) -> EcBatch:
    if isinstance(doc, list):
        return _from_rows(doc)
    if isinstance(doc, dict):
        return _from_columns(doc)
    raise EcBodyError("a batch is a JSON object of columns or an array of row objects")


def _check_names(names: set[str]) -> None:
    unknown = sorted(names - set(EC_COLUMNS) - {"ts_ns", "time"})
    if unknown:
        raise EcBodyError(f"unknown column(s) {unknown}; columns are ts_ns|time, {EC_COLUMNS}")
    missing = [c for c in EC_REQUIRED if c not in names]
    if missing:
        raise EcBodyError(f"required column(s) {missing} missing")
    if "ts_ns" not in names and "time" not in names:
        raise EcBodyError("a timestamp column (ts_ns, or time as ISO 8601 with offset) is needed")


def _number(v: Any, batch: EcBatch) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    if isinstance(v, int | float):
        return math.nan if v == -9999 else float(v)
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in ("", "nan", "na", "-9999"):
            return math.nan
        try:
            x = float(s)
        except ValueError:
            batch.non_numeric += 1
            return math.nan
        return math.nan if x == -9999 else x
    batch.non_numeric += 1
    return math.nan


def _from_columns(doc: dict[str, Any]) -> EcBatch:
    _check_names(set(doc))
    times = doc.get("ts_ns", doc.get("time"))
    if not isinstance(times, list):
        raise EcBodyError("columns must be arrays")
    n = len(times)
    for k, v in doc.items():
        if not isinstance(v, list) or len(v) != n:
            raise EcBodyError(f"column {k} must be an array of {n} values (as the timestamps)")
    rows = [{k: doc[k][i] for k in doc} for i in range(n)]
    return _from_rows(rows)


def _from_rows(rows: list[Any]) -> EcBatch:
    names: set[str] = set()
    for r in rows:
        if isinstance(r, dict):
            names.update(k for k in r if k != "__bad_json__")
    batch = EcBatch(np.empty(0, np.int64), {})
    if not rows:
        raise EcBodyError("empty batch")
    _check_names(names)
    cols = [c for c in EC_COLUMNS if c in names]
    ts: list[int] = []
    values: dict[str, list[float]] = {c: [] for c in cols}
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "__bad_json__" in r:
            batch.reject(i, "not a JSON object")
            continue
        t = _time_ns(r.get("ts_ns", r.get("time")))
        if t is None:
            batch.reject(i, "missing or unreadable timestamp")
            continue
        ts.append(t)
        for c in cols:
            values[c].append(_number(r.get(c), batch))
    batch.ts_ns = np.array(ts, dtype=np.int64)
    batch.columns = {c: np.array(v, dtype=np.float32) for c, v in values.items()}
    return batch


def journal_ec_batch(journal: JournalBackend, site: str, batch: EcBatch) -> tuple[int, int] | None:
    """Appends the batch's rows as one record; (partition, offset) once durable."""
    if not len(batch):
        return None
    payload = encode_ec_raw(batch.ts_ns, batch.columns)
    return journal.append_routed([JournalEntry(site, EC_RAW, payload)])[0]
