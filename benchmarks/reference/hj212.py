"""A straightforward pure-Python HJ 212-2017 decoder: what one would write without the Rust core.

Used as the speed reference of benchmarks/bench_hj212.py and as an independent decoder in tests
(the end-to-end test decodes what the simulator sent with it, not with the code under test).
Follows reference/hj212/README.md: `##LLLL<segment>CCCC\\r\\n`, CRC of Appendix A computed bit
by bit as printed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

NUMERIC_SUFFIXES = {"Rtd", "Min", "Avg", "Max", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax", "Cou"}


class DecodeError(ValueError):
    pass


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@dataclass
class Packet:
    header: dict[str, str]
    data_time: datetime | None
    values: dict[tuple[str, str], float | str] = field(default_factory=dict)

    @property
    def cn(self) -> int:
        return int(self.header["CN"])

    def number(self, code: str, suffix: str) -> float | None:
        v = self.values.get((code, suffix))
        return v if isinstance(v, float) else None

    def flag(self, code: str) -> str | None:
        v = self.values.get((code, "Flag"))
        return v if isinstance(v, str) else None


def decode(frame: bytes, verify_crc: bool = True) -> Packet:
    """The packet of one frame; `verify_crc=False` skips the (slow, bitwise) CRC."""
    if not frame.startswith(b"##") or not frame.endswith(b"\r\n"):
        raise DecodeError("not a frame")
    length = int(frame[2:6])
    segment = frame[6:-6]
    if len(segment) != length:
        raise DecodeError(f"length {length} != {len(segment)}")
    if verify_crc and crc16(segment) != int(frame[-6:-2], 16):
        raise DecodeError("CRC mismatch")
    text = segment.decode()
    head, _, cp = text.partition("CP=&&")
    if not cp.endswith("&&"):
        raise DecodeError("no CP")
    header = dict(item.split("=", 1) for item in head.split(";") if item)
    packet = Packet(header, None)
    for group in cp[:-2].split(";"):
        for item in group.split(","):
            if "=" not in item:
                continue
            key, value = item.split("=", 1)
            if key == "DataTime":
                packet.data_time = datetime.strptime(value, "%Y%m%d%H%M%S")
                continue
            code, _, suffix = key.partition("-")
            if suffix in NUMERIC_SUFFIXES:
                try:
                    packet.values[(code, suffix)] = float(value)
                except ValueError:
                    packet.values[(code, suffix)] = value
            else:
                packet.values[(code, suffix)] = value
    return packet
