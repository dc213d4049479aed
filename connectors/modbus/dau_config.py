"""Settings of CEMS data-acquisition units (DAU) polled over Modbus TCP.

Some stacks expose their analysers through a DAU's register table instead of a data logger that
pushes HJ 212. Each unit names the CEMS site it measures (`[[cems.sites]]`, by id) and maps the
site's HJ 212 codes to registers; the poller turns every poll into the real-time packet a logger
would have sent (see connectors/modbus/dau_connector.py). In TOML:

    [[cems.modbus.gateways]]
    host = "10.0.0.31"              # the gateway settings of [[connectors.modbus.gateways]]

    [[cems.modbus.gateways.units]]
    site = "plant-a-unit-1"         # a [[cems.sites]] id
    unit_id = 1
    interval_s = 10.0

    [[cems.modbus.gateways.units.registers]]
    code = "a05001"                 # CO2, volume %
    address = 0                     # holding register 0..1, float32, most significant word first
    valid_max = 25.0                # above: flag T (over range); below valid_min: flag D
    flag_address = 100              # its state register: value -> flag via `flag_values`

Imports only pydantic and the Modbus decoding tables (carbonstream/config.py imports this).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.modbus.config import (
    GatewayLinkSettings,
    RegisterFunction,
    SimulatedClockSettings,
    unique_gateways,
)
from connectors.modbus.decode import DataType, WordOrder, register_count

if TYPE_CHECKING:
    from connectors.hj212.settings import SiteSettings

CODE = r"^[A-Za-z0-9]{1,16}$"
SITE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
"""As connectors.hj212.settings (not imported: that module imports this one)."""
FLOW_CODE = "a00000"

FlagLetter = Literal["N", "F", "M", "S", "D", "C", "T", "B"]
DEFAULT_FLAG_VALUES: dict[int, FlagLetter] = {
    0: "N",
    1: "F",
    2: "M",
    3: "S",
    4: "D",
    5: "C",
    6: "T",
    7: "B",
}
"""State register value -> HJ 212 data flag, in the order HJ 212-2017 lists the flags. DAUs
number their states differently: set `flag_values` to the unit's manual."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DauRegister(_Section):
    """One HJ 212 code of a DAU: where its value is, and optionally its state register."""

    code: str = Field(
        description="HJ 212 code (a00000 for the flow, or a channel of the site).", pattern=CODE
    )
    function: RegisterFunction = Field(
        "holding", description="Register table: 'holding' (function 03) or 'input' (04)."
    )
    address: int = Field(
        ge=0, le=65535, description="Protocol address (0-based) of the value's first register."
    )
    data_type: DataType = Field(
        "float32",
        description="float32, float64, uint16, int16, uint32, int32, uint64 or int64.",
    )
    word_order: WordOrder = Field(
        "big",
        description="'big': most significant register first (ABCD); 'little': least "
        "significant first (CDAB).",
    )
    scale: float = Field(
        1.0,
        description="Multiplier from the register to the unit the site's channel is in (e.g. "
        "0.1 for an int16 holding tenths).",
    )
    valid_min: float | None = Field(
        None,
        description="Lowest value the analyser can give (after scale). Below: sent with flag D "
        "(fault), counted. Unset: not checked.",
    )
    valid_max: float | None = Field(
        None,
        description="Upper measuring limit (after scale). Above: sent with flag T (over range; "
        "the site's upper_limit caps it), counted. Unset: not checked.",
    )
    flag_address: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Address of a uint16 state register for this code; its value becomes the "
        "HJ 212 flag through the unit's `flag_values`. Unset: N (normal) unless the value "
        "checks say otherwise.",
    )
    flag_function: RegisterFunction = Field(
        "holding", description="Register table of the state register."
    )

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float) -> float:
        if v == 0 or not math.isfinite(v):
            raise ValueError("scale must be a finite, non-zero number")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.address + register_count(self.data_type) > 65536:
            raise ValueError(f"{self.code}: the value runs past the last register address (65535)")
        if (
            self.valid_min is not None
            and self.valid_max is not None
            and not self.valid_min < self.valid_max
        ):
            raise ValueError(f"{self.code}: valid_min must be below valid_max")
        return self


class DauSettings(_Section):
    """One data-acquisition unit: the site it measures and its register map."""

    site: str = Field(description="Id of the [[cems.sites]] site this unit measures.")
    unit_id: int = Field(ge=0, le=255, description="Modbus unit (device) id, usually 1..247.")
    interval_s: float = Field(
        10.0,
        ge=1.0,
        le=60.0,
        description="Seconds between polls. Each poll is one real-time (2011) sample; the "
        "flow averages a minute's samples (HJ 75: the minute value is the mean of the "
        "real-time values), so at least one poll a minute. HJ 212 times have whole seconds: "
        "1 s at least.",
    )
    phase_s: float | None = Field(
        None,
        ge=0,
        description="Offset of the polls within the interval (epoch-aligned). Unset: a stable "
        "hash of the site id.",
    )
    flag_values: dict[int, FlagLetter] = Field(
        default_factory=lambda: dict(DEFAULT_FLAG_VALUES),
        description="State register value -> HJ 212 flag (N normal, F stopped, M maintenance, "
        "S manual, D fault, C calibration, T over range, B communication). A value not listed "
        "is sent as D and counted.",
    )
    registers: list[DauRegister] = Field(
        min_length=1,
        description="The register map: one table per code ([[...units.registers]]). It must "
        "cover the flow a00000 (unless the site's flow_basis is 'velocity') and every channel "
        "of the site, and nothing else.",
    )

    @field_validator("site")
    @classmethod
    def _site(cls, v: str) -> str:
        if not re.fullmatch(SITE_ID, v):
            raise ValueError(
                "site id must be 1-96 letters, digits or ._:- and start with a letter or digit"
            )
        return v

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        codes = [r.code for r in self.registers]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"code {dup[0]!r} is mapped twice")
        bad = sorted(k for k in self.flag_values if not 0 <= k <= 65535)
        if bad:
            raise ValueError(f"flag_values: {bad[0]} is not a register value (0..65535)")
        return self

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.registers]


class DauGatewaySettings(GatewayLinkSettings):
    """A Modbus TCP gateway (or a DAU with its own TCP port) and the units behind it."""

    units: list[DauSettings] = Field(
        default_factory=list, description="DAUs behind this gateway ([[...gateways.units]])."
    )

    @model_validator(mode="after")
    def _unique_units(self) -> Self:
        seen: set[int] = set()
        for u in self.units:
            if u.unit_id in seen:
                raise ValueError(f"unit id {u.unit_id} is used twice on {self.label}")
            seen.add(u.unit_id)
        return self


class CemsModbusSettings(_Section):
    """The poller of CEMS data-acquisition units (ingest role)."""

    enabled: bool = Field(True, description="Poll the configured DAU gateways (if any).")
    gateways: list[DauGatewaySettings] = Field(
        default_factory=list, description="Gateways of DAUs ([[cems.modbus.gateways]] tables)."
    )
    health_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often unit health is published (/v1/meters/health, /v1/cems/sites).",
    )
    simulated_clock: SimulatedClockSettings | None = Field(
        None,
        description="Poll on a simulated clock (demos, tests); packets are stamped with it. "
        "Never set for real units.",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        unique_gateways(self.gateways)
        sites: set[str] = set()
        for g in self.gateways:
            for u in g.units:
                if u.site in sites:
                    raise ValueError(f"site {u.site!r} is polled by two units")
                sites.add(u.site)
        return self


def check_sites(modbus: CemsModbusSettings, sites: Sequence[SiteSettings]) -> None:
    """Refuses units whose site is not declared or whose map does not fit the site; the
    message starts with the key (cems.modbus.gateways[g].units[u]...)."""
    by_id = {s.id: s for s in sites}
    for g, gw in enumerate(modbus.gateways):
        for u, unit in enumerate(gw.units):
            key = f"cems.modbus.gateways[{g}].units[{u}]"
            site = by_id.get(unit.site)
            if site is None:
                raise ValueError(f"{key}.site: {unit.site!r} is not declared in [[cems.sites]]")
            if site.minutes_from != "realtime":
                raise ValueError(
                    f"{key}.site: site {site.id!r} takes minutes from 'minute_packets', but a "
                    "DAU gives real-time readings: set its minutes_from = 'realtime'"
                )
            wanted = [c.code for c in site.channels]
            if site.flow_basis != "velocity":
                wanted.insert(0, FLOW_CODE)
            allowed = set(wanted) | {FLOW_CODE}
            for r, reg in enumerate(unit.registers):
                if reg.code not in allowed:
                    fuel = {f.code for f in site.fuel_meters}
                    why = (
                        "is a fuel meter (hourly totals come in 2061 packets, a DAU sends none)"
                        if reg.code in fuel
                        else f"is not a channel of site {site.id!r}"
                    )
                    raise ValueError(f"{key}.registers[{r}].code: {reg.code!r} {why}")
            missing = [c for c in wanted if c not in unit.codes]
            if missing:
                raise ValueError(
                    f"{key}.registers: no register for {', '.join(missing)} of site "
                    f"{site.id!r} (map every channel, or list only the mapped ones in the "
                    "site's [[cems.sites.channels]])"
                )
