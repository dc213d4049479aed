"""Register maps read from hand-built device register images (SDM630, SunSpec, custom)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from connectors.modbus.config import CustomRegister, DeviceSettings, RegisterFunction
from connectors.modbus.errors import DeviceException, ReadingError
from connectors.modbus.registers import (
    SUNSPEC_203,
    SUNSPEC_213,
    FixedRegisterMap,
    MeterMap,
    SunSpecMeterMap,
    custom_map,
    meter_map,
)

SUNS = [0x5375, 0x6E53]
NAN32 = [0x7FC0, 0x0000]


class Image:
    """A device's registers as (table, address) -> word; reading a hole is an exception 0x02,
    as a device answers. Records the requests."""

    def __init__(self) -> None:
        self.words: dict[tuple[RegisterFunction, int], int] = {}
        self.requests: list[tuple[RegisterFunction, int, int]] = []

    def put(self, table: RegisterFunction, address: int, words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            self.words[(table, address + i)] = w

    async def read(self, function: RegisterFunction, address: int, count: int) -> list[int]:
        self.requests.append((function, address, count))
        try:
            return [self.words[(function, a)] for a in range(address, address + count)]
        except KeyError:
            raise DeviceException(0x02, 3 if function == "holding" else 4) from None


def read(m: MeterMap, image: Image) -> float:
    return asyncio.run(m.read(image.read))


def sdm630(words_at_0x48: list[int]) -> Image:
    image = Image()
    image.put("input", 0, [0] * 0x158)
    image.put("input", 0x48, words_at_0x48)
    image.put("input", 0x156, [0x449A, 0x5000])
    return image


def test_sdm630_reads_import_energy_from_input_register_0x48() -> None:
    image = sdm630([0x4B18, 0x9680])  # 10,000,000.0 kWh
    m = meter_map(DeviceSettings(meter="m", unit_id=1, register_map="sdm630"))
    assert read(m, image) == 10_000_000.0
    assert image.requests == [("input", 0x48, 2)]
    total = meter_map(DeviceSettings(meter="m", unit_id=1, register_map="sdm630_total"))
    assert read(total, image) == 1234.5


@pytest.mark.parametrize(
    ("words", "why"), [(NAN32, "not a number"), ([0xC2F6, 0xE979], "negative")]
)
def test_sdm630_nan_or_negative_energy_is_a_reading_error(words: list[int], why: str) -> None:
    m = meter_map(DeviceSettings(meter="m", unit_id=1, register_map="sdm630"))
    with pytest.raises(ReadingError, match=why):
        read(m, sdm630(words))


def test_sdm630_does_not_answer_holding_reads() -> None:
    image = sdm630([0x449A, 0x5000])
    m = FixedRegisterMap("holding", 0x48, "float32")
    with pytest.raises(DeviceException, match="0x02"):
        read(m, image)


def common_model(length: int = 66) -> list[int]:
    return [1, length, *([0x2020] * length)]


def model_203(tot_wh_imp: list[int], sf: int) -> list[int]:
    regs = [0x8000] * (2 + SUNSPEC_203.length)
    regs[0:2] = [203, SUNSPEC_203.length]
    regs[46:48] = tot_wh_imp
    regs[54] = sf & 0xFFFF
    return regs


def model_213(tot_wh_imp: list[int]) -> list[int]:
    regs = [213, SUNSPEC_213.length, *(NAN32 * 62)]
    regs[68:70] = tot_wh_imp
    return regs


def sunspec(*models: list[int], base: int = 40000) -> Image:
    image = Image()
    regs = [*SUNS]
    for m in models:
        regs += m
    image.put("holding", base, [*regs, 0xFFFF, 0])
    return image


@pytest.mark.parametrize(
    ("raw", "sf", "kwh"),
    [
        ([0x075B, 0xCD15], -2, 1234.56789),  # 123,456,789 x 10^-2 Wh
        ([0x075B, 0xCD15], -1, 12345.6789),
        ([0x0000, 0x3039], 0, 12.345),  # 12,345 Wh
        ([0x0000, 0x0005], 3, 5.0),  # 5 x 10^3 Wh
        ([0xFFFF, 0xFFFE], 1, 42949672.94),  # the largest acc32 but one, in 10 Wh
    ],
)
def test_sunspec_203_energy_is_tot_wh_imp_times_its_scale_factor(
    raw: list[int], sf: int, kwh: float
) -> None:
    image = sunspec(common_model(), model_203(raw, sf))
    m = meter_map(DeviceSettings(meter="m", unit_id=1, register_map="sunspec203"))
    assert read(m, image) == kwh


def test_sunspec_203_walks_the_model_list_once_then_reads_in_one_request() -> None:
    inverter = [101, 50, *([0] * 50)]
    image = sunspec(common_model(65), inverter, model_203([0, 1000], 0))
    m = SunSpecMeterMap(SUNSPEC_203)
    assert read(m, image) == 1.0
    start = 40000 + 2 + 67 + 52
    assert m.model_address == start
    assert image.requests == [
        ("holding", 40000, 2),  # SunS
        ("holding", 40002, 2),  # model 1, L = 65
        ("holding", 40069, 2),  # model 101, L = 50
        ("holding", start, 2),  # model 203
        ("holding", start, 55),  # id .. TotWh_SF
    ]
    image.requests.clear()
    assert read(m, image) == 1.0
    assert image.requests == [("holding", start, 55)]


def test_sunspec_at_another_base_address() -> None:
    image = sunspec(common_model(), model_203([0, 2000], -3), base=50000)
    settings = DeviceSettings(meter="m", unit_id=1, register_map="sunspec203", sunspec_base=50000)
    assert read(meter_map(settings), image) == 0.002


@pytest.mark.parametrize(
    ("raw", "sf", "why"),
    [
        ([0, 0], 0, "TotWhImp = 0x00000000 \\(not implemented\\)"),
        ([0, 5], -32768, "TotWh_SF = 0x8000 \\(not implemented\\)"),
        ([0, 5], 12, "outside -10..10"),
    ],
)
def test_sunspec_203_sentinels_are_reading_errors(raw: list[int], sf: int, why: str) -> None:
    image = sunspec(common_model(), model_203(raw, sf))
    with pytest.raises(ReadingError, match=why):
        read(SunSpecMeterMap(SUNSPEC_203), image)


def test_sunspec_without_marker_or_model_is_a_reading_error() -> None:
    image = Image()
    image.put("holding", 40000, [0, 0, 0xFFFF, 0])
    with pytest.raises(ReadingError, match="no SunSpec marker"):
        read(SunSpecMeterMap(SUNSPEC_203), image)
    with pytest.raises(ReadingError, match="has no SunSpec model 213"):
        read(SunSpecMeterMap(SUNSPEC_213), sunspec(common_model(), model_203([0, 1], 0)))


def test_a_moved_sunspec_model_is_found_again() -> None:
    image = sunspec(common_model(66), model_203([0, 1000], 0))
    m = SunSpecMeterMap(SUNSPEC_203)
    assert read(m, image) == 1.0
    moved = sunspec(common_model(65), model_203([0, 3000], 0))  # one register earlier
    moved.put("holding", 40070 + 55, [0])  # what used to be there is not the model any more
    with pytest.raises(ReadingError, match="no longer at 40070"):
        read(m, moved)
    assert m.model_address is None
    assert read(m, moved) == 3.0 and m.model_address == 40069


def test_sunspec_213_float_wh_to_kwh() -> None:
    image = sunspec(common_model(), model_213([0x4B18, 0x9680]))  # 10,000,000.0 Wh
    m = meter_map(DeviceSettings(meter="m", unit_id=1, register_map="sunspec213"))
    assert read(m, image) == 10_000.0
    assert image.requests[-1] == ("holding", 40070, 70)
    with pytest.raises(ReadingError, match="NaN"):
        read(SunSpecMeterMap(SUNSPEC_213), sunspec(common_model(), model_213(NAN32)))


def test_custom_little_endian_uint32_with_a_multiplier() -> None:
    image = Image()
    image.put("holding", 100, [0xCD15, 0x075B])  # 123,456,789 little word order
    reg = CustomRegister(
        function="holding", address=100, data_type="uint32", word_order="little", scale=0.01
    )
    assert read(custom_map(reg), image) == 123_456_789 * 0.01


def test_custom_with_an_adjacent_scale_factor_register_reads_once() -> None:
    image = Image()
    image.put("input", 10, [0xFFFD, 0x0000, 0x3039])  # sf = -3, then uint32 12,345
    reg = CustomRegister(
        function="input", address=11, data_type="int32", scale_factor_address=10, unit="MWh"
    )
    m = custom_map(reg)
    assert read(m, image) == 12.345 and m.unit == "MWh"
    assert image.requests == [("input", 10, 3)]


def test_custom_with_a_distant_scale_factor_reads_it_first() -> None:
    image = Image()
    image.put("holding", 0, [0x0002])
    image.put("holding", 1000, [0xFFFF, 0xFF85])  # int32 -123
    reg = CustomRegister(
        function="holding", address=1000, data_type="int32", scale_factor_address=0
    )
    assert read(custom_map(reg), image) == -12_300.0  # signed custom values are allowed
    assert image.requests == [("holding", 0, 1), ("holding", 1000, 2)]


def test_short_answer_is_a_reading_error() -> None:
    async def short(function: RegisterFunction, address: int, count: int) -> list[int]:
        return [0]

    with pytest.raises(ReadingError, match="got 1"):
        asyncio.run(FixedRegisterMap("input", 0, "float32").read(short))
