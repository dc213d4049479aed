"""The CEMS products: cems/minute, cems/hour and cems/day (see storage/products.py for the
grid). Rows are stack variables '<site>/<HJ 212 code>' of the `cems` axis; the code, parameter,
role and units are per-row coordinates, so one array holds every pollutant of every stack."""

from __future__ import annotations

from typing import Any

from storage.products import CEMS_AXIS, ProductSpec, Variable

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
