"""DAU register maps in the configuration: a good one loads; wrong ones are refused with the
file, the key and the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from carbonstream.config import Config, ConfigError, load_config

SITE = """
[[cems.sites]]
id = "unit-1"
mn = "MN0001"
password = "123456"
[[cems.sites.channels]]
code = "a05001"
unit = "%"
[[cems.sites.channels]]
code = "a19001"
"""

UNIT = """
[[cems.modbus.gateways]]
host = "127.0.0.1"
port = 1502
[[cems.modbus.gateways.units]]
site = "unit-1"
unit_id = 3
interval_s = 5
flag_values = { 0 = "N", 1 = "C", 2 = "M" }
[[cems.modbus.gateways.units.registers]]
code = "a00000"
address = 0
[[cems.modbus.gateways.units.registers]]
code = "a05001"
address = 2
valid_max = 25.0
flag_address = 10
[[cems.modbus.gateways.units.registers]]
code = "a19001"
function = "input"
address = 4
data_type = "int16"
scale = 0.1
"""


def problems(write_config: Callable[[str], Path], text: str) -> tuple[Path, list[str]]:
    path = write_config(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    return path, err.value.problems


def test_a_register_map_loads(make_config: Callable[[str], Config]) -> None:
    config = make_config(SITE + UNIT)
    (gw,) = config.cems.modbus.gateways
    (unit,) = gw.units
    assert unit.codes == ["a00000", "a05001", "a19001"]
    assert unit.flag_values == {0: "N", 1: "C", 2: "M"}
    assert unit.registers[2].function == "input" and unit.registers[2].scale == 0.1
    assert gw.label == "127.0.0.1:1502" and gw.dead_after == 3


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (
            ('site = "unit-1"', 'site = "unit-9"'),
            "cems.modbus.gateways[0].units[0].site",
            "'unit-9' is not declared in [[cems.sites]]",
        ),
        (
            ('code = "a19001"\nfunction', 'code = "a21026"\nfunction'),
            "cems.modbus.gateways[0].units[0].registers[2].code",
            "'a21026' is not a channel of site 'unit-1'",
        ),
        (
            ('code = "a00000"\naddress = 0', 'code = "a19001"\naddress = 0'),
            "cems.modbus.gateways[0].units[0]",
            "code 'a19001' is mapped twice",
        ),
        (
            ('data_type = "int16"', 'data_type = "int17"'),
            "cems.modbus.gateways[0].units[0].registers[2].data_type",
            "Input should be",
        ),
        (
            ("scale = 0.1", "scale = 0.0"),
            "cems.modbus.gateways[0].units[0].registers[2].scale",
            "finite, non-zero",
        ),
        (
            ("valid_max = 25.0", "valid_max = 25.0\nvalid_min = 30.0"),
            "cems.modbus.gateways[0].units[0].registers[1]",
            "valid_min must be below valid_max",
        ),
        (
            ("address = 4", "address = 65535\ndata_type_x = 1"),
            "cems.modbus.gateways[0].units[0].registers[2].data_type_x",
            "unknown key",
        ),
        (
            ("address = 2\n", "address = 65535\n"),
            "cems.modbus.gateways[0].units[0].registers[1]",
            "runs past the last register",
        ),
        (
            ('2 = "M"', '2 = "Q"'),
            "cems.modbus.gateways[0].units[0].flag_values.2",
            "Input should be",
        ),
        (
            ("interval_s = 5", "interval_s = 0.5"),
            "cems.modbus.gateways[0].units[0].interval_s",
            "greater than or equal to 1",
        ),
    ],
)
def test_a_wrong_register_map_is_refused_with_file_key_and_reason(
    write_config: Callable[[str], Path], change: tuple[str, str], key: str, reason: str
) -> None:
    text = '[storage]\ndata_dir = "{data_dir}"\n' + SITE + UNIT
    assert change[0] in text
    path, found = problems(write_config, text.replace(change[0], change[1], 1))
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}: {key}: "), found
    assert reason in found[0], found


def test_a_channel_without_a_register_is_refused(write_config: Callable[[str], Path]) -> None:
    text = SITE + '[[cems.sites.channels]]\ncode = "a21026"\n' + UNIT
    path, found = problems(write_config, text)
    assert found == [
        f"{path}: cems.modbus.gateways[0].units[0].registers: no register for a21026 of site "
        "'unit-1' (map every channel, or list only the mapped ones in the site's "
        "[[cems.sites.channels]])"
    ]


def test_a_fuel_meter_code_and_minute_packet_sites_are_refused(
    write_config: Callable[[str], Path],
) -> None:
    fuel = (
        SITE
        + '[[cems.sites.fuel_meters]]\ncode = "f01"\n'
        + UNIT.replace('code = "a19001"\nfunction', 'code = "f01"\nfunction')
    )
    path, found = problems(write_config, fuel)
    assert len(found) == 1 and "registers[2].code: 'f01' is a fuel meter" in found[0], found
    minutes = SITE.replace('password = "123456"', 'password = "1"\nminutes_from = "minute_packets"')
    path, found = problems(write_config, minutes + UNIT)
    assert len(found) == 1 and found[0].startswith(
        f"{path}: cems.modbus.gateways[0].units[0].site: "
    )
    assert "minutes_from = 'realtime'" in found[0]


def test_a_site_polled_twice_is_refused(write_config: Callable[[str], Path]) -> None:
    second = UNIT.replace("port = 1502", "port = 1503")
    path, found = problems(write_config, SITE + UNIT + second)
    assert len(found) == 1 and found[0].startswith(f"{path}: cems.modbus: ")
    assert "site 'unit-1' is polled by two units" in found[0]
