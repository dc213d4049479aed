"""What each Zarr product group holds: its grid, chunking, variables and CF attributes.

A product is a group of 2-D (stream, time) arrays, one per variable, on a regular time grid from a
fixed origin (periods labelled by their start), plus 1-D coordinates: `time` (int64 ns, CF-encoded),
`stream` (ids) and per-stream string attributes (e.g. `unit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

METERS_AXIS = "meters"
"""Stream registry axis of smart meters (the rows of every meters/* product)."""


@dataclass(frozen=True)
class Variable:
    name: str
    dtype: str
    attrs: dict[str, Any]

    @property
    def fill_value(self) -> Any:
        return np.nan if np.dtype(self.dtype).kind == "f" else 0


@dataclass(frozen=True)
class ProductSpec:
    name: str
    """Group path inside the store, e.g. 'meters/interval'."""
    axis: str
    """Stream registry axis giving the rows, e.g. 'meters'."""
    origin_ns: int
    step_ns: int
    chunk_streams: int
    chunk_time: int
    variables: tuple[Variable, ...]
    stream_attrs: tuple[str, ...] = ()
    """Registry attributes stored as per-stream string coordinates (e.g. 'unit')."""
    attrs: dict[str, Any] = field(default_factory=dict)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"product {self.name} has no variable {name!r}")

    def slot_of(self, t_ns: int) -> int:
        return (t_ns - self.origin_ns) // self.step_ns

    def slot_start_ns(self, slot: int) -> int:
        return self.origin_ns + slot * self.step_ns


def meters_interval(
    origin_ns: int, step_ns: int, chunk_streams: int, chunk_time: int
) -> ProductSpec:
    """Interval consumption and emissions of every meter (emission-factor method)."""
    return ProductSpec(
        name="meters/interval",
        axis=METERS_AXIS,
        origin_ns=origin_ns,
        step_ns=step_ns,
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=(
            Variable(
                "consumption",
                "float64",
                {
                    "long_name": "register increase attributed to the period",
                    # Meters of several commodities share the array; each row's unit is the
                    # `unit` coordinate (kWh, Nm3, m3, GJ).
                    "units_coordinate": "unit",
                    "cell_methods": "time: sum",
                },
            ),
            Variable(
                "co2",
                "float64",
                {
                    "long_name": "CO2 emissions of the period (emission-factor method)",
                    "units": "kg",
                    "cell_methods": "time: sum",
                },
            ),
            Variable(
                "coverage",
                "float32",
                {
                    "long_name": "fraction of the period covered by integrated readings",
                    "units": "1",
                    "valid_range": [0.0, 1.0],
                },
            ),
            Variable(
                "reading",
                "float64",
                {
                    "long_name": "last cumulative register reading within the period",
                    "units_coordinate": "unit",
                    "cell_methods": "time: point",
                },
            ),
        ),
        stream_attrs=("commodity", "unit"),
        attrs={
            "title": "Smart-meter interval consumption and CO2 emissions",
            "method": "counter differences, linear in time between readings; x emission factor",
        },
    )
