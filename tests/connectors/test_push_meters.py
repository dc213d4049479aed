"""Push ingest parsing and validation, through every body format: each bad row is refused with
its reason and index, the good rows next to it are kept."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from connectors.push.meters import (
    MAX_LISTED,
    BodyError,
    journal_batch,
    parse_batch,
)
from storage.journal import Journal
from storage.records import decode_meter_readings

REGISTERED = {"m-1", "m-2"}


def KNOWN(ids: object) -> set[str]:
    return REGISTERED


GOOD = {"meter": "m-2", "ts": "2026-03-01T00:00:00Z", "value": 10.0}


def as_json(rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    return orjson.dumps(rows), "application/json"


def as_ndjson(rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    return b"\n".join(orjson.dumps(r) for r in rows), "application/x-ndjson"


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            k: [None if r.get(k) is None else str(r.get(k)) for r in rows]
            for k in ("meter", "ts", "value")
        }
    )


def as_csv(rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    buf = io.BytesIO()
    _frame(rows).write_csv(buf)
    return buf.getvalue(), "text/csv"


def as_arrow(rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    buf = io.BytesIO()
    _frame(rows).write_ipc_stream(buf)
    return buf.getvalue(), "application/vnd.apache.arrow.stream"


def as_parquet(rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    buf = io.BytesIO()
    _frame(rows).write_parquet(buf)
    return buf.getvalue(), "application/vnd.apache.parquet"


FORMATS: list[Callable[[list[dict[str, Any]]], tuple[bytes, str]]] = [
    as_json,
    as_ndjson,
    as_csv,
    as_arrow,
    as_parquet,
]


@pytest.fixture(params=FORMATS, ids=lambda f: f.__name__)
def encode(request: pytest.FixtureRequest) -> Callable[[list[dict[str, Any]]], tuple[bytes, str]]:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"meter": "m-9", "ts": "2026-03-01T00:00:00Z", "value": 1}, "unknown_meter"),
        ({"meter": "", "ts": "2026-03-01T00:00:00Z", "value": 1}, "bad_meter"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00", "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": "yesterday", "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": -1}, "bad_value"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": None}, "bad_value"),
    ],
)
def test_each_bad_row_is_refused_and_good_rows_kept_in_every_format(
    encode: Callable[[list[dict[str, Any]]], tuple[bytes, str]], row: dict[str, Any], reason: str
) -> None:
    body, ctype = encode([GOOD, row, GOOD])
    batch = parse_batch(body, ctype, KNOWN, max_rows=100)
    assert len(batch) == 2
    (rejected,) = batch.rejected
    assert (rejected.index, rejected.reason) == (1, reason)
    assert rejected.message
    assert batch.rejected_by_reason == {reason: 1}


def test_timestamps_are_exact_utc_ns_in_every_format(
    encode: Callable[[list[dict[str, Any]]], tuple[bytes, str]],
) -> None:
    rows = [
        {"meter": "m-1", "ts": "2026-03-01T08:00:00.123456+08:00", "value": 1.0},
        {"meter": "m-1", "ts": "2026-03-01T00:00:01Z", "value": 2.0},
    ]
    batch = parse_batch(*encode(rows), KNOWN, max_rows=100)
    assert batch.valid["ts_ns"].to_list() == [1_772_323_200_123_456_000, 1_772_323_201_000_000_000]
    assert batch.valid["value"].to_list() == [1.0, 2.0]


def test_epoch_seconds_as_text_in_csv() -> None:
    body = b"meter,ts,value\nm-1,1772323200.5,2\nm-1,1e15,3\nm-1,12abc,4\n"
    batch = parse_batch(body, "text/csv", KNOWN, 10)
    assert batch.valid["ts_ns"].to_list() == [1_772_323_200_500_000_000]
    assert [r.reason for r in batch.rejected] == ["bad_timestamp", "bad_timestamp"]


def test_numeric_epoch_seconds_in_json_and_columnar_bodies() -> None:
    batch = parse_batch(*as_json([{"meter": "m-1", "ts": 1_772_323_200.5, "value": 2}]), KNOWN, 10)
    assert batch.valid["ts_ns"].to_list() == [1_772_323_200_500_000_000]
    buf = io.BytesIO()
    pl.DataFrame(
        {"meter": ["m-1", "m-2"], "ts": [1_772_323_200.5, 1e15], "value": [2.0, 1.0]}
    ).write_parquet(buf)
    batch = parse_batch(buf.getvalue(), "application/vnd.apache.parquet", KNOWN, 10)
    assert batch.valid["ts_ns"].to_list() == [1_772_323_200_500_000_000]
    assert [r.reason for r in batch.rejected] == ["bad_timestamp"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"meter": 5, "ts": "2026-03-01T00:00:00Z", "value": 1}, "bad_meter"),
        ({"meter": "m-1", "ts": True, "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": "12.5"}, "bad_value"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": 1, "x": 2}, "unknown_field"),
        ([1, 2, 3], "not_an_object"),
    ],
)
def test_json_types_are_strict(row: object, reason: str) -> None:
    batch = parse_batch(orjson.dumps([GOOD, row]), "application/json", KNOWN, 10)
    assert len(batch) == 1 and [(r.index, r.reason) for r in batch.rejected] == [(1, reason)]


@pytest.mark.parametrize(
    ("body", "ctype", "status", "message"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"meter": "m-1"}', "application/json", 400, "must be an array"),
        (b"a;b", "text/plain", 415, "unsupported Content-Type"),
        (b"meter,ts\nm-1,1\n", "text/csv", 422, "missing ['value']"),
        (b"meter,ts,value,extra\n", "text/csv", 422, "unknown ['extra']"),
        (b"\x00\x01garbage", "application/vnd.apache.parquet", 400, "not valid parquet"),
    ],
)
def test_unusable_bodies(body: bytes, ctype: str, status: int, message: str) -> None:
    with pytest.raises(BodyError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        parse_batch(body, ctype, KNOWN, 10)
    assert err.value.status == status


def test_row_limit_is_enforced_before_validation() -> None:
    rows = [GOOD] * 11
    for enc in (as_json, as_csv):
        with pytest.raises(BodyError, match="11 rows exceed the limit of 10") as err:
            parse_batch(*enc(rows), KNOWN, max_rows=10)
        assert err.value.status == 413


def test_a_bad_ndjson_line_costs_only_itself() -> None:
    body = (
        b'{"meter":"m-1","ts":1772323200,"value":1}\n{oops\n'
        b'{"meter":"m-1","ts":1772323260,"value":2}\n'
    )
    batch = parse_batch(body, "application/x-ndjson", KNOWN, 10)
    assert len(batch) == 2 and [r.reason for r in batch.rejected] == ["bad_json"]


def test_rejections_listed_are_bounded_but_counted() -> None:
    rows = [{"meter": "m-9", "ts": "2026-03-01T00:00:00Z", "value": 1}] * (MAX_LISTED + 50)
    for enc in (as_json, as_csv):
        batch = parse_batch(*enc(rows), KNOWN, max_rows=10**6)
        assert len(batch.rejected) == MAX_LISTED
        assert batch.rejected_by_reason == {"unknown_meter": MAX_LISTED + 50}


def test_valid_rows_are_journaled_by_partition(tmp_path: Path) -> None:
    journal = Journal(tmp_path, partitions=4)
    rows = [
        {"meter": m, "ts": 1_772_323_200 + k, "value": float(k)}
        for k in range(3)
        for m in ("m-1", "m-2")
    ]
    placed = journal_batch(journal, parse_batch(*as_json(rows), KNOWN, 100))
    assert len(placed) == len({journal.partition_for(m) for m in ("m-1", "m-2")})
    stored = []
    for p, off in placed:
        (rec,) = journal.reader(p).read(off, 1)
        stored += decode_meter_readings(rec.payload).to_dicts()
    assert sorted((r["meter"], r["ts_ns"], r["value"]) for r in stored) == sorted(
        (r["meter"], r["ts"] * 10**9, r["value"]) for r in rows
    )
