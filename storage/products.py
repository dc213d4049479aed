"""What each Zarr product group holds: its grid, chunking, variables and CF attributes.

A product is a group of 2-D (stream, time) arrays, one per variable, on a time grid from a fixed
origin (periods labelled by their start), plus 1-D coordinates: `time` (int64 ns, CF-encoded),
`stream` (ids) and per-stream string attributes (e.g. `unit`).

Grids are regular (a fixed step: minutes, days) or calendar months. Days and months of a roll-up
may follow local time (e.g. UTC+8 for a Chinese city): the grid then starts at a local midnight,
and the period labels are still UTC instants.
"""

from __future__ import annotations

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
        ),
        stream_attrs=("commodity", "unit"),
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
        attrs={"title": "Entity roll-ups per calendar month", "method": "sum of the month's days"},
        calendar="month",
        offset_ns=offset_ns,
    )


# -- CEMS ------------------------------------------------------------------------------------

CEMS_STREAM_ATTRS = ("site", "code", "parameter", "role", "unit", "mass_unit")
"""Per-row coordinates of cems/*: the HJ 212 code and its parameter, and the units."""

_DATA_FLAG_ATTRS: dict[str, Any] = {
    "long_name": "HJ 212 data flag of the value (ASCII code of the letter; 0: no reading)",
    "flag_values": [0, 78, 70, 77, 83, 68, 67, 84, 66],
    "flag_meanings": "none normal stopped maintenance manual fault calibration over_range "
    "comms_fault",
}
_QUALITY_ATTRS: dict[str, Any] = {
    "long_name": "data-quality signals (bit mask)",
    "flag_masks": [1, 2, 4, 8, 16],
    "flag_meanings": "flatline jump calibration repeated_packets accounting_disagreement",
}
_STATUS_ATTRS: dict[str, Any] = {
    "flag_values": [0, 1, 2],
    "flag_meanings": "valid invalid not_operating",
}
STATUS_FILL = 255
RULE_FILL = 254
"""Rule of cells without one (auxiliary channels, never written); 255 is 'pending'."""


def _cems_value(period: str) -> Variable:
    return Variable(
        "value",
        "float64",
        {
            "long_name": f"{period} value: flow-weighted concentration (HJ 75) or mean "
            "(Part 75); dry standard flow rate per hour for the flow row",
            "units_coordinate": "unit",
            "cell_methods": "time: mean",
        },
    )


def _cems_mass(name: str, long_name: str) -> Variable:
    return Variable(
        name,
        "float64",
        {"long_name": long_name, "units_coordinate": "mass_unit", "cell_methods": "time: sum"},
    )


def cems_minute(origin_ns: int, chunk_streams: int, chunk_time: int) -> ProductSpec:
    """Minute values of every stack variable, with their flags and quality signals."""
    return ProductSpec(
        name="cems/minute",
        axis=CEMS_AXIS,
        origin_ns=origin_ns,
        step_ns=60 * 1_000_000_000,
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=(
            _cems_value("minute"),
            Variable("flag", "uint8", _DATA_FLAG_ATTRS),
            _cems_mass("mass", "mass emitted in the minute (k x C x Q / 60), when both valid"),
            Variable("quality", "uint8", _QUALITY_ATTRS),
        ),
        stream_attrs=CEMS_STREAM_ATTRS,
        attrs={
            "title": "CEMS minute values",
            "method": "mean of the minute's valid real-time readings (HJ 75-2017), or the "
            "logger's minute data",
        },
    )


def cems_hour(origin_ns: int, chunk_streams: int, chunk_time: int) -> ProductSpec:
    """Hourly values, validity, measured and substituted mass, and the accounting comparison."""
    u8 = "uint8"
    return ProductSpec(
        name="cems/hour",
        axis=CEMS_AXIS,
        origin_ns=origin_ns,
        step_ns=3600 * 1_000_000_000,
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=(
            _cems_value("hourly"),
            Variable(
                "status",
                u8,
                {"long_name": "validity of the hourly value", **_STATUS_ATTRS},
                fill=STATUS_FILL,
            ),
            Variable("valid_minutes", u8, {"long_name": "valid minutes", "units": "1"}),
            Variable("operating_minutes", u8, {"long_name": "minutes not flagged F", "units": "1"}),
            Variable("calibration_minutes", u8, {"long_name": "minutes flagged C", "units": "1"}),
            Variable("maintenance_minutes", u8, {"long_name": "minutes flagged M", "units": "1"}),
            Variable("fault_minutes", u8, {"long_name": "minutes flagged D, S or B", "units": "1"}),
            Variable(
                "missing_minutes", u8, {"long_name": "minutes without a reading", "units": "1"}
            ),
            Variable(
                "flow_total",
                "float64",
                {
                    "long_name": "dry standard flue gas volume of the hour (rate x operating "
                    "fraction)",
                    "units": "m3 (scf for Part 75 sites)",
                    "cell_methods": "time: sum",
                },
            ),
            _cems_mass("measured_mass", "measured mass of the hour (NaN when invalid)"),
            _cems_mass("mass", "mass of the hour: measured, or substituted by the site's rules"),
            Variable(
                "rule",
                u8,
                {
                    "long_name": "how the hour's mass was obtained",
                    "flag_values": [0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 254, 255],
                    "flag_meanings": "measured not_operating hj75_short_gap hj75_long_gap "
                    "hj75_low_capture hj75_below_minimum_capture no_history part75_startup "
                    "part75_hour_before_after part75_percentile_90 part75_percentile_95 "
                    "part75_lookback_max part75_max_potential none pending",
                },
                fill=RULE_FILL,
            ),
            Variable(
                "availability",
                "float32",
                {
                    "long_name": "capture rate (HJ 75) or PMA (Part 75) that chose the "
                    "substitution tier",
                    "units": "%",
                },
            ),
            _cems_mass("logger_mass", "the logger's own hourly total (-Cou of its 2061 packet)"),
            _cems_mass(
                "accounting_mass", "CO2 of the accounting method (fuel x NCV x C x oxidation)"
            ),
            Variable(
                "accounting_error",
                "float64",
                {
                    "long_name": "relative error of monitoring vs accounting, "
                    "(mass - accounting_mass) / accounting_mass",
                    "units": "1",
                },
            ),
            Variable("quality", u8, _QUALITY_ATTRS),
        ),
        stream_attrs=CEMS_STREAM_ATTRS,
        attrs={
            "title": "CEMS hourly values and emissions",
            "method": "HJ 75-2017 / HJ 212-2017 Appendix D or 40 CFR Part 75 Appendix F, per site",
        },
    )


def cems_day(origin_ns: int, chunk_streams: int, chunk_time: int) -> ProductSpec:
    """Daily values and totals. Days are the LOCAL calendar days of each site: the time label
    is the date (its 00:00 UTC); the day starts at that date's local midnight."""
    u8 = "uint8"
    return ProductSpec(
        name="cems/day",
        axis=CEMS_AXIS,
        origin_ns=origin_ns,
        step_ns=86_400 * 1_000_000_000,
        chunk_streams=chunk_streams,
        chunk_time=chunk_time,
        variables=(
            _cems_value("daily"),
            Variable(
                "status",
                u8,
                {"long_name": "validity of the daily value", **_STATUS_ATTRS},
                fill=STATUS_FILL,
            ),
            Variable(
                "flow_total",
                "float64",
                {"long_name": "dry standard flue gas volume of the day", "units": "m3"},
            ),
            _cems_mass("mass", "mass of the day, measured and substituted hours"),
            Variable("measured_hours", u8, {"long_name": "measured hours", "units": "1"}),
            Variable("substituted_hours", u8, {"long_name": "substituted hours", "units": "1"}),
            Variable("not_operating_hours", u8, {"long_name": "hours stopped", "units": "1"}),
            Variable("missing_hours", u8, {"long_name": "hours left missing", "units": "1"}),
            _cems_mass("accounting_mass", "CO2 of the accounting method over the day's hours"),
            Variable(
                "accounting_error",
                "float64",
                {
                    "long_name": "relative error of monitoring vs accounting over the hours "
                    "with both",
                    "units": "1",
                },
            ),
            Variable("quality", u8, _QUALITY_ATTRS),
        ),
        stream_attrs=CEMS_STREAM_ATTRS,
        attrs={
            "title": "CEMS daily values and emissions",
            "time_label": "local date of the site (the day runs from that date's local midnight)",
        },
    )
