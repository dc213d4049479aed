"""The Zarr products a configuration produces, as storage specs (shared by the flow and the API)."""

from __future__ import annotations

from carbonstream.config import Config
from storage.products import ProductSpec, meters_interval

NS = 1_000_000_000


def to_ns(seconds: float) -> int:
    return round(seconds * NS)


def meters_interval_spec(config: Config) -> ProductSpec:
    p = config.products.meters_interval
    return meters_interval(
        origin_ns=int(p.origin.timestamp()) * NS,
        step_ns=p.resolution_s * NS,
        chunk_streams=p.chunk_streams,
        chunk_time=p.chunk_time,
    )


def product_specs(config: Config) -> dict[str, ProductSpec]:
    specs = [meters_interval_spec(config)]
    return {s.name: s for s in specs}
