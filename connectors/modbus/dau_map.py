"""Reading one DAU's register map: HJ 212 code -> (value, data flag), with the bad values named.

Registers are read in as few requests as the map allows: the values and state registers of one
table that touch or overlap are read together (up to 125 registers a request). Gaps are never
read across: a DAU may answer "illegal data address" for registers it does not implement.

A value becomes a reading and a flag, never silently nothing and never a made-up number:

- not a number (NaN or infinite float): no value, flag D (fault), problem `not_a_number`;
- above `valid_max`: the value with flag T (over range), problem `above_range`;
- below `valid_min`: the value with flag D, problem `below_range` (a negative concentration
  is an analyser fault, not a measurement);
- a state register whose value `flag_values` does not list: flag D, problem `unknown_flag`.

A state register that says something other than N wins over the range checks (a calibration
gas above the range is still calibration, C). Everything else is N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from connectors.modbus.config import RegisterFunction
from connectors.modbus.dau_config import DauRegister, DauSettings
from connectors.modbus.decode import decode, register_count
from connectors.modbus.errors import ReadingError
from connectors.modbus.registers import MAX_READ_REGISTERS, RegisterReader

Problem = str
"""not_a_number | above_range | below_range | unknown_flag"""


@dataclass(frozen=True)
class DauReading:
    """One poll of a unit: code -> (value or None, HJ 212 flag letter), in map order."""

    values: dict[str, tuple[float | None, str]]
    problems: dict[str, Problem]
    """Codes whose value or state was not usable, and why."""


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `address` of one table."""

    function: RegisterFunction
    address: int
    count: int


def plan_blocks(registers: list[DauRegister]) -> list[Block]:
    """The read requests covering every value and state register of a map."""
    spans: list[tuple[RegisterFunction, int, int]] = []
    for r in registers:
        spans.append((r.function, r.address, r.address + register_count(r.data_type)))
        if r.flag_address is not None:
            spans.append((r.flag_function, r.flag_address, r.flag_address + 1))
    blocks: list[Block] = []
    for function in ("holding", "input"):
        ranges = sorted((lo, hi) for f, lo, hi in spans if f == function)
        cur: list[int] | None = None
        for lo, hi in ranges:
            if cur is not None and lo <= cur[1] and max(hi, cur[1]) - cur[0] <= MAX_READ_REGISTERS:
                cur[1] = max(cur[1], hi)
                continue
            if cur is not None:
                blocks.append(Block(function, cur[0], cur[1] - cur[0]))
            cur = [lo, hi]
        if cur is not None:
            blocks.append(Block(function, cur[0], cur[1] - cur[0]))
    return blocks


class DauMap:
    """Reads one unit's map (one instance per unit; the plan is made once)."""

    def __init__(self, unit: DauSettings) -> None:
        self.unit = unit
        self.blocks = plan_blocks(unit.registers)

    async def read(self, read: RegisterReader) -> DauReading:
        words: dict[tuple[RegisterFunction, int], int] = {}
        for b in self.blocks:
            got = list(await read(b.function, b.address, b.count))
            if len(got) != b.count:
                raise ReadingError(f"asked {b.count} registers at {b.address}, got {len(got)}")
            for i, w in enumerate(got):
                words[(b.function, b.address + i)] = w
        values: dict[str, tuple[float | None, str]] = {}
        problems: dict[str, Problem] = {}
        for r in self.unit.registers:
            n = register_count(r.data_type)
            regs = [words[(r.function, r.address + i)] for i in range(n)]
            value, flag, problem = _judge(r, float(decode(regs, r.data_type, r.word_order)))
            if r.flag_address is not None:
                state = words[(r.flag_function, r.flag_address)]
                letter = self.unit.flag_values.get(state)
                if letter is None:
                    flag, problem = "D", problem or "unknown_flag"
                elif letter != "N":
                    flag = letter
            values[r.code] = (value, flag)
            if problem is not None:
                problems[r.code] = problem
        return DauReading(values, problems)


def _judge(r: DauRegister, raw: float) -> tuple[float | None, str, Problem | None]:
    """(value, flag, problem) of a decoded register under the map's scale and range."""
    if not math.isfinite(raw):
        return None, "D", "not_a_number"
    v = raw * r.scale
    if r.valid_max is not None and v > r.valid_max:
        return v, "T", "above_range"
    if r.valid_min is not None and v < r.valid_min:
        return v, "D", "below_range"
    return v, "N", None
