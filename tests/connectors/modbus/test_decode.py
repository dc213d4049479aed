"""Register decoding: exact values from hand-built words, cross-checked with pymodbus."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from connectors.modbus.decode import (
    DATA_TYPES,
    DataType,
    WordOrder,
    decode,
    encode,
    register_count,
    sunspec_raw,
    sunspec_scale_factor,
    times_power_of_ten,
)
from connectors.modbus.errors import ReadingError

# Hand-built words: IEEE 754 and two's complement worked out by hand, not by the code under test.
HAND_BUILT: list[tuple[DataType, list[int], int | float]] = [
    ("uint16", [0xFFFF], 65_535),
    ("int16", [0xFFFF], -1),
    ("int16", [0x8000], -32_768),
    ("uint32", [0x0001, 0x0002], 65_538),
    ("int32", [0xFFFF, 0xFFFE], -2),
    ("uint64", [0x0123, 0x4567, 0x89AB, 0xCDEF], 0x0123_4567_89AB_CDEF),
    ("int64", [0xFFFF, 0xFFFF, 0xFFFF, 0xFF85], -123),
    ("float32", [0x449A, 0x5000], 1234.5),  # 1.00110100101 x 2^10
    ("float32", [0xC2F6, 0xE979], -123.456001281738281),  # float32 nearest -123.456
    ("float32", [0x4B18, 0x9680], 10_000_000.0),
    ("float64", [0x3FF0, 0x0000, 0x0000, 0x0000], 1.0),
    ("float64", [0x4093, 0x4A00, 0x0000, 0x0000], 1234.5),
]


@pytest.mark.parametrize(("data_type", "words", "value"), HAND_BUILT)
def test_big_endian_words_decode_exactly(
    data_type: DataType, words: list[int], value: int | float
) -> None:
    got = decode(words, data_type, "big")
    assert got == value and type(got) is type(value)
    assert encode(value, data_type, "big") == words


@pytest.mark.parametrize(("data_type", "words", "value"), HAND_BUILT)
def test_little_word_order_is_the_words_reversed(
    data_type: DataType, words: list[int], value: int | float
) -> None:
    assert decode(list(reversed(words)), data_type, "little") == value
    assert encode(value, data_type, "little") == list(reversed(words))


def test_sdm630_style_float32_with_its_usual_register_value() -> None:
    # 0x48 import energy of an SDM630 showing 152.39 kWh: float32 0x431863D7
    assert decode([0x4318, 0x63D7], "float32") == pytest.approx(152.39, abs=1e-5)
    assert decode([0x4318, 0x63D7], "float32") == struct.unpack(">f", bytes.fromhex("431863D7"))[0]


def test_nan_decodes_to_nan_and_is_refused_later() -> None:
    assert math.isnan(decode([0x7FC0, 0x0000], "float32"))


@pytest.mark.parametrize("bad", [[1], [1, 2, 3], [0x1_0000, 0], [-1, 0]])
def test_wrong_word_count_or_range_is_a_value_error(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        decode(bad, "uint32")


_PYMODBUS = {
    "uint16": ModbusClientMixin.DATATYPE.UINT16,
    "int16": ModbusClientMixin.DATATYPE.INT16,
    "uint32": ModbusClientMixin.DATATYPE.UINT32,
    "int32": ModbusClientMixin.DATATYPE.INT32,
    "uint64": ModbusClientMixin.DATATYPE.UINT64,
    "int64": ModbusClientMixin.DATATYPE.INT64,
    "float32": ModbusClientMixin.DATATYPE.FLOAT32,
    "float64": ModbusClientMixin.DATATYPE.FLOAT64,
}


@given(
    data_type=st.sampled_from(DATA_TYPES),
    word_order=st.sampled_from(["big", "little"]),
    words=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4),
)
def test_agrees_with_pymodbus_on_any_words(
    data_type: DataType, word_order: WordOrder, words: list[int]
) -> None:
    words = words[: register_count(data_type)]
    ours = decode(words, data_type, word_order)
    theirs = ModbusClientMixin.convert_from_registers(
        words, _PYMODBUS[data_type], word_order=word_order
    )
    assert isinstance(theirs, int | float)
    if isinstance(ours, float) and math.isnan(ours):
        assert math.isnan(theirs)
    else:
        assert ours == theirs
        assert encode(ours, data_type, word_order) == words


@pytest.mark.parametrize(
    ("raw", "exponent", "expected"),
    [
        (12_345, -2, 123.45),
        (12_345_678, -4, 1234.5678),
        (123_456_789, -5, 1234.56789),
        (7, 3, 7000.0),
        (-42, -1, -4.2),
        (1234.5, -3, 1.2345),
        (5, 0, 5.0),
    ],
)
def test_power_of_ten_scaling_is_correctly_rounded(
    raw: int | float, exponent: int, expected: float
) -> None:
    assert times_power_of_ten(raw, exponent) == expected


def test_sunspec_values_and_signs() -> None:
    assert sunspec_raw([0x0001, 0x0000], "acc32", "TotWhImp") == 65_536
    assert sunspec_raw([0xFFFF, 0xFFFE], "acc32", "TotWhImp") == 0xFFFF_FFFE
    assert sunspec_raw([0xFFFE], "int16", "W") == -2
    assert sunspec_raw([0x7FFF], "int16", "W") == 32_767
    assert sunspec_raw([0x4B18, 0x9680], "float32", "TotWhImp") == 10_000_000.0
    assert sunspec_scale_factor(0xFFFE, "TotWh_SF") == -2
    assert sunspec_scale_factor(0x0003, "TotWh_SF") == 3


@pytest.mark.parametrize(
    ("words", "point_type"),
    [
        ([0x0000, 0x0000], "acc32"),
        ([0xFFFF, 0xFFFF], "uint32"),
        ([0x8000, 0x0000], "int32"),
        ([0x8000], "int16"),
        ([0xFFFF], "uint16"),
        ([0x0000], "acc16"),
        ([0x7FC0, 0x0000], "float32"),
        ([0xFFC0, 0x0000], "float32"),
    ],
)
def test_sunspec_not_implemented_is_a_reading_error(words: list[int], point_type: str) -> None:
    with pytest.raises(ReadingError, match="not implemented"):
        sunspec_raw(words, point_type, "X")  # type: ignore[arg-type]


@pytest.mark.parametrize("word", [0x8000, 11, 0xFFF5])  # not implemented, +11, -11
def test_sunspec_scale_factor_sentinel_or_out_of_range_is_a_reading_error(word: int) -> None:
    with pytest.raises(ReadingError):
        sunspec_scale_factor(word, "TotWh_SF")


def test_infinite_float_is_a_reading_error() -> None:
    with pytest.raises(ReadingError, match="not a number"):
        sunspec_raw([0x7F80, 0x0000], "float32", "TotWhImp")
