"""Journal record kinds and their payload schemas: the contract between connectors and the flow.

A connector that produces a kind encodes with the function here; the dataflow decodes with the
matching one. Adding a kind means adding its schema here and a branch in stream/dataflow.py.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

from storage.codec import PayloadError, decode_table, encode_table

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


EC_RAW = "ec_raw"
"""One tower's batch of raw high-frequency rows: `ts_ns` (int64, UTC epoch ns, start of each
sample) and float32 columns named as the EC kernel's inputs (u, v, w, ts [K], co2, h2o, ch4,
pressure_pa, air_t_k, diag_sonic, diag_gas, diag_ch4); u, v, w and ts are required. The journal
record's stream is the site id."""

EC_COLUMNS: tuple[str, ...] = (
    "u",
    "v",
    "w",
    "ts",
    "co2",
    "h2o",
    "ch4",
    "pressure_pa",
    "air_t_k",
    "diag_sonic",
    "diag_gas",
    "diag_ch4",
)
EC_REQUIRED: tuple[str, ...] = ("u", "v", "w", "ts")


def encode_ec_raw(
    ts_ns: npt.NDArray[np.int64], columns: Mapping[str, npt.NDArray[np.floating]]
) -> bytes:
    unknown = sorted(set(columns) - set(EC_COLUMNS))
    if unknown:
        raise ValueError(f"unknown EC column(s) {unknown}; columns are {list(EC_COLUMNS)}")
    data: dict[str, pl.Series] = {"ts_ns": pl.Series("ts_ns", ts_ns, pl.Int64())}
    for name in EC_COLUMNS:
        if name in columns:
            data[name] = pl.Series(name, np.asarray(columns[name], dtype=np.float32), pl.Float32())
    return encode_table(pl.DataFrame(data))


def decode_ec_raw(
    payload: bytes,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float32]]]:
    """(ts_ns, columns); raises PayloadError when required columns or types are wrong.

    This runs for every record of every tower (the flow's largest per-record cost at thousands
    of towers): a payload as `encode_ec_raw` writes it (Int64 ts_ns, Float32 columns) is read
    without any cast, since a polars select costs ~10x the rest of the decode of a 1-s record;
    other numeric types are cast in one select."""
    try:
        full = pl.read_ipc_stream(io.BytesIO(payload))
    except Exception as exc:  # polars raises several exception types for corrupt input
        raise PayloadError(f"payload is not an Arrow IPC stream: {exc}") from exc
    series = {s.name: s for s in full.get_columns()}
    missing = [c for c in ("ts_ns", *EC_REQUIRED) if c not in series]
    if missing:
        raise PayloadError(f"payload lacks column(s) {missing}; has {full.columns}")
    present = [c for c in EC_COLUMNS if c in series]
    as_written = series["ts_ns"].dtype == pl.Int64 and all(
        series[c].dtype == pl.Float32 for c in present
    )
    if not as_written:
        cast = _cast_ec_columns(full, present)
        series = {s.name: s for s in cast.get_columns()}
    if series["ts_ns"].null_count():
        raise PayloadError("ts_ns has missing values")
    ts = series["ts_ns"].to_numpy()
    # Float nulls become NaN in to_numpy.
    out = {c: series[c].to_numpy().astype(np.float32, copy=False) for c in present}
    return ts, out


def _cast_ec_columns(full: pl.DataFrame, present: list[str]) -> pl.DataFrame:
    try:
        return full.select(
            pl.col("ts_ns").cast(pl.Int64, strict=True),
            *(pl.col(c).cast(pl.Float32, strict=True).fill_null(float("nan")) for c in present),
        )
    except Exception as exc:
        raise PayloadError(f"EC columns must be numeric (ts_ns an integer): {exc}") from exc


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
