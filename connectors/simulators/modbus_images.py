"""Register images of simulated Modbus meters, and the words of their energy registers.

Values are encoded with pymodbus's own converter (`convert_to_registers`), not with
connectors.modbus.decode, so the poller's decoder is checked against an independent encoder.

- SDM630: input registers 0x0000..0x0157, float32 big-endian; import energy at 0x0048 and
  total energy at 0x0156 (kWh, no export), plausible voltages and frequency, zeros elsewhere.
- SunSpec 203 / 213: holding registers from 40000: "SunS", the common model 1 (L = 66, or 65 as
  older devices have it, so a poller must walk the list), the meter model, the end marker.
  Points the simulator does not model carry SunSpec's "not implemented" values (int16 0x8000,
  acc32 0, float32 NaN), as real devices do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin

from connectors.modbus.registers import (
    SDM630_IMPORT_KWH,
    SDM630_TOTAL_KWH,
    SUNSPEC_203,
    SUNSPEC_213,
    SUNSPEC_BASE,
    SUNSPEC_END,
    SUNSPEC_MARKER,
    SunSpecMeterLayout,
)

SimMap = Literal["sdm630", "sunspec203", "sunspec213"]
SIM_MAPS: tuple[SimMap, ...] = ("sdm630", "sunspec203", "sunspec213")

_DT = ModbusClientMixin.DATATYPE


def f32(value: float) -> list[int]:
    return ModbusClientMixin.convert_to_registers(float(value), _DT.FLOAT32)


def u32(value: int) -> list[int]:
    return ModbusClientMixin.convert_to_registers(int(value), _DT.UINT32)


def i16(value: int) -> list[int]:
    return ModbusClientMixin.convert_to_registers(int(value), _DT.INT16)


def text(value: str, registers: int) -> list[int]:
    data = value.encode()[: 2 * registers].ljust(2 * registers, b"\0")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


NAN32 = [0x7FC0, 0x0000]
INT16_NI = 0x8000


@dataclass(frozen=True)
class DeviceImage:
    """Initial register contents of one simulated device and where its energy goes."""

    table: Literal["holding", "input"]
    start: int
    registers: list[int]
    model_address: int | None
    """SunSpec: the meter model's id register."""


def sdm630_image() -> DeviceImage:
    regs = [0] * (SDM630_TOTAL_KWH + 2)
    for address, value in ((0x0000, 230.1), (0x0002, 229.8), (0x0004, 230.4), (0x0046, 50.0)):
        regs[address : address + 2] = f32(value)
    return DeviceImage("input", 0, regs, None)


def _common_model(length: int, model: str, serial: str) -> list[int]:
    body = (
        text("carbonstream", 16)
        + text(model, 16)
        + text("", 8)
        + text("1.0", 8)
        + text(serial, 16)
        + [1]  # DA
        + [0x8000]  # Pad (only in L = 66)
    )
    return [1, length, *body[:length]]


def _model_203(sf: int) -> list[int]:
    lay = SUNSPEC_203
    regs = [INT16_NI] * (lay.length + 2)
    regs[0:2] = [lay.model, lay.length]
    regs[6] = i16(-2)[0]  # A_SF (currents themselves not implemented)
    regs[7:11] = [2301, 2301, 2298, 2304]  # PhV, PhVphA..C with V_SF = -1
    regs[15] = i16(-1)[0]
    regs[16:18] = [5000, i16(-2)[0]]  # Hz, Hz_SF
    for acc in range(38, 54, 2):  # TotWhExp..TotWhImpPhC: acc32, 0 = not implemented
        regs[acc : acc + 2] = [0, 0]
    regs[lay.tot_wh_sf or 0] = i16(sf)[0]
    for acc in (*range(55, 71, 2), *range(72, 104, 2)):  # VAh, VArh accumulators
        regs[acc : acc + 2] = [0, 0]
    regs[105:107] = [0, 0]  # Evt
    return regs


def _model_213() -> list[int]:
    lay = SUNSPEC_213
    regs = [lay.model, lay.length]
    for _ in range(61):  # 61 float32 points, A .. TotVArhExpQ4phC
        regs += NAN32
    for offset, value in ((10, 230.1), (12, 230.1), (14, 229.8), (16, 230.4), (26, 50.0)):
        regs[offset : offset + 2] = f32(value)
    regs += [0, 0]  # Evt
    assert len(regs) == lay.length + 2
    return regs


def sunspec_image(register_map: SimMap, common_length: int, sf: int, serial: str) -> DeviceImage:
    layout: SunSpecMeterLayout = SUNSPEC_203 if register_map == "sunspec203" else SUNSPEC_213
    common = _common_model(common_length, f"SIM-{layout.model}", serial)
    model = _model_203(sf) if layout is SUNSPEC_203 else _model_213()
    regs = [*SUNSPEC_MARKER, *common, *model, SUNSPEC_END, 0]
    return DeviceImage("holding", SUNSPEC_BASE, regs, SUNSPEC_BASE + 2 + len(common))


def energy_words(
    register_map: SimMap, counter_ckwh: int, sf: int, model_address: int | None
) -> list[tuple[int, list[int]]]:
    """(address, words) of the energy registers holding `counter_ckwh` (0.01 kWh units)."""
    if register_map == "sdm630":
        words = f32(counter_ckwh / 100)
        return [(SDM630_IMPORT_KWH, words), (SDM630_TOTAL_KWH, words)]
    assert model_address is not None
    if register_map == "sunspec203":
        # Wh = counter x 10 = raw x 10**sf
        return [(model_address + SUNSPEC_203.tot_wh_imp, u32(counter_ckwh * 10 ** (1 - sf)))]
    return [(model_address + SUNSPEC_213.tot_wh_imp, f32(counter_ckwh * 10))]
