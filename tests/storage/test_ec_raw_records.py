"""`ec_raw` payloads: the layout the service writes is read without casts; other numeric layouts
(a client's own Arrow writer) are cast; what cannot be read is refused with the reason."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from storage.codec import PayloadError, encode_table
from storage.records import decode_ec_raw, encode_ec_raw


def test_as_written_round_trips_with_nulls_as_nan() -> None:
    ts = np.arange(4, dtype=np.int64) * 50_000_000
    cols = {c: np.array([1, 2, np.nan, 4], np.float32) for c in ("u", "v", "w", "ts", "co2")}
    got_ts, got = decode_ec_raw(encode_ec_raw(ts, cols))
    np.testing.assert_array_equal(got_ts, ts)
    assert set(got) == set(cols)
    for c, v in cols.items():
        assert got[c].dtype == np.float32
        np.testing.assert_array_equal(got[c], v)


def test_other_numeric_types_are_cast() -> None:
    frame = pl.DataFrame(
        {
            "ts_ns": pl.Series([1, 2], dtype=pl.Int32),
            "u": pl.Series([1.5, None], dtype=pl.Float64),
            "v": [1, 2],
            "w": [0.25, 0.5],
            "ts": pl.Series([290.0, 291.0], dtype=pl.Float64),
        }
    )
    ts, cols = decode_ec_raw(encode_table(frame))
    assert ts.dtype == np.int64 and ts.tolist() == [1, 2]
    assert all(v.dtype == np.float32 for v in cols.values())
    np.testing.assert_array_equal(cols["u"], np.array([1.5, np.nan], np.float32))
    np.testing.assert_array_equal(cols["v"], np.array([1, 2], np.float32))


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (pl.DataFrame({"ts_ns": [1], "u": [1.0], "v": [1.0]}), "lacks column(s) ['w', 'ts']"),
        (
            pl.DataFrame(
                {
                    "ts_ns": [1, None],
                    "u": [1.0] * 2,
                    "v": [1.0] * 2,
                    "w": [1.0] * 2,
                    "ts": [1.0] * 2,
                }
            ),
            "ts_ns has missing values",
        ),
        (
            pl.DataFrame({"ts_ns": [1], "u": ["a"], "v": [1.0], "w": [1.0], "ts": [1.0]}),
            "must be numeric",
        ),
    ],
)
def test_unreadable_payloads_name_the_reason(frame: pl.DataFrame, reason: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(reason)):
        decode_ec_raw(encode_table(frame))
    with pytest.raises(PayloadError, match="not an Arrow IPC stream"):
        decode_ec_raw(b"not arrow")
