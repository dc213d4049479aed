"""Register maps: how one energy reading is read out of one device.

Built in (all read kWh):

- Eastron SDM630, input registers (function 04), float32 big-endian:
  0x0048 import active energy (`sdm630`), 0x0156 total active energy (`sdm630_total`).
- SunSpec meters, holding registers (function 03). The device lists its models after the
  "SunS" marker (at 40000 unless configured): each model starts with its id and its length L
  (registers after the two header registers); the list ends with id 0xFFFF. The meter model
  is found by walking that list, once per device (again if it moves). Offsets below are from
  the model's first register (its id), per the SunSpec model definitions:
    * model 203 (wye-connect three-phase meter, integer + scale factor), L = 105:
      TotWhImp acc32 at +46..+47, TotWh_SF sunssf at +54; kWh = TotWhImp x 10**TotWh_SF / 1000.
    * model 213 (same meter, float32), L = 124: TotWhImp float32 at +68..+69 (Wh).
  Each poll reads the model from its id register through the energy point in one request, so
  it also checks that the model is still there.

A "not implemented" sentinel (SunSpec acc32 = 0, sunssf = 0x8000, float32 NaN), a non-finite
float or a negative energy register is a `ReadingError`, never a number.

Custom maps (`CustomRegister`): one value of any supported type and word order, times
10**(scale-factor register) if one is given, times `scale`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from connectors.modbus.config import CustomRegister, DeviceSettings, RegisterFunction
from connectors.modbus.decode import (
    DataType,
    WordOrder,
    decode,
    register_count,
    require_finite,
    sunspec_raw,
    sunspec_scale_factor,
    times_power_of_ten,
)
from connectors.modbus.errors import ILLEGAL_DATA_ADDRESS, DeviceException, ReadingError

MAX_READ_REGISTERS = 125
"""Most registers one read request (function 03/04) may ask for."""

SDM630_IMPORT_KWH = 0x0048
SDM630_EXPORT_KWH = 0x004A
SDM630_TOTAL_KWH = 0x0156

SUNSPEC_BASE = 40000
SUNSPEC_MARKER = (0x5375, 0x6E53)
"""'SunS' in two registers."""
SUNSPEC_END = 0xFFFF
"""Model id that ends the model list."""
SUNSPEC_MAX_MODELS = 64


@dataclass(frozen=True)
class SunSpecMeterLayout:
    """Where the import energy is in a SunSpec meter model (offsets from the model id)."""

    model: int
    length: int
    """L, the registers after the id and length registers."""
    tot_wh_imp: int
    point_type: Literal["acc32", "float32"]
    tot_wh_sf: int | None
    """Offset of TotWh_SF (integer models only)."""

    @property
    def span(self) -> int:
        """Registers from the id through the last one a poll needs."""
        return max(self.tot_wh_imp + 2, (self.tot_wh_sf or 0) + 1)


SUNSPEC_203 = SunSpecMeterLayout(203, 105, tot_wh_imp=46, point_type="acc32", tot_wh_sf=54)
SUNSPEC_213 = SunSpecMeterLayout(213, 124, tot_wh_imp=68, point_type="float32", tot_wh_sf=None)


class RegisterReader(Protocol):
    """Reads `count` registers from `address` of one device; raises if it cannot."""

    async def __call__(
        self, function: RegisterFunction, address: int, count: int
    ) -> Sequence[int]: ...


class MeterMap(ABC):
    """Reads one device's energy register. One instance per device (it may cache layout)."""

    unit: str = "kWh"

    @abstractmethod
    async def read(self, read: RegisterReader) -> float:
        """The reading, from the registers `read` returns. The value register is read last,
        so the reading's time is that of the last response."""


class FixedRegisterMap(MeterMap):
    """A value at a fixed address, optionally with a power-of-ten scale-factor register."""

    def __init__(
        self,
        function: RegisterFunction,
        address: int,
        data_type: DataType,
        word_order: WordOrder = "big",
        scale: float = 1.0,
        scale_factor_address: int | None = None,
        unit: str = "kWh",
        nonnegative: bool = False,
    ) -> None:
        self.function: RegisterFunction = function
        self.address = address
        self.data_type: DataType = data_type
        self.word_order: WordOrder = word_order
        self.scale = scale
        self.scale_factor_address = scale_factor_address
        self.unit = unit
        self.nonnegative = nonnegative

    async def read(self, read: RegisterReader) -> float:
        n = register_count(self.data_type)
        sf = 0
        sf_at = self.scale_factor_address
        if sf_at is None:
            words = await _checked(read, self.function, self.address, n)
        else:
            lo, hi = min(self.address, sf_at), max(self.address + n, sf_at + 1)
            if hi - lo <= MAX_READ_REGISTERS:
                block = await _checked(read, self.function, lo, hi - lo)
                words = block[self.address - lo : self.address - lo + n]
                sf_word = block[sf_at - lo]
            else:
                sf_word = (await _checked(read, self.function, sf_at, 1))[0]
                words = await _checked(read, self.function, self.address, n)
            sf = sunspec_scale_factor(sf_word, f"scale factor at {sf_at}")
        raw = decode(words, self.data_type, self.word_order)
        if isinstance(raw, float):
            require_finite(raw, f"register {self.address} ({self.data_type})")
        value = times_power_of_ten(raw, sf)
        if self.scale != 1.0:
            value *= self.scale
        if self.nonnegative and value < 0:
            raise ReadingError(f"energy register {self.address} is negative ({value})")
        return value


class SunSpecMeterMap(MeterMap):
    """TotWhImp of a SunSpec meter model, in kWh; the model is located by walking the list."""

    def __init__(self, layout: SunSpecMeterLayout, base: int = SUNSPEC_BASE) -> None:
        self.layout = layout
        self.base = base
        self.model_address: int | None = None
        """First register (the id) of the model, once found."""

    async def discover(self, read: RegisterReader) -> int:
        """Walks the model list from the 'SunS' marker to the meter model; its address."""
        marker = await _checked(read, "holding", self.base, 2)
        if tuple(marker) != SUNSPEC_MARKER:
            raise ReadingError(f"no SunSpec marker 'SunS' at {self.base} (got {list(marker)})")
        address = self.base + 2
        for _ in range(SUNSPEC_MAX_MODELS):
            if address + 2 > 65536:
                break
            model_id, length = await _checked(read, "holding", address, 2)
            if model_id == SUNSPEC_END:
                raise ReadingError(f"the device has no SunSpec model {self.layout.model}")
            if model_id == self.layout.model:
                if length + 2 < self.layout.span:
                    raise ReadingError(
                        f"SunSpec model {model_id} at {address} is too short (L = {length})"
                    )
                return address
            address += 2 + length
        raise ReadingError(f"SunSpec model list from {self.base} does not end")

    async def read(self, read: RegisterReader) -> float:
        layout = self.layout
        if self.model_address is None:
            self.model_address = await self.discover(read)
        try:
            block = await _checked(read, "holding", self.model_address, layout.span)
        except DeviceException as exc:
            if exc.code == ILLEGAL_DATA_ADDRESS:
                self.model_address = None  # another device now? Walk the list again.
            raise
        if block[0] != layout.model:
            at, self.model_address = self.model_address, None
            raise ReadingError(f"SunSpec model {layout.model} is no longer at {at}")
        at = layout.tot_wh_imp
        raw = sunspec_raw(block[at : at + 2], layout.point_type, "TotWhImp")
        if layout.tot_wh_sf is None:
            kwh = times_power_of_ten(raw, -3)
        else:
            sf = sunspec_scale_factor(block[layout.tot_wh_sf], "TotWh_SF")
            kwh = times_power_of_ten(raw, sf - 3)
        if kwh < 0:
            raise ReadingError(f"SunSpec TotWhImp is negative ({kwh} kWh)")
        return kwh


async def _checked(
    read: RegisterReader, function: RegisterFunction, address: int, count: int
) -> list[int]:
    words = list(await read(function, address, count))
    if len(words) != count:
        raise ReadingError(f"asked {count} registers at {address}, got {len(words)}")
    return words


def custom_map(reg: CustomRegister) -> FixedRegisterMap:
    return FixedRegisterMap(
        reg.function,
        reg.address,
        reg.data_type,
        reg.word_order,
        reg.scale,
        reg.scale_factor_address,
        reg.unit,
    )


def meter_map(device: DeviceSettings) -> MeterMap:
    """A fresh register map for one device."""
    match device.register_map:
        case "sdm630":
            return FixedRegisterMap("input", SDM630_IMPORT_KWH, "float32", nonnegative=True)
        case "sdm630_total":
            return FixedRegisterMap("input", SDM630_TOTAL_KWH, "float32", nonnegative=True)
        case "sunspec203":
            return SunSpecMeterMap(SUNSPEC_203, device.sunspec_base)
        case "sunspec213":
            return SunSpecMeterMap(SUNSPEC_213, device.sunspec_base)
        case "custom":
            assert device.custom is not None  # the settings validator guarantees it
            return custom_map(device.custom)
