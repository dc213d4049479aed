"""Why a poll of a device failed. Each failure becomes the device's `last_error` text."""

from __future__ import annotations

MODBUS_EXCEPTIONS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
ILLEGAL_DATA_ADDRESS = 0x02


class ReadingError(Exception):
    """A device answered, but what it answered is not a usable reading."""


class DeviceException(Exception):
    """A device (or the gateway for it) answered with a Modbus exception response."""

    def __init__(self, code: int, function: int) -> None:
        self.code = code
        self.function = function
        name = MODBUS_EXCEPTIONS.get(code, "unknown exception")
        super().__init__(f"Modbus exception {code:#04x} ({name}) to function {function:#04x}")


class NoResponse(Exception):
    """No answer within the timeout (the device, the gateway or the network is silent)."""


class GatewayUnavailable(Exception):
    """No TCP connection to the gateway (refused, unreachable, or waiting to reconnect)."""
