"""Settings of the Modbus TCP poller: gateways, the devices behind them, their register maps.

The models follow carbonstream/config.py (frozen, unknown keys refused, every field described)
but do not import it, so that module can import this one. In TOML:

    [connectors.modbus]
    enabled = true

    [[connectors.modbus.gateways]]
    host = "10.0.0.21"
    connections = 2

    [[connectors.modbus.gateways.devices]]
    meter = "building-a-main"
    unit_id = 1
    register_map = "sdm630"

    [[connectors.modbus.gateways.devices]]
    meter = "chiller-3"
    unit_id = 7
    register_map = "custom"
    custom = { function = "holding", address = 2048, data_type = "uint32", scale = 0.1 }
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.modbus.decode import DataType, WordOrder, register_count

METER_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
"""Same rule as carbonstream.config.STREAM_ID (not imported: that module imports this one)."""

RegisterMapName = Literal["sdm630", "sdm630_total", "sunspec203", "sunspec213", "custom"]
RegisterFunction = Literal["holding", "input"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomRegister(_Section):
    """A register map given in the configuration: one value, optionally scaled."""

    function: RegisterFunction = Field(
        description="Register table: 'holding' (function 03) or 'input' (function 04)."
    )
    address: int = Field(
        ge=0, le=65535, description="Protocol address of the first register (0-based)."
    )
    data_type: DataType = Field(
        "float32",
        description="Type of the value: float32, float64, uint16, int16, uint32, int32, uint64 "
        "or int64.",
    )
    word_order: WordOrder = Field(
        "big",
        description="'big': most significant register first (ABCD); 'little': least "
        "significant register first (CDAB).",
    )
    scale: float = Field(
        1.0, description="Multiplier from the register to the reading's unit (e.g. 0.01)."
    )
    scale_factor_address: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Address (same table) of an int16 power-of-ten scale-factor register, as "
        "SunSpec's: reading = register x 10**sf x scale. -32768 (not implemented) or a factor "
        "outside -10..10 is a reading error.",
    )
    unit: str = Field("kWh", description="Unit of the resulting reading.")

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0 or v != v or v in (float("inf"), float("-inf")):
            raise ValueError("scale must be a finite, non-zero number")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.address + register_count(self.data_type) > 65536:
            raise ValueError("the value runs past the last register address (65535)")
        return self


class DeviceSettings(_Section):
    """One meter behind a gateway."""

    meter: str = Field(description="Meter id the readings are journaled under.", pattern=METER_ID)
    unit_id: int = Field(
        ge=0, le=255, description="Modbus unit (device) id behind the gateway, usually 1..247."
    )
    register_map: RegisterMapName = Field(
        "sdm630",
        description="'sdm630': Eastron SDM630 import active energy (input 0x0048, float32, kWh); "
        "'sdm630_total': its total active energy (input 0x0156); 'sunspec203': SunSpec "
        "wye meter, TotWhImp (acc32) x 10**TotWh_SF; 'sunspec213': SunSpec float wye meter, "
        "TotWhImp (float32); 'custom': the `custom` register. Built-in maps read kWh.",
    )
    custom: CustomRegister | None = Field(
        None, description="The register to read when register_map = 'custom'."
    )
    sunspec_base: int = Field(
        40000,
        ge=0,
        le=65533,
        description="Address of the SunSpec 'SunS' marker (40000, 50000 or 0): the meter model "
        "is found by walking the model chain from there.",
    )
    interval_s: float = Field(10.0, ge=0.1, le=86_400, description="Seconds between polls.")
    phase_s: float | None = Field(
        None,
        ge=0,
        description="Offset of this meter's polls within the interval (polls at k x interval_s "
        "+ phase_s, epoch-aligned). Unset: a stable hash of the meter id, which spreads a "
        "fleet's polls evenly over the interval.",
    )

    @model_validator(mode="after")
    def _custom_iff_custom(self) -> Self:
        if (self.register_map == "custom") != (self.custom is not None):
            raise ValueError("`custom` is required with register_map = 'custom' and only then")
        return self


class GatewayLinkSettings(_Section):
    """How to reach one Modbus TCP gateway and when to give up on a device behind it: shared by
    the meter gateways below and the CEMS data-acquisition units (modbus/dau_config.py)."""

    name: str | None = Field(
        None, description="Name in health reports and logs. Unset: 'host:port'."
    )
    host: str = Field(description="Host name or address of the gateway.")
    port: int = Field(502, ge=1, le=65535, description="TCP port of the gateway.")
    connections: int = Field(
        1,
        ge=1,
        le=64,
        description="TCP connections to the gateway, each with one request in flight: the most "
        "concurrent requests it gets. Many serial (RS-485) gateways serve one at a time anyway.",
    )
    timeout_s: float = Field(
        1.0, gt=0, le=60, description="Longest wait for a connection or a response."
    )
    retries: int = Field(
        2, ge=0, le=10, description="Further attempts of a failed poll within its interval."
    )
    backoff_s: float = Field(
        0.2,
        gt=0,
        le=60,
        description="Wait before the first retry of a poll, and before the first reconnection; "
        "doubled for each further one, up to backoff_max_s.",
    )
    backoff_max_s: float = Field(
        10.0, gt=0, le=3600, description="Longest wait between retries or reconnections."
    )
    dead_after: int = Field(
        3,
        ge=1,
        le=1000,
        description="Consecutive failed polls after which a device is 'dead' (1 or more: "
        "'degraded'). A dead device is only probed every dead_probe_s, one attempt each.",
    )
    dead_probe_s: float = Field(
        60.0, gt=0, le=86_400, description="Poll period of a dead device until it answers."
    )

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"

    @model_validator(mode="after")
    def _backoff_range(self) -> Self:
        if self.backoff_max_s < self.backoff_s:
            raise ValueError("backoff_max_s must be at least backoff_s")
        return self


class GatewaySettings(GatewayLinkSettings):
    """A Modbus TCP gateway (or a meter with its own TCP port) and the devices behind it."""

    batch_interval_s: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Period of the batches of readings this gateway hands on (one per poll "
        "round). Unset: the shortest poll interval of its devices.",
    )
    devices: list[DeviceSettings] = Field(
        default_factory=list, description="Devices behind this gateway."
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> Self:
        units: set[int] = set()
        for d in self.devices:
            if d.unit_id in units:
                raise ValueError(f"unit id {d.unit_id} is used twice on {self.label}")
            units.add(d.unit_id)
        _unique_meters(self.devices)
        return self


class SimulatedClockSettings(_Section):
    """A clock running faster than real time, shared with a simulated fleet (demos, tests)."""

    rate: float = Field(gt=0, description="Simulated seconds per real second.")
    start_ns: int = Field(description="Simulated time (UTC epoch ns) at the anchor.")
    anchor_ns: int = Field(description="CLOCK_MONOTONIC reading (ns) the simulated time starts at.")


class ModbusSettings(_Section):
    """The Modbus TCP poller of the ingest role."""

    enabled: bool = Field(False, description="Poll the configured Modbus gateways.")
    gateways: list[GatewaySettings] = Field(
        default_factory=list, description="Gateways ([[connectors.modbus.gateways]] tables)."
    )
    health_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often device health is published (metadata, /v1/meters/health).",
    )
    simulated_clock: SimulatedClockSettings | None = Field(
        None,
        description="Poll on a simulated clock instead of real time (the clock a simulated fleet "
        "runs on); readings are stamped with it. Never set for real meters.",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        unique_gateways(self.gateways)
        _unique_meters([d for g in self.gateways for d in g.devices])
        return self


def unique_gateways(gateways: Sequence[GatewayLinkSettings]) -> None:
    """Refuses a gateway address or name declared twice (meter and DAU pollers alike)."""
    seen: set[tuple[str, int]] = set()
    labels: set[str] = set()
    for g in gateways:
        if (g.host, g.port) in seen:
            raise ValueError(f"gateway {g.host}:{g.port} is declared twice")
        if g.label in labels:
            raise ValueError(f"gateway name {g.label!r} is used twice")
        seen.add((g.host, g.port))
        labels.add(g.label)


def _unique_meters(devices: list[DeviceSettings]) -> None:
    seen: set[str] = set()
    for d in devices:
        if d.meter in seen:
            raise ValueError(f"meter id {d.meter!r} is declared twice")
        seen.add(d.meter)
