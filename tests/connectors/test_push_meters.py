"""Push ingest parsing and validation: each bad row is refused with its reason, good rows kept."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.push.meters import BodyError, journal_batch, parse_body, validate_rows
from storage.journal import Journal
from storage.records import decode_meter_readings

KNOWN = {"m-1", "m-2"}


def test_json_and_ndjson_parse_to_the_same_rows() -> None:
    rows = [{"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": 1.5}]
    assert parse_body(orjson.dumps(rows), "application/json") == rows
    assert (
        parse_body(
            b'{"meter":"m-1","ts":"2026-03-01T00:00:00Z","value":1.5}\n\n',
            "application/x-ndjson; charset=utf-8",
        )
        == rows
    )


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b'{"meter": "m-1"}', "application/json", "must be an array"),
        (b"a,b\n", "text/csv", "unsupported Content-Type"),
    ],
)
def test_unreadable_bodies(body: bytes, ctype: str, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse_body(body, ctype)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"meter": "m-9", "ts": "2026-03-01T00:00:00Z", "value": 1}, "unknown_meter"),
        ({"meter": "", "ts": "2026-03-01T00:00:00Z", "value": 1}, "bad_meter"),
        ({"meter": 5, "ts": "2026-03-01T00:00:00Z", "value": 1}, "bad_meter"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00", "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": "yesterday", "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": 1e15, "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": True, "value": 1}, "bad_timestamp"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": "12.5"}, "bad_value"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": -1}, "bad_value"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": None}, "bad_value"),
        ({"meter": "m-1", "ts": "2026-03-01T00:00:00Z", "value": 1, "x": 2}, "unknown_field"),
        ([1, 2, 3], "not_an_object"),
    ],
)
def test_each_bad_row_is_refused_with_its_reason_and_good_rows_kept(
    row: object, reason: str
) -> None:
    good = {"meter": "m-2", "ts": 1_772_323_200, "value": 10.0}
    batch = validate_rows([good, row, good], KNOWN)
    assert len(batch) == 2
    (rejected,) = batch.rejected
    assert (rejected.index, rejected.reason) == (1, reason)
    assert rejected.message


def test_timestamps_are_converted_exactly_to_utc_ns() -> None:
    batch = validate_rows(
        [
            {"meter": "m-1", "ts": "2026-03-01T08:00:00.123456+08:00", "value": 1},
            {"meter": "m-1", "ts": 1_772_323_200.5, "value": 2},
        ],
        KNOWN,
    )
    assert batch.ts_ns == [1_772_323_200_123_456_000, 1_772_323_200_500_000_000]


def test_a_bad_ndjson_line_costs_only_itself() -> None:
    body = (
        b'{"meter":"m-1","ts":1772323200,"value":1}\n{oops\n'
        b'{"meter":"m-1","ts":1772323260,"value":2}\n'
    )
    batch = validate_rows(parse_body(body, "application/x-ndjson"), KNOWN)
    assert len(batch) == 2 and [r.reason for r in batch.rejected] == ["bad_json"]


def test_valid_rows_are_journaled_by_partition(tmp_path: Path) -> None:
    journal = Journal(tmp_path, partitions=4)
    rows = [
        {"meter": m, "ts": 1_772_323_200 + k, "value": float(k)}
        for k in range(3)
        for m in ("m-1", "m-2")
    ]
    placed = journal_batch(journal, validate_rows(rows, KNOWN))
    assert len(placed) == len({journal.partition_for(m) for m in ("m-1", "m-2")})
    stored = []
    for p, off in placed:
        (rec,) = journal.reader(p).read(off, 1)
        stored += decode_meter_readings(rec.payload).to_dicts()
    assert sorted((r["meter"], r["ts_ns"], r["value"]) for r in stored) == sorted(
        (r["meter"], r["ts"] * 10**9, r["value"]) for r in rows
    )
