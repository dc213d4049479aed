"""What each Zarr product group holds: its grid, chunking, variables and CF attributes.

A product is a group of 2-D (stream, time) arrays, one per variable, on a time grid from a fixed
origin (periods labelled by their start), plus 1-D coordinates: `time` (int64 ns, CF-encoded),
`stream` (ids) and per-stream string attributes (e.g. `unit`).

Grids are regular (a fixed step: minutes, days) or calendar months. Days and months of a roll-up
may follow local time (e.g. UTC+8 for a Chinese city): the grid then starts at a local midnight,
and the period labels are still UTC instants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from storage.commodities import COMMODITIES

METERS_AXIS = "meters"
"""Stream registry axis of smart meters (the rows of every meters/* product)."""
ENTITIES_AXIS = "entities"
"""Stream registry axis of entities (city, district, park, enterprise, ...)."""
CEMS_AXIS = "cems"
"""Stream registry axis of CEMS stack variables ('<site>/<HJ 212 code>': flow, channels)."""


@dataclass(frozen=True)
class Variable:
    name: str
    dtype: str
    attrs: dict[str, Any]
    fill: Any = None
    """Value of cells never written; None: NaN for floats, 0 for integers."""

    @property
    def fill_value(self) -> Any:
        if self.fill is not None:
            return self.fill
        return np.nan if np.dtype(self.dtype).kind == "f" else 0

    def holds(self, values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Where `values` (read from this variable) hold a value, not the fill of cells never
        written."""
        fill = self.fill_value
        held: npt.NDArray[np.bool_] = (
            ~np.isnan(values) if isinstance(fill, float) and np.isnan(fill) else values != fill
        )
        return held


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
    calendar: Literal["regular", "month"] = "regular"
    """'month': periods are calendar months (step_ns unused) starting at origin_ns."""
    offset_ns: int = 0
    """UTC offset of the local time whose month boundaries a 'month' grid follows."""
    written_last: str | None = None
    """The variable a flush writes after all others: the one readers test for a cell's presence.
    Variables are separate arrays written one after the other, so a reader during a flush could
    otherwise see a new cell's presence with some of its values still unwritten."""

    def write_phases(self) -> tuple[list[str], list[str]]:
        """(every other variable, the presence variable): the order a flush writes a chunk in.
        Readers read the phases in reverse, so a flush that overtakes them never shows a cell
        present without its values."""
        return (
            [v.name for v in self.variables if v.name != self.written_last],
            [v.name for v in self.variables if v.name == self.written_last],
        )

    def presence_variables(self) -> list[Variable]:
        """The variables whose values mark a cell present: the one written last when the
        product has one (read first, it never shows a cell whose other values are not written
        yet), else any."""
        last = [v for v in self.variables if v.name == self.written_last]
        return last or list(self.variables)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"product {self.name} has no variable {name!r}")

    def _origin_month(self) -> np.datetime64:
        month: np.datetime64 = np.datetime64(int(self.origin_ns + self.offset_ns), "ns").astype(
            "datetime64[M]"
        )
        return month

    def slots_of(self, t_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Index of the period containing each time."""
        if self.calendar == "regular":
            return (t_ns - self.origin_ns) // self.step_ns
        local = (t_ns + self.offset_ns).astype("datetime64[ns]").astype("datetime64[M]")
        return (local - self._origin_month()).astype(np.int64)

    def slot_starts(self, first: int, stop: int) -> npt.NDArray[np.int64]:
        """Start (UTC ns) of periods first..stop-1."""
        k = np.arange(first, stop, dtype=np.int64)
        if self.calendar == "regular":
            return self.origin_ns + self.step_ns * k
        months = self._origin_month() + k.astype("timedelta64[M]")
        return months.astype("datetime64[ns]").astype(np.int64) - self.offset_ns

    def slot_of(self, t_ns: int) -> int:
        return int(self.slots_of(np.array([t_ns], dtype=np.int64))[0])

    def slot_start_ns(self, slot: int) -> int:
        return int(self.slot_starts(slot, slot + 1)[0])


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
            Variable(
                "factor_version",
                "int16",
                {
                    "long_name": "version of the emission-factor table co2 was computed with",
                    "units": "1",
                },
            ),
        ),
        stream_attrs=("commodity", "unit"),
        # Every cell the integrator emits has a coverage (0 for a baseline reading alone).
        written_last="coverage",
        attrs={
            "title": "Smart-meter interval consumption and CO2 emissions",
            "method": "counter differences, linear in time between readings; x emission factor",
        },
    )


def entity_variables(with_reporting: bool) -> tuple[Variable, ...]:
    """Roll-up variables: CO2 by scope, consumption per commodity, completeness."""
    co2 = (
        Variable("co2", "float64", {"long_name": "CO2 emissions, scopes 1 and 2", "units": "kg"}),
        Variable("co2_scope1", "float64", {"long_name": "CO2 emissions, scope 1", "units": "kg"}),
        Variable("co2_scope2", "float64", {"long_name": "CO2 emissions, scope 2", "units": "kg"}),
    )
    consumption = tuple(
        Variable(c.name, "float64", {"long_name": f"consumption of {c.long_name}", "units": c.unit})
        for c in COMMODITIES
    )
    quality: tuple[Variable, ...] = (
        Variable(
            "completeness",
            "float32",
            {"long_name": "fraction of member-meter periods with data", "units": "1"},
        ),
    )
    if with_reporting:
        quality += (
            Variable(
                "meters_reporting",
                "int32",
                {"long_name": "member meters with data in the period", "units": "1"},
            ),
        )
    return co2 + consumption + quality


_ENTITY_ATTRS = ("kind", "name")
ENTITY_PRESENCE = "completeness"
"""Every roll-up cell has a completeness (0 when no member reported): the presence variable."""


def entities_interval(
    origin_ns: int, step_ns: int, chunk_streams: int, chunk_time: int
) -> ProductSpec:
    """Entity roll-ups on the meters/interval grid."""
    return ProductSpec(
        name="entities/interval",
        axis=ENTITIES_AXIS,
        origin_ns=origin_ns,
        step_ns=step_ns,
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=entity_variables(with_reporting=True),
        stream_attrs=_ENTITY_ATTRS,
        written_last=ENTITY_PRESENCE,
        attrs={"title": "Entity roll-ups per interval", "method": "sum of member meters"},
    )


def entities_day(origin_ns: int, chunk_streams: int) -> ProductSpec:
    """Entity roll-ups per (local) day; origin_ns is a local midnight."""
    return ProductSpec(
        name="entities/day",
        axis=ENTITIES_AXIS,
        origin_ns=origin_ns,
        step_ns=86_400 * 1_000_000_000,
        chunk_streams=chunk_streams,
        chunk_time=366,
        variables=entity_variables(with_reporting=False),
        stream_attrs=_ENTITY_ATTRS,
        written_last=ENTITY_PRESENCE,
        attrs={"title": "Entity roll-ups per day", "method": "sum of the day's intervals"},
    )


def entities_month(origin_ns: int, offset_ns: int, chunk_streams: int) -> ProductSpec:
    """Entity roll-ups per calendar month of the local time at `offset_ns` from UTC."""
    return ProductSpec(
        name="entities/month",
        axis=ENTITIES_AXIS,
        origin_ns=origin_ns,
        step_ns=0,
        chunk_streams=chunk_streams,
        chunk_time=120,
        variables=entity_variables(with_reporting=False),
        stream_attrs=_ENTITY_ATTRS,
        written_last=ENTITY_PRESENCE,
        attrs={"title": "Entity roll-ups per calendar month", "method": "sum of the month's days"},
        calendar="month",
        offset_ns=offset_ns,
    )


EC_AXIS = "ec"
"""Stream registry axis of eddy-covariance sites (towers)."""

EC_RAW_VARIABLES: dict[str, tuple[str, str]] = {
    "u": ("m s-1", "wind along the sonic's x axis"),
    "v": ("m s-1", "wind along the sonic's y axis"),
    "w": ("m s-1", "vertical wind (sonic axes)"),
    "ts": ("K", "sonic temperature"),
    "co2": ("as configured", "CO2 as delivered by the analyser"),
    "h2o": ("as configured", "H2O as delivered by the analyser"),
    "ch4": ("as configured", "CH4 as delivered by the analyser"),
    "pressure_pa": ("Pa", "air pressure"),
    "air_t_k": ("K", "air temperature"),
    "diag_sonic": ("1", "sonic diagnostic word"),
    "diag_gas": ("1", "gas analyser diagnostic word"),
    "diag_ch4": ("1", "CH4 analyser diagnostic word"),
}


def ec_flux(
    averaging_s: float,
    origin_ns: int,
    chunk_streams: int,
    chunk_time: int,
    variables: Mapping[str, tuple[str, str]],
) -> ProductSpec:
    """Fluxes of every site with this averaging period (FLUXNET names and units)."""
    return ProductSpec(
        name=ec_flux_name(averaging_s),
        axis=EC_AXIS,
        origin_ns=origin_ns,
        step_ns=round(averaging_s * 1e9),
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=tuple(
            Variable(n, "float64", {"units": units, "long_name": long_name, "fluxnet_name": n})
            for n, (units, long_name) in variables.items()
        ),
        written_last="N_SAMPLES",
        attrs={
            "title": "Eddy-covariance fluxes (FLUXNET variable names and units)",
            "method": "EddyPro-equivalent processing in carbonstream's Rust core",
            "missing_value_in_fluxnet_files": -9999,
        },
    )


def ec_flux_name(averaging_s: float) -> str:
    minutes = averaging_s / 60.0
    return f"ec/flux_{minutes:g}min".replace(".", "p")


def ec_raw(sampling_hz: float, origin_ns: int) -> ProductSpec:
    """The raw samples of the sites that archive them (one row per site, 30-min time chunks)."""
    return ProductSpec(
        name=f"ec/raw_{sampling_hz:g}hz".replace(".", "p"),
        axis=EC_AXIS,
        origin_ns=origin_ns,
        step_ns=round(1e9 / sampling_hz),
        chunk_streams=1,
        chunk_time=round(sampling_hz * 1800),
        variables=tuple(
            Variable(n, "float32", {"units": u, "long_name": ln})
            for n, (u, ln) in EC_RAW_VARIABLES.items()
        ),
        attrs={"title": "Raw eddy-covariance samples", "time_label": "start of the sample"},
    )
