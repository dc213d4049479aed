"""Register words <-> numbers, scaling, and the "no value" sentinels of SunSpec.

A Modbus register is a 16-bit word sent most significant byte first. Values wider than one
register span consecutive registers; their order is the `word order`:

- "big": most significant word first (ABCD, the Modbus convention: Eastron, SunSpec),
- "little": least significant word first (CDAB, some PLCs and meters).

Byte-swapped layouts (BADC/DCBA) are not supported: no meter in our fleet uses them.

Everything here is exact: integers decode to Python ints, float32 decodes to the double of the
same value, and power-of-ten scale factors are applied with one correctly rounded operation.
A value that is not a number (NaN, a SunSpec "not implemented" sentinel, a scale factor out
of range) raises `ReadingError`: it never becomes a number, least of all a zero.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal, get_args

from connectors.modbus.errors import ReadingError

DataType = Literal["uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
WordOrder = Literal["big", "little"]
DATA_TYPES: tuple[str, ...] = get_args(DataType)

_STRUCT: dict[str, tuple[str, int]] = {
    "uint16": ("H", 1),
    "int16": ("h", 1),
    "uint32": ("I", 2),
    "int32": ("i", 2),
    "uint64": ("Q", 4),
    "int64": ("q", 4),
    "float32": ("f", 2),
    "float64": ("d", 4),
}


def register_count(data_type: DataType) -> int:
    """Registers (16-bit words) a value of `data_type` occupies."""
    return _STRUCT[data_type][1]


def decode(words: Sequence[int], data_type: DataType, word_order: WordOrder = "big") -> int | float:
    """The value stored in `words` (exactly `register_count(data_type)` of them)."""
    fmt, n = _STRUCT[data_type]
    if len(words) != n:
        raise ValueError(f"{data_type} needs {n} registers, got {len(words)}")
    ordered = words if word_order == "big" else list(reversed(words))
    try:
        data = b"".join(int(w).to_bytes(2, "big") for w in ordered)
    except OverflowError:
        raise ValueError(f"register words must be 0..65535, got {list(words)}") from None
    value: int | float = struct.unpack(">" + fmt, data)[0]
    return value


def encode(value: int | float, data_type: DataType, word_order: WordOrder = "big") -> list[int]:
    """Register words holding `value` (the inverse of `decode`)."""
    fmt, _ = _STRUCT[data_type]
    data = struct.pack(">" + fmt, value)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if word_order == "big" else list(reversed(words))


def times_power_of_ten(raw: int | float, exponent: int) -> float:
    """raw x 10**exponent, correctly rounded to a double for integer `raw`.

    A negative exponent divides by the exact integer 10**-exponent instead of multiplying by an
    inexact 0.1**n, so 12345 x 10**-2 is exactly the double nearest 123.45.
    """
    if exponent >= 0:
        return float(raw * int(10**exponent))
    return raw / int(10 ** (-exponent))


def require_finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ReadingError(f"{what} is {value} (not a number)")
    return value


# --- SunSpec ---------------------------------------------------------------------------------
# Each SunSpec point type has a value meaning "not implemented / not available"
# (SunSpec Information Model Specification, point types).

SunSpecType = Literal[
    "int16", "uint16", "acc16", "int32", "uint32", "acc32", "float32", "sunssf", "int64", "acc64"
]

SUNSPEC_NOT_IMPLEMENTED: dict[str, int] = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "acc16": 0x0000,
    "sunssf": 0x8000,
    "int32": 0x8000_0000,
    "uint32": 0xFFFF_FFFF,
    "acc32": 0x0000_0000,
    "int64": 0x8000_0000_0000_0000,
    "acc64": 0x0000_0000_0000_0000,
}
"""Raw (unsigned) register contents that mean "not implemented"; float32 uses NaN."""

_UNSIGNED_BY_WORDS: dict[int, DataType] = {1: "uint16", 2: "uint32", 4: "uint64"}

SUNSSF_RANGE = range(-10, 11)
"""Valid SunSpec scale factors (sunssf): 10**-10 .. 10**10."""


def sunspec_raw(words: Sequence[int], point_type: SunSpecType, name: str) -> int | float:
    """The value of a SunSpec point, or ReadingError if it is not implemented / not a number.

    Integer types return a Python int (signed types signed), float32 a float.
    """
    if point_type == "float32":
        value = float(decode(words, "float32"))
        if math.isnan(value):
            raise ReadingError(f"SunSpec {name} is NaN (not implemented)")
        return require_finite(value, f"SunSpec {name}")
    unsigned_type = _UNSIGNED_BY_WORDS.get(len(words))
    if unsigned_type is None:
        raise ValueError(f"SunSpec {name}: {len(words)} registers is not a SunSpec point size")
    width = 16 * len(words)
    unsigned = int(decode(words, unsigned_type))
    if unsigned == SUNSPEC_NOT_IMPLEMENTED[point_type]:
        raise ReadingError(f"SunSpec {name} = 0x{unsigned:0{width // 4}X} (not implemented)")
    if point_type in ("int16", "sunssf", "int32", "int64") and unsigned >= 1 << (width - 1):
        return unsigned - (1 << width)
    return unsigned


def sunspec_scale_factor(word: int, name: str) -> int:
    """A sunssf register as an exponent, or ReadingError if not implemented / out of range."""
    sf = sunspec_raw([word], "sunssf", name)
    assert isinstance(sf, int)
    if sf not in SUNSSF_RANGE:
        raise ReadingError(f"SunSpec {name} = {sf} (outside -10..10)")
    return sf
