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


HJ212_PACKETS = "hj212_packets"
"""HJ 212 packets accepted by the server (CRC, length, MN and password checked), each kept as
the frame exactly as received (the regulator's original) with its receive time and peer."""

HJ212_PACKETS_SCHEMA: dict[str, pl.DataType] = {
    "site": pl.String(),
    "mn": pl.String(),
    "cn": pl.UInt16(),
    "recv_ns": pl.Int64(),
    "peer": pl.String(),
    "frame": pl.Binary(),
}


def encode_hj212_packets(
    site: list[str],
    mn: list[str],
    cn: list[int],
    recv_ns: list[int],
    peer: list[str],
    frame: list[bytes],
) -> bytes:
    return encode_table(
        pl.DataFrame(
            {"site": site, "mn": mn, "cn": cn, "recv_ns": recv_ns, "peer": peer, "frame": frame},
            schema=HJ212_PACKETS_SCHEMA,
        )
    )


def decode_hj212_packets(payload: bytes) -> pl.DataFrame:
    return decode_table(payload, HJ212_PACKETS_SCHEMA)
