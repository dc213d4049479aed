"""Settings of the HJ 212 server and of the CEMS sites (stacks) it serves.

Imports only pydantic and the DAU settings (carbonstream/config.py imports this module). In TOML:

    [cems.server]
    enabled = true
    host = "0.0.0.0"
    port = 9212

    [[cems.sites]]
    id = "plant-a-unit-1"          # the stack: rows of cems/* are "<id>/<code>"
    mn = "81733553216103"          # the logger's MN (unique)
    password = "123456"
    utc_offset = "+08:00"          # the logger clock's offset (China Standard Time)
    policy = "hj75"                # or "part75"
    flow_unit = "m3/s"

    [[cems.sites.channels]]
    code = "a05001"                # CO2, sent as volume %
    unit = "%"

    [[cems.sites.fuel_meters]]
    code = "f01"                   # the logger's hourly "-Cou" of this code is the fuel burnt
    fuel = "natural_gas"           # NCV, carbon content, oxidation default to the national table
    unit = "Nm3"

A site lists the HJ 212 codes it integrates (`channels`); without a list it gets the usual stack
set (CO2 in %, SO2, NOx and dust in mg/m3; O2, temperature, pressure and moisture as auxiliary).
The site model does not depend on HJ 212 framing: a Modbus data-acquisition unit whose register
map names these codes feeds the same pipeline (`[cems.modbus]`, connectors/modbus/dau_config.py).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.modbus.dau_config import CemsModbusSettings

SITE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
"""Like carbonstream.config.STREAM_ID (not imported: that module imports this one), shorter:
channel rows are "<site>/<code>"."""
CODE = r"^[A-Za-z0-9]{1,16}$"
UTC_OFFSET = r"^[+-](0\d|1[0-4]):[0-5]\d$"

FLOW_CODE = "a00000"

# HJ 212-2017 codes of stack CEMS: (parameter, unit it is sent in, auxiliary?).
KNOWN_CODES: dict[str, tuple[str, str, bool]] = {
    "a00000": ("flue gas flow", "m3/s", True),
    "a01011": ("flue gas velocity", "m/s", True),
    "a01012": ("flue gas temperature", "degC", True),
    "a01013": ("flue gas static pressure", "kPa", True),
    "a01014": ("flue gas moisture", "%", True),
    "a01017": ("dynamic pressure", "kPa", True),
    "a19001": ("O2", "%", True),
    "a21026": ("SO2", "mg/m3", False),
    "a21002": ("NOx", "mg/m3", False),
    "a34013": ("particulate matter", "mg/m3", False),
    "a05001": ("CO2", "mg/m3", False),
    "a21005": ("CO", "mg/m3", False),
}

CONDITION_CODES = {
    "temperature": "a01012",
    "pressure": "a01013",
    "moisture": "a01014",
    "velocity": "a01011",
}
"""Auxiliary codes whose readings convert an actual flow or a velocity to dry standard flow."""

MassUnit = Literal["mg/m3", "%", "ppm", "part75_co2"]
FLOW_UNITS_PER_HOUR = {"m3/s": 3600.0, "m3/h": 1.0, "scfm": 60.0, "scfh": 1.0}

FUEL_DEFAULTS: dict[str, tuple[float, float, float, str]] = {
    # fuel: (NCV GJ per unit, carbon content tC/TJ, oxidation, unit), GB/T 32150 defaults.
    "natural_gas": (389.31e-4, 15.3, 0.99, "Nm3"),
    "raw_coal": (20.908, 26.37, 0.94, "t"),
    "fuel_oil": (41.816, 21.1, 0.98, "t"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSettings(_Section):
    """One HJ 212 code of a stack."""

    code: str = Field(description="HJ 212 pollutant/parameter code, e.g. a05001.", pattern=CODE)
    role: Literal["mass", "auxiliary"] | None = Field(
        None,
        description="'mass': a pollutant or CO2 whose mass is integrated (and substituted when "
        "missing); 'auxiliary': averaged only (O2, temperature, pressure, moisture, velocity). "
        "Unset: auxiliary for the codes HJ 212 lists as flue-gas parameters, mass otherwise.",
    )
    unit: str | None = Field(
        None,
        description="Unit the logger sends. Mass channels: 'mg/m3' (dry standard), '%' (volume "
        "%, CO2 density 1.9635 kg/m3), 'ppm' (with molar_mass_g_mol, formula [20]) or "
        "'part75_co2' (wet % with flow in scfh: short tons, F-11). Auxiliary channels: any "
        "label (degC, kPa, %, m/s). Unset: the HJ 212 table's unit.",
    )
    molar_mass_g_mol: float | None = Field(
        None, gt=0, description="Molar mass for a 'ppm' channel (SO2 64.06, NO2 46.01)."
    )
    name: str | None = Field(None, description="Display name. Unset: the HJ 212 parameter name.")
    upper_limit: float | None = Field(
        None,
        description="Upper measuring limit of the analyser: T-flagged values are capped to it.",
    )
    max_potential_per_hour: float | None = Field(
        None,
        gt=0,
        description="Substitution value (mass per hour) when no measured history exists "
        "(Part 75 maximum potential; for HJ 75 the permit's maximum). Unset: such hours stay "
        "missing and are reported.",
    )
    flatline_tolerance: float | None = Field(
        0.0,
        ge=0,
        description="Minute values within this of a run's first value count as flat (stuck "
        "signal). None: not checked.",
    )
    max_step: float | None = Field(
        None,
        gt=0,
        description="Physical limit of the change between consecutive valid minute values; a "
        "bigger change (that is also above max_step_rel) is a jump. None: not checked.",
    )
    max_step_rel: float = Field(
        0.5, ge=0, description="Relative part of the jump limit (fraction of the previous value)."
    )

    @property
    def is_mass(self) -> bool:
        if self.role is not None:
            return self.role == "mass"
        known = KNOWN_CODES.get(self.code)
        return not (known and known[2])

    @property
    def effective_unit(self) -> str:
        if self.unit is not None:
            return self.unit
        known = KNOWN_CODES.get(self.code)
        return known[1] if known else ("mg/m3" if self.is_mass else "")

    @property
    def display_name(self) -> str:
        known = KNOWN_CODES.get(self.code)
        return self.name or (known[0] if known else self.code)

    @model_validator(mode="after")
    def _unit_fits(self) -> Self:
        if self.code == FLOW_CODE:
            raise ValueError("a00000 is the site's flow (see flow_unit), not a channel")
        if self.is_mass and self.effective_unit not in ("mg/m3", "%", "ppm", "part75_co2"):
            raise ValueError(
                f"{self.code}: unit {self.effective_unit!r} of a mass channel must be 'mg/m3', "
                "'%', 'ppm' or 'part75_co2'"
            )
        if self.is_mass and self.effective_unit == "ppm" and self.molar_mass_g_mol is None:
            raise ValueError(f"{self.code}: a 'ppm' channel needs molar_mass_g_mol")
        return self


def default_channels() -> list[ChannelSettings]:
    """The usual stack: CO2 in volume % (a change of more than 2 %-points in a minute is a
    jump: combustion CO2 does not move that fast), SO2/NOx/dust in mg/m3, O2 and the duct
    conditions."""
    return [
        ChannelSettings(code="a05001", unit="%", max_step=2.0),
        ChannelSettings(code="a21026"),
        ChannelSettings(code="a21002"),
        ChannelSettings(code="a34013"),
        ChannelSettings(code="a19001"),
        ChannelSettings(code="a01012"),
        ChannelSettings(code="a01013"),
        ChannelSettings(code="a01014"),
    ]


class FuelMeterSettings(_Section):
    """A fuel meter of the accounting method (核算法): its hourly quantity comes as the `-Cou`
    of `code` in the logger's hourly packets."""

    code: str = Field(description="HJ 212 code carrying the fuel quantity.", pattern=CODE)
    fuel: Literal["natural_gas", "raw_coal", "fuel_oil", "custom"] = Field(
        "natural_gas",
        description="Fuel: its defaults (natural gas 389.31 GJ/10^4 Nm3, 15.3 tC/TJ, 99 %; raw "
        "coal 20.908 GJ/t, 26.37 tC/TJ, 94 %; fuel oil 41.816 GJ/t, 21.1 tC/TJ, 98 %) fill the "
        "values not given. 'custom' needs all three.",
    )
    unit: str | None = Field(
        None, description="Unit of the quantity (Nm3, t). Unset: the fuel's (Nm3 for gas, t)."
    )
    ncv_gj_per_unit: float | None = Field(
        None, gt=0, description="Net calorific value, GJ per unit of quantity."
    )
    carbon_t_per_tj: float | None = Field(
        None, gt=0, description="Carbon content per unit heat, t C per TJ."
    )
    oxidation: float | None = Field(
        None, gt=0, le=1, description="Carbon oxidation rate, fraction (0.99 = 99 %)."
    )

    def factors(self) -> tuple[float, float, float]:
        """(NCV, carbon content, oxidation) with the fuel's defaults filled in."""
        d = FUEL_DEFAULTS.get(self.fuel, (math.nan, math.nan, math.nan, ""))
        return (
            self.ncv_gj_per_unit or d[0],
            self.carbon_t_per_tj or d[1],
            self.oxidation or d[2],
        )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.fuel == "custom" and None in (
            self.ncv_gj_per_unit,
            self.carbon_t_per_tj,
            self.oxidation,
        ):
            raise ValueError("a 'custom' fuel needs ncv_gj_per_unit, carbon_t_per_tj and oxidation")
        return self


class SiteSettings(_Section):
    """One stack (a CEMS data logger identified by its MN)."""

    id: str = Field(description="Site (stack) id, unique; rows of cems/* are '<id>/<code>'.")
    mn: str = Field(
        description="The logger's MN (unique): packets are attributed to the site by it.",
        min_length=1,
        max_length=64,
        pattern=r"^[^\s;,=&]+$",
    )
    password: str = Field(
        description="PW the logger must send; packets with another are refused (no answer)."
    )
    name: str | None = Field(None, description="Display name (default: the id).")
    utc_offset: str = Field(
        "+08:00",
        pattern=UTC_OFFSET,
        description="UTC offset of the logger's clock (HJ 212 times carry none) and of the "
        "site's local days.",
    )
    policy: Literal["hj75", "part75"] = Field(
        "hj75",
        description="Data rules: 'hj75' (HJ 75-2017 validity, HJ 75 substitution) or 'part75' "
        "(40 CFR Part 75 quadrant validity, PMA missing-data tiers).",
    )
    minutes_from: Literal["realtime", "minute_packets"] = Field(
        "realtime",
        description="Source of minute values: 'realtime' (means of the real-time 2011 "
        "readings, HJ 75) or 'minute_packets' (the logger's own 2051 minute averages).",
    )
    min_valid_samples: int = Field(
        1, ge=1, le=600, description="Valid real-time readings a minute needs to be valid."
    )
    flow_unit: Literal["m3/s", "m3/h", "scfm", "scfh"] = Field(
        "m3/s",
        description="Unit of the flow a00000 as sent (HJ 212: m3/s). Mass needs the flow per "
        "hour, so it is scaled (m3/s x 3600).",
    )
    flow_basis: Literal["dry_standard", "actual", "velocity"] = Field(
        "dry_standard",
        description="'dry_standard': a00000 is already dry standard flow; 'actual': a00000 is "
        "at duct conditions, converted with HJ 212 Appendix D [31] from the temperature "
        "(a01012), static pressure (a01013) and moisture (a01014) channels; 'velocity': no "
        "flow sent, computed from the velocity a01011 with [29], [30] and [31].",
    )
    atmospheric_kpa: float = Field(
        101.325, gt=50, lt=120, description="Atmospheric pressure B_a at the site, kPa."
    )
    duct_area_m2: float | None = Field(
        None,
        gt=0,
        description="Duct cross-section F at the flow monitor, m2 (flow_basis 'velocity').",
    )
    velocity_coefficient: float = Field(
        1.0, gt=0, le=10, description="Velocity-field coefficient K_v from the last calibration."
    )
    flow_upper_limit: float | None = Field(
        None, gt=0, description="Upper measuring limit of the flow monitor, in flow_unit."
    )
    flow_max_step: float | None = Field(
        None,
        gt=0,
        description="Physical limit of the change of the minute flow (flow_unit); bigger "
        "changes (also above flow_max_step_rel) are flagged as jumps. None: not checked.",
    )
    flow_max_step_rel: float = Field(
        0.5, ge=0, description="Relative part of the flow jump limit (fraction)."
    )
    flatline_minutes: int = Field(
        30, ge=0, le=10_080, description="Minutes a flat (stuck) run must last to be flagged."
    )
    repeat_packets: int = Field(
        5,
        ge=0,
        le=10_000,
        description="Consecutive real-time packets with identical values that flag a repeat "
        "(0 or 1: never).",
    )
    channels: list[ChannelSettings] = Field(
        default_factory=default_channels, description="The codes integrated for this stack."
    )
    fuel_meters: list[FuelMeterSettings] = Field(
        default_factory=list,
        description="Fuel meters of the accounting method; CO2 (a05001) is compared with them.",
    )
    agreement_threshold: float = Field(
        0.10,
        gt=0,
        le=10,
        description="Monitoring vs accounting: a relative error beyond +/- this (fraction) "
        "flags the period (the CO2-CEMS pilot uses 10 %).",
    )
    rules: dict[str, float] = Field(
        default_factory=dict,
        description="Overrides of the policy's numbers, e.g. {min_valid_minutes = 45, "
        "lookback_short = 180} (HJ 75) or {lookback_hours = 720} (Part 75).",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.fullmatch(SITE_ID, v):
            raise ValueError(
                "site id must be 1-96 letters, digits or ._:- and start with a letter or digit"
            )
        return v

    @property
    def offset_minutes(self) -> int:
        sign = -1 if self.utc_offset[0] == "-" else 1
        return sign * (int(self.utc_offset[1:3]) * 60 + int(self.utc_offset[4:6]))

    @property
    def codes(self) -> list[str]:
        """Every code read from packets: the flow, the channels, the fuel meters."""
        return [FLOW_CODE, *(c.code for c in self.channels), *(f.code for f in self.fuel_meters)]

    def condition_index(self, condition: str) -> int:
        """Channel index of a duct-condition code, -1 when the site has none."""
        code = CONDITION_CODES[condition]
        for i, c in enumerate(self.channels):
            if c.code == code and not c.is_mass:
                return i
        return -1

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        codes = [c.code for c in self.channels] + [f.code for f in self.fuel_meters]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"code {dup[0]!r} is listed twice (channels and fuel meters)")
        if self.flow_basis != "dry_standard" and self.condition_index("temperature") < 0:
            raise ValueError(
                f"flow_basis {self.flow_basis!r} needs an auxiliary temperature channel a01012"
            )
        if self.flow_basis == "velocity":
            if self.condition_index("velocity") < 0:
                raise ValueError("flow_basis 'velocity' needs an auxiliary velocity channel a01011")
            if self.duct_area_m2 is None:
                raise ValueError("flow_basis 'velocity' needs duct_area_m2")
        if self.fuel_meters and not any(c.code == "a05001" and c.is_mass for c in self.channels):
            raise ValueError("fuel_meters are compared with CO2: add a mass channel a05001")
        return self


class Hj212ServerSettings(_Section):
    """The HJ 212 TCP server of the ingest role."""

    enabled: bool = Field(
        True,
        description="Run the HJ 212 server in the ingest role (also needed by the CEMS simulator).",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the server listens on ('0.0.0.0' for loggers on the network).",
    )
    port: int = Field(
        9212, ge=0, le=65535, description="TCP port (0: any free port, logged at start)."
    )
    idle_timeout_s: float = Field(
        600.0,
        gt=0,
        description="A connection silent this long is closed (an unfinished frame it held is "
        "counted as incomplete). Loggers send at least every minute.",
    )
    max_connections: int = Field(
        20_000, ge=1, description="Connections above this are closed at once (counted)."
    )
    answer_st: int = Field(
        91,
        ge=0,
        le=9999,
        description="ST of answers (91 = system interaction per the standard; some loggers want "
        "their own ST echoed: set it to that).",
    )
    batch_max_packets: int = Field(
        5_000, ge=1, description="Most packets made durable in one journal commit."
    )
    max_pending_packets: int = Field(
        20_000,
        ge=1,
        description="Packets waiting for the journal above which connections stop being read "
        "(back-pressure) until the journal catches up.",
    )
    status_interval_s: float = Field(
        5.0, gt=0, description="How often per-site and per-connection counters are published."
    )


class CemsProductSettings(_Section):
    """The cems/minute, cems/hour and cems/day products."""

    origin: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC),
        description="Start of the time grids (UTC). Data before it is refused.",
    )
    chunk_streams: int = Field(
        64, ge=1, le=65_536, description="Zarr chunk size along stream (site variables)."
    )
    minute_chunk_time: int = Field(
        240,
        ge=1,
        le=1_000_000,
        description="Zarr chunk size of cems/minute along time (4 h). Every minute's flush "
        "rewrites the open chunk of every stack: a day-long chunk made that 6x the bytes and "
        "stalled the flow ~2.5 s a minute at 512 stacks.",
    )
    hour_chunk_time: int = Field(
        744, ge=1, le=1_000_000, description="Zarr chunk size of cems/hour along time."
    )
    day_chunk_time: int = Field(
        366, ge=1, le=100_000, description="Zarr chunk size of cems/day along time."
    )
    future_tolerance_s: float = Field(
        300.0,
        ge=0,
        description="Packets whose DataTime is more than this after their arrival are refused "
        "(a logger clock running ahead would otherwise close hours that have not happened).",
    )

    @field_validator("origin")
    @classmethod
    def _utc_midnight(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() != timedelta(0):
            raise ValueError("origin must be a UTC timestamp, e.g. 2020-01-01T00:00:00Z")
        if (v.hour, v.minute, v.second, v.microsecond) != (0, 0, 0, 0):
            raise ValueError("origin must be a UTC midnight (the day grid starts there)")
        return v


class CemsSettings(_Section):
    """CEMS: the HJ 212 server, the sites (stacks) and their products."""

    server: Hj212ServerSettings = Field(
        default_factory=Hj212ServerSettings, description="The HJ 212 TCP server."
    )
    sites: list[SiteSettings] = Field(
        default_factory=list, description="Accepted loggers ([[cems.sites]] tables)."
    )
    products: CemsProductSettings = Field(
        default_factory=CemsProductSettings, description="The cems/* products."
    )
    modbus: CemsModbusSettings = Field(
        default_factory=CemsModbusSettings,
        description="Data-acquisition units polled over Modbus TCP instead of a logger pushing "
        "HJ 212.",
    )

    @field_validator("sites")
    @classmethod
    def _unique(cls, sites: list[SiteSettings]) -> list[SiteSettings]:
        for attr in ("id", "mn"):
            seen: set[str] = set()
            for s in sites:
                v = getattr(s, attr)
                if v in seen:
                    raise ValueError(f"site {attr} {v!r} is declared twice")
                seen.add(v)
        return sites


class CemsSimulatorSettings(_Section):
    """Simulated stacks speaking HJ 212 over TCP to the server of the same ingest role."""

    enabled: bool = Field(True, description="Run the simulated stacks in the ingest role.")
    count: int = Field(3, ge=0, le=100_000, description="Number of simulated stacks.")
    realtime_interval_s: float = Field(
        10.0, gt=0, le=3600, description="Seconds (simulated) between real-time 2011 packets."
    )
    rate: float = Field(
        1.0,
        gt=0,
        le=100_000,
        description="Simulated seconds per wall-clock second (1: real time; tests use more).",
    )
    start: str | None = Field(
        None,
        description="Simulated start time (ISO 8601 with offset). Unset: now, aligned to the "
        "minute.",
    )
    duration_s: float | None = Field(
        None, gt=0, description="Stop after this much simulated time. Unset: run forever."
    )
    id_prefix: str = Field(
        "sim-stack-", description="Site ids are this prefix and a 3-digit number."
    )
    password: str = Field("123456", description="PW of the simulated loggers.")
    fuel: bool = Field(
        True,
        description="The simulated stacks burn natural gas and report it (accounting method).",
    )
    seed: int = Field(0, description="Seed of the simulated load profiles.")
