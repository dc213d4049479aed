"""Fuzzing `POST /v1/ingest/meters` through the real FastAPI app, in process, on a temporary
data directory.

Bodies in every supported format (JSON, NDJSON, CSV, Arrow IPC, Parquet) mix good readings with
bad ones of every kind (unknown or empty meter, timestamps without offset, impossible or beyond
int64 nanoseconds, epoch seconds out of range, negative or non-numeric values) and rows of
arbitrary content. Whatever the mix: the answer is never 5xx; every good row is accepted and is
in the journal at the offsets the answer gives; every bad row is listed with its index, its
reason and a message saying what was wrong. Arbitrary bodies get a 4xx problem, never a 5xx.
"""

from __future__ import annotations

import io
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import polars as pl
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import load_config
from storage.journal import Journal
from storage.records import decode_meter_readings
from storage.tokens import TokenStore
from tests.fuzz.strategies import FUZZ, protocol_bytes

METERS = ("fz-1", "fz-2", "fz-3")
CONFIG = """
[storage]
data_dir = "{data_dir}"
[journal]
partitions = 2
durability = "os"
[connectors.meter_simulator]
enabled = false
""" + "".join(f'[[streams.meters]]\nid = "{m}"\n' for m in METERS)
FORMATS = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


@dataclass
class Api:
    client: TestClient
    journal: Journal
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("push")
    path = tmp / "carbonstream.toml"
    path.write_text(CONFIG.replace("{data_dir}", str(tmp / "data")))
    config = load_config(path, environ={})
    prepare_data_dir(config)
    layout = config.storage.layout
    tokens = TokenStore(layout.metadata_db)
    token = tokens.create("fuzz", ["ingest"])
    tokens.close()
    journal = Journal(layout.journal_dir, config.journal.partitions, config.journal.durability)
    with TestClient(create_app(config)) as client:
        yield Api(client, journal, {"Authorization": f"Bearer {token}"})


# -- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A reading as sent, and what the service must make of it: `reason` None for a good row
    (then `ts_ns` is its instant), a rejection reason for a bad one, "?" when it is arbitrary."""

    cells: dict[str, Any]
    reason: str | None
    ts_ns: int = 0


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
instants = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def ns_of(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1) * 1000


@st.composite
def good_rows(draw: st.DrawFn) -> Row:
    t = draw(instants)
    if draw(st.booleans()):
        if draw(st.booleans()):
            t = t.replace(microsecond=0)
        local = t.astimezone(draw(offsets))
        ts: Any = local.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
        if ts.endswith("+00:00") and draw(st.booleans()):
            ts = ts[:-6] + "Z"
    else:
        ts = ns_of(t) // 1_000_000_000  # whole epoch seconds
        t = t.replace(microsecond=0)
    value = draw(st.floats(0, 1e12, allow_nan=False) | st.integers(0, 10**9))
    return Row({"meter": draw(st.sampled_from(METERS)), "ts": ts, "value": value}, None, ns_of(t))


GOOD_TS = "2026-03-01T00:00:00Z"
BAD_TIMESTAMPS = [
    "2026-03-01T00:00:00",  # no offset
    "yesterday",
    "2026-02-30T00:00:00Z",
    "2026-03-01T24:00:00Z",
    "2026-03-01T00:00:00+15:00",
    "9999-12-31T23:59:59Z",  # beyond int64 nanoseconds
    "0001-01-01T00:00:00+01:00",
    "2262-04-12T00:00:00Z",
    "",
    5e10,  # epoch seconds beyond int64 nanoseconds
    -1e11,
    1e15,
]


@st.composite
def bad_rows(draw: st.DrawFn) -> Row:
    """One thing wrong per row, wrong in every format."""
    meter = draw(st.sampled_from(METERS))
    kind = draw(st.sampled_from(["unknown_meter", "bad_meter", "bad_timestamp", "bad_value"]))
    if kind == "unknown_meter":
        return Row({"meter": "not-registered", "ts": GOOD_TS, "value": 1.0}, kind)
    if kind == "bad_meter":
        return Row({"meter": draw(st.sampled_from(["", None])), "ts": GOOD_TS, "value": 1}, kind)
    if kind == "bad_timestamp":
        ts = draw(st.sampled_from(BAD_TIMESTAMPS))
        return Row({"meter": meter, "ts": ts, "value": 1.0}, kind)
    value = draw(st.sampled_from([-1.0, -0.5, None, "abc", "nan", "inf", "-inf"]))
    return Row({"meter": meter, "ts": GOOD_TS, "value": value}, kind)


cell = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["fz-1", GOOD_TS, "1e400", "-0", "１２", "NaN"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
)


@st.composite
def arbitrary_rows(draw: st.DrawFn, rowwise: bool) -> Row:
    """Cells of any kind (for JSON also nested values, missing and extra keys)."""
    if rowwise:
        value: Any = st.recursive(cell, lambda c: st.lists(c, max_size=3), max_leaves=5)
        keys = st.sampled_from(["meter", "ts", "value", "extra"])
        return Row(draw(st.dictionaries(keys, value, max_size=4)), "?")
    return Row({k: draw(cell) for k in ("meter", "ts", "value")}, "?")


# -- bodies -----------------------------------------------------------------------------------


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def encode(fmt: str, rows: list[Row]) -> bytes:
    cells = [r.cells for r in rows]
    if fmt == "json":
        return orjson.dumps(cells, option=orjson.OPT_SERIALIZE_NUMPY)
    if fmt == "ndjson":
        return b"\n".join(orjson.dumps(c) for c in cells)
    frame = pl.DataFrame(
        {k: [_text(c.get(k)) for c in cells] for k in ("meter", "ts", "value")},
        schema={"meter": pl.String, "ts": pl.String, "value": pl.String},
    )
    buf = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buf)
    elif fmt == "arrow":
        frame.write_ipc_stream(buf)
    else:
        frame.write_parquet(buf)
    return buf.getvalue()


def post(api: Api, body: bytes, content_type: str) -> Any:
    r = api.client.post(
        "/v1/ingest/meters", content=body, headers={**api.headers, "content-type": content_type}
    )
    assert r.status_code < 500, r.text
    return r


def journalled(api: Api, placed: list[dict[str, int]]) -> list[tuple[str, int, float]]:
    out = []
    for p in placed:
        (rec,) = api.journal.reader(p["partition"]).read(p["offset"], 1)
        df = decode_meter_readings(rec.payload)
        out += list(zip(df["meter"], df["ts_ns"], df["value"], strict=True))
    return out


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[Row]]:
    fmt = draw(st.sampled_from(list(FORMATS)))
    rowwise = fmt in ("json", "ndjson")
    kinds = st.one_of(good_rows(), bad_rows(), arbitrary_rows(rowwise))
    rows = draw(st.lists(kinds, min_size=1, max_size=25))
    return fmt, rows


@FUZZ
@given(batch=batches())
def test_good_rows_are_journalled_and_bad_rows_reported(
    api: Api, batch: tuple[str, list[Row]]
) -> None:
    fmt, rows = batch
    r = post(api, encode(fmt, rows), FORMATS[fmt])
    body = r.json()
    good = [i for i, row in enumerate(rows) if row.reason is None]
    assert r.status_code in (202, 422), body
    assert body["accepted"] + body["rejected_total"] == len(rows), body
    assert body["accepted"] >= len(good)
    rejected = {x["index"]: x for x in body["rejected"]}
    assert sum(body["rejected_by_reason"].values()) == body["rejected_total"] == len(rejected)
    for i, row in enumerate(rows):
        if row.reason is None:
            assert i not in rejected, (row, rejected.get(i))
        elif row.reason != "?":
            assert i in rejected, f"bad row {i} {row} not reported"
            assert rejected[i]["reason"] == row.reason, (row, rejected[i])
            assert rejected[i]["message"]
    if r.status_code == 422:
        assert not good
        return
    stored = journalled(api, body["journal"])
    assert len(stored) == body["accepted"]
    for i in good:
        row = rows[i]
        want = (row.cells["meter"], row.ts_ns, float(row.cells["value"]))
        assert want in stored, (row, stored)


@FUZZ
@given(
    fmt=st.sampled_from(list(FORMATS)),
    body=protocol_bytes(2000) | st.binary(max_size=2000),
)
def test_arbitrary_bodies_get_a_problem_not_a_server_error(api: Api, fmt: str, body: bytes) -> None:
    r = post(api, body, FORMATS[fmt])
    assert r.status_code in (202, 400, 413, 415, 422), r.text
    if r.status_code != 202:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]


columnar_values = st.one_of(
    st.lists(st.sampled_from(METERS), min_size=3, max_size=3),
    st.lists(st.integers(-(2**31), 2**31), min_size=3, max_size=3),
    st.lists(st.floats(), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.none(), min_size=3, max_size=3),
    st.lists(st.text(string.printable, max_size=8), min_size=3, max_size=3),
    st.lists(st.lists(st.integers(0, 9), max_size=2), min_size=3, max_size=3),
    st.lists(st.datetimes(), min_size=3, max_size=3),
    st.lists(st.datetimes(timezones=st.just(UTC)), min_size=3, max_size=3),
    st.lists(st.binary(max_size=4), min_size=3, max_size=3),
    st.lists(st.fixed_dictionaries({"a": st.integers(0, 9)}), min_size=3, max_size=3),
)


@FUZZ
@given(
    fmt=st.sampled_from(["arrow", "parquet"]),
    meter=columnar_values,
    ts=columnar_values,
    value=columnar_values,
)
def test_columns_of_any_type_are_read_or_refused(
    api: Api, fmt: str, meter: list[Any], ts: list[Any], value: list[Any]
) -> None:
    """Arrow and Parquet carry types: a column of lists, structs, booleans, datetimes or nulls
    is refused row by row or as a whole with a 4xx, never a server error."""
    frame = pl.DataFrame({"meter": meter, "ts": ts, "value": value}, strict=False)
    buf = io.BytesIO()
    if fmt == "arrow":
        frame.write_ipc_stream(buf)
    else:
        frame.write_parquet(buf)
    r = post(api, buf.getvalue(), FORMATS[fmt])
    assert r.status_code in (202, 400, 422), r.text
    if r.status_code == 202:
        assert r.json()["accepted"] + r.json()["rejected_total"] == 3


def test_out_of_range_times_are_refused_in_every_format(api: Api) -> None:
    """Found by the batch property: a timestamp beyond int64 nanoseconds (year 9999, epoch
    seconds 5e10) made a 500 in JSON bodies, and in CSV ones was accepted as an instant wrapped
    to 1677 (ISO: a wrapped instant of the Rust parser); JSON alone accepted a +15:00 offset.
    Each is now a `bad_timestamp` row, and the good row beside it is journalled."""
    rows = [
        Row({"meter": "fz-1", "ts": GOOD_TS, "value": 1.0}, None, 1_772_323_200 * 10**9),
        Row({"meter": "fz-1", "ts": "9999-12-31T23:59:59Z", "value": 1.0}, "bad_timestamp"),
        Row({"meter": "fz-1", "ts": 5e10, "value": 1.0}, "bad_timestamp"),
        Row({"meter": "fz-1", "ts": "0001-01-01T00:00:00+01:00", "value": 1.0}, "bad_timestamp"),
        Row({"meter": "fz-1", "ts": "2026-03-01T00:00:00+15:00", "value": 1.0}, "bad_timestamp"),
    ]
    for fmt in FORMATS:
        r = post(api, encode(fmt, rows), FORMATS[fmt])
        body = r.json()
        assert r.status_code == 202, (fmt, body)
        assert body["accepted"] == 1
        assert [(x["index"], x["reason"]) for x in body["rejected"]] == [
            (1, "bad_timestamp"),
            (2, "bad_timestamp"),
            (3, "bad_timestamp"),
            (4, "bad_timestamp"),
        ], fmt
        assert journalled(api, body["journal"]) == [("fz-1", 1_772_323_200 * 10**9, 1.0)]


def test_typed_columns_beyond_int64_or_unusable_are_refused(api: Api) -> None:
    """Found by the typed-column property: epoch seconds 5e10 in a float Parquet column failed
    the cast to int64 nanoseconds (500); a list or struct column failed its cast (500)."""
    buf = io.BytesIO()
    pl.DataFrame(
        {"meter": ["fz-1", "fz-2"], "ts": [5e10, 1.7e9], "value": [1.0, 2.0]}
    ).write_parquet(buf)
    r = post(api, buf.getvalue(), FORMATS["parquet"])
    assert r.status_code == 202 and r.json()["accepted"] == 1
    assert [(x["index"], x["reason"]) for x in r.json()["rejected"]] == [(0, "bad_timestamp")]
    for value in ([[1.0], [2.0]], [{"a": 1}, {"a": 2}], [True, False]):
        buf = io.BytesIO()
        pl.DataFrame(
            {"meter": ["fz-1", "fz-2"], "ts": [1.7e9, 1.7e9], "value": value}
        ).write_ipc_stream(buf)
        r = post(api, buf.getvalue(), FORMATS["arrow"])
        assert r.status_code == 422 and "value (" in r.json()["detail"], r.text
