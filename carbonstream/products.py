"""The Zarr products a configuration produces, as storage specs (shared by the flow and the API)."""

from __future__ import annotations

from carbonstream.config import Config
from storage.cems_products import cems_day, cems_hour, cems_minute
from storage.products import (
    ProductSpec,
    ec_flux,
    ec_raw,
    entities_day,
    entities_interval,
    entities_month,
    meters_interval,
)

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


def entity_specs(config: Config) -> dict[str, ProductSpec]:
    """entities/interval (on the meters grid), /day and /month (local days and months)."""
    p, r = config.products.meters_interval, config.rollups
    origin_ns = int(p.origin.timestamp()) * NS
    local_origin = origin_ns - r.offset_ns  # the origin's date, at local midnight
    specs = (
        entities_interval(origin_ns, p.resolution_s * NS, r.chunk_entities, p.chunk_time),
        entities_day(local_origin, r.chunk_entities),
        entities_month(local_origin, r.offset_ns, r.chunk_entities),
    )
    return {s.name: s for s in specs}


def cems_specs(config: Config) -> dict[str, ProductSpec]:
    """cems/minute, cems/hour, cems/day."""
    p = config.cems.products
    origin_ns = int(p.origin.timestamp()) * NS
    specs = (
        cems_minute(origin_ns, p.chunk_streams, p.minute_chunk_time),
        cems_hour(origin_ns, p.chunk_streams, p.hour_chunk_time),
        cems_day(origin_ns, p.chunk_streams, p.day_chunk_time),
    )
    return {s.name: s for s in specs}


def product_specs(config: Config) -> dict[str, ProductSpec]:
    """Every product of the configuration, by name."""
    specs = [
        meters_interval_spec(config),
        *entity_specs(config).values(),
        *ec_flux_specs(config).values(),
        *ec_raw_specs(config).values(),
        *cems_specs(config).values(),
    ]
    return {s.name: s for s in specs}


def ec_flux_specs(config: Config) -> dict[float, ProductSpec]:
    """averaging period (s) -> the ec/flux_<N>min product of the sites with that period."""
    from connectors.ec.fluxnet import VARIABLES

    e = config.ec
    origin_ns = int(e.origin.timestamp()) * NS
    periods = sorted({s.period_s for s in e.all_sites()})
    return {p: ec_flux(p, origin_ns, e.chunk_streams, e.chunk_time, VARIABLES) for p in periods}


def ec_raw_specs(config: Config) -> dict[float, ProductSpec]:
    """sampling rate (Hz) -> the ec/raw_<N>hz product of the sites archiving raw data."""
    e = config.ec
    if e.raw_origin is None:
        return {}
    origin_ns = int(e.raw_origin.timestamp()) * NS
    rates = sorted({s.sampling_hz for s in e.all_sites() if s.archive_raw})
    return {r: ec_raw(r, origin_ns) for r in rates}
