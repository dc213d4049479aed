"""Settings models of the Modbus poller: validation, and a description on every field."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import BaseModel, ValidationError

from connectors.modbus.config import (
    CustomRegister,
    DeviceSettings,
    GatewaySettings,
    ModbusSettings,
)

EXAMPLE = """
enabled = true

[[gateways]]
host = "10.0.0.21"
connections = 2

[[gateways.devices]]
meter = "building-a-main"
unit_id = 1
register_map = "sdm630"

[[gateways.devices]]
meter = "chiller-3"
unit_id = 7
register_map = "custom"
custom = { function = "holding", address = 2048, data_type = "uint32", scale = 0.1 }

[[gateways]]
host = "10.0.0.22"
port = 1502

[[gateways.devices]]
meter = "pv-1"
unit_id = 126
register_map = "sunspec213"
interval_s = 60
"""


def test_a_toml_example_validates_with_defaults() -> None:
    s = ModbusSettings.model_validate(tomllib.loads(EXAMPLE))
    a, b = s.gateways
    assert (a.port, a.connections, a.timeout_s, a.retries, a.dead_after) == (502, 2, 1.0, 2, 3)
    assert a.label == "10.0.0.21:502" and b.label == "10.0.0.22:1502"
    assert a.devices[1].custom == CustomRegister(
        function="holding", address=2048, data_type="uint32", scale=0.1
    )
    assert b.devices[0].interval_s == 60 and b.devices[0].sunspec_base == 40000


def device(**kw: object) -> dict[str, object]:
    return {"meter": "m1", "unit_id": 1, **kw}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (device(register_map="custom"), "`custom` is required"),
        (
            device(custom={"function": "input", "address": 0}),
            "`custom` is required with register_map = 'custom' and only then",
        ),
        (device(unit_id=256), "less than or equal to 255"),
        (device(meter="bad id"), "String should match pattern"),
        (device(interval_s=0), "greater than or equal to 0.1"),
        (device(colour="red"), "Extra inputs are not permitted"),
        (
            device(register_map="custom", custom={"function": "input", "address": 65535}),
            "runs past the last register",
        ),
        (
            device(register_map="custom", custom={"function": "input", "address": 0, "scale": 0}),
            "finite, non-zero",
        ),
    ],
)
def test_bad_devices_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeviceSettings.model_validate(data)


def test_unit_ids_unique_per_gateway_and_meters_unique_across_gateways() -> None:
    with pytest.raises(ValidationError, match="unit id 1 is used twice"):
        GatewaySettings.model_validate({"host": "h", "devices": [device(), device(meter="m2")]})
    g1 = {"host": "a", "devices": [device()]}
    g2 = {"host": "b", "devices": [device()]}
    with pytest.raises(ValidationError, match="meter id 'm1' is declared twice"):
        ModbusSettings.model_validate({"gateways": [g1, g2]})
    with pytest.raises(ValidationError, match="gateway a:502 is declared twice"):
        ModbusSettings.model_validate({"gateways": [g1, {**g1, "devices": []}]})
    with pytest.raises(ValidationError, match="gateway name 'x' is used twice"):
        ModbusSettings.model_validate(
            {"gateways": [{"host": "a", "name": "x"}, {"host": "b", "name": "x"}]}
        )
    with pytest.raises(ValidationError, match="backoff_max_s must be at least backoff_s"):
        GatewaySettings(host="h", backoff_s=5, backoff_max_s=1)


def test_settings_are_frozen() -> None:
    g = GatewaySettings(host="h")
    with pytest.raises(ValidationError):
        g.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("model", [ModbusSettings, GatewaySettings, DeviceSettings, CustomRegister])
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    missing = [name for name, f in model.model_fields.items() if not f.description]
    assert not missing
