"""A CEMS data-acquisition unit served over real Modbus TCP (a pymodbus server on loopback).

The unit's registers are whatever the caller sets (`set_value`, `set_word`) at any time: the
server copies them into its answer when a request arrives, so a test knows exactly what each
poll read. `silent = True` makes the unit stop answering (requests time out), as a unit whose
serial link or power is gone.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import cast

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from connectors.modbus.config import RegisterFunction
from connectors.modbus.decode import DataType, WordOrder, encode

TABLE_SIZE = 1024
"""Registers 0..1023 of each table exist; others answer 'illegal data address'."""


class SimDau:
    """One unit id's holding and input registers, and whether it answers."""

    def __init__(self, unit_id: int = 1) -> None:
        self.unit_id = unit_id
        self.tables: dict[RegisterFunction, list[int]] = {
            "holding": [0] * TABLE_SIZE,
            "input": [0] * TABLE_SIZE,
        }
        self.silent = False
        self.requests = 0

    def set_word(self, function: RegisterFunction, address: int, word: int) -> None:
        self.tables[function][address] = word

    def set_value(
        self,
        address: int,
        value: float,
        data_type: DataType = "float32",
        word_order: WordOrder = "big",
        function: RegisterFunction = "holding",
    ) -> None:
        words = encode(value, data_type, word_order)
        self.tables[function][address : address + len(words)] = words

    def device(self) -> SimDevice:
        bits = [SimData(0, values=False, datatype=SimType.BITS)]

        def table() -> list[SimData]:
            # SimDevice blocks are addressed as on the wire (start 0 = protocol address 0).
            return [SimData(0, values=[0] * TABLE_SIZE, datatype=SimType.REGISTERS)]

        return SimDevice(
            self.unit_id,
            simdata=(bits, list(bits), table(), table()),
            action=functools.partial(SimDau._serve, self),
        )

    async def _serve(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self.silent:
            raise NoSuchIdException(f"unit {self.unit_id} is silent")
        self.requests += 1
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        table = self.tables["holding" if function_code == 3 else "input"]
        registers[: len(table)] = table
        return None


class DauServer:
    """Serves units on one TCP port, in the caller's event loop (`start`/`stop`) or in a thread
    of its own (`start_in_thread`/`stop_thread`, for tests driving a service synchronously)."""

    def __init__(self, units: list[SimDau], host: str = "127.0.0.1", port: int = 0) -> None:
        self.units = units
        self.host = host
        self.port = port
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> int:
        server = ModbusTcpServer(
            [u.device() for u in self.units],
            address=(self.host, self.port),
            ignore_missing_devices=True,
        )
        await server.serve_forever(background=True)
        self._server = server
        listener = cast(asyncio.Server, server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]

    def start_in_thread(self) -> int:
        started = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="sim-dau", daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("the simulated DAU did not start")
        return self.port

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
