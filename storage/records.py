"""Journal record kinds and their payload schemas: the contract between connectors and the flow.

A connector that produces a kind encodes with the function here; the dataflow decodes with the
matching one. Adding a kind means adding its schema here and a branch in stream/dataflow.py.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from storage.codec import decode_table, encode_table

METER_READINGS = "meter_readings"
"""Cumulative register readings: meter id, timestamp (UTC epoch ns), register value."""

METER_READINGS_SCHEMA: dict[str, pl.DataType] = {
    "meter": pl.String(),
    "ts_ns": pl.Int64(),
    "value": pl.Float64(),
}


def encode_meter_readings(
    meter: list[str] | pl.Series,
    ts_ns: npt.NDArray[np.int64] | pl.Series,
    value: npt.NDArray[np.float64] | pl.Series,
) -> bytes:
    return encode_table(
        pl.DataFrame({"meter": meter, "ts_ns": ts_ns, "value": value}, schema=METER_READINGS_SCHEMA)
    )


def decode_meter_readings(payload: bytes) -> pl.DataFrame:
    return decode_table(payload, METER_READINGS_SCHEMA)
