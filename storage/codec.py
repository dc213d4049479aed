"""Batch payloads of the journal: columnar tables in the Arrow IPC stream format.

Arrow IPC is an existing, self-describing columnar format that any consumer (including a Kafka
consumer in another language) can read, and polars reads it back into numpy without a per-row
Python object. Each journal kind declares its schema next to the code that produces it.
"""

from __future__ import annotations

import io

import polars as pl


class PayloadError(ValueError):
    """A journal payload that cannot be decoded or lacks required columns."""


def encode_table(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc_stream(buf, compression="uncompressed")
    return buf.getvalue()


def decode_table(payload: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Decodes a payload; checks it has `schema`'s columns with those types (cast if lossless)."""
    try:
        frame = pl.read_ipc_stream(io.BytesIO(payload))
    except Exception as exc:  # polars raises several exception types for corrupt input
        raise PayloadError(f"payload is not an Arrow IPC stream: {exc}") from exc
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise PayloadError(f"payload lacks column(s) {missing}; has {frame.columns}")
    try:
        return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
    except Exception as exc:
        raise PayloadError(f"payload column types do not match {schema}: {exc}") from exc
