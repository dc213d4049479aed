"""The Modbus fleet simulator: roles, counter events, and what it serves over real TCP.

Served registers are decoded here with pymodbus's own converter, independently of the
poller's decoder.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from connectors.clock import NS_PER_S, ScaledClock
from connectors.modbus.config import GatewaySettings
from connectors.simulators.modbus_fleet import FleetSpec, SimFleet, start_fleet

T0 = 1_800_000_000.0
SPEC = FleetSpec(meters=30, units_per_gateway=15, wrap_after_s=60, replace_after_s=90)
DT = AsyncModbusTcpClient.DATATYPE
QUIET = {"wrapping": 0, "replaced": 0, "dead_silent": 0, "dead_exception": 0}


def test_roles_are_deterministic_and_spread() -> None:
    a, b = SimFleet(SPEC, T0), SimFleet(SPEC, T0)
    assert a.meters == b.meters and a.gateway_count == 2
    assert [m.register_map for m in a.meters[:4]] == [
        "sdm630",
        "sunspec203",
        "sunspec213",
        "sdm630",
    ]
    assert [(m.gateway, m.unit_id) for m in (a.meters[0], a.meters[14], a.meters[15])] == [
        (0, 1),
        (0, 15),
        (1, 1),
    ]
    wrapping = [m for m in a.meters if m.rollover_kwh]
    replaced = [m for m in a.meters if m.replaced_at_s]
    assert len(wrapping) == 2 and all(m.register_map != "sunspec203" for m in wrapping)
    assert [m.wrap_at_s for m in wrapping] == [T0 + 60, T0 + 70]
    assert len(replaced) == 1 and replaced[0].replaced_at_s == T0 + 90
    assert [m.dead for m in a.meters[-2:]] == ["exception", "silent"]
    assert {m.scale_factor for m in a.meters if m.register_map == "sunspec203"} == {0, 1}
    assert {m.common_length for m in a.meters} == {65, 66}


def test_wrapping_meters_wrap_at_their_time_to_near_zero() -> None:
    fleet = SimFleet(SPEC, T0)
    for m in (m for m in fleet.meters if m.rollover_kwh and m.wrap_at_s):
        before = fleet.expected_kwh(m.meter, m.wrap_at_s - 60)
        at = fleet.expected_kwh(m.meter, m.wrap_at_s)
        after = fleet.expected_kwh(m.meter, m.wrap_at_s + 60)
        assert before is not None and at is not None and after is not None
        assert m.rollover_kwh - 5 < before < at == m.rollover_kwh - 0.01
        assert 0 <= after < 5


def test_the_replaced_meter_restarts_near_zero() -> None:
    fleet = SimFleet(SPEC, T0)
    (m,) = (m for m in fleet.meters if m.replaced_at_s)
    assert m.replaced_at_s is not None
    old = fleet.expected_kwh(m.meter, m.replaced_at_s - 1)
    new = fleet.expected_kwh(m.meter, m.replaced_at_s)
    later = fleet.expected_kwh(m.meter, m.replaced_at_s + 3600)
    assert old is not None and new is not None and later is not None
    assert old > 1000 and new == 0.12 and 0.12 < later < 1000


def test_healthy_registers_never_fall_and_dead_meters_have_no_value() -> None:
    fleet = SimFleet(SPEC, T0)
    for m in fleet.meters:
        if m.dead:
            assert fleet.expected_reading(m.meter, T0) is None
            continue
        if m.rollover_kwh or m.replaced_at_s:
            continue
        values = [fleet.expected_reading(m.meter, T0 + 600 * k) for k in range(24)]
        assert values == sorted(values)  # type: ignore[type-var]


def test_served_registers_decode_to_the_expected_values() -> None:
    async def main() -> None:
        clock = ScaledClock(round(T0 * NS_PER_S), rate=1.0)
        fleet = await start_fleet(SPEC, clock)
        gw = fleet.gateways[0]
        client = AsyncModbusTcpClient("127.0.0.1", port=gw.port, timeout=0.3, retries=0)
        await client.connect()
        try:
            for m in gw.meters[:3]:
                t_before = clock.now_s()
                if m.register_map == "sdm630":
                    rr = await client.read_input_registers(0x48, count=2, device_id=m.unit_id)
                    value = client.convert_from_registers(rr.registers, DT.FLOAT32)
                else:
                    hr = (
                        await client.read_holding_registers(40000, count=125, device_id=m.unit_id)
                    ).registers
                    assert hr[0:2] == [0x5375, 0x6E53] and hr[2] == 1
                    at = 4 + hr[3]  # after model 1 (L = 65 or 66)
                    model = hr[at]
                    regs = (
                        await client.read_holding_registers(
                            40000 + at, count=70, device_id=m.unit_id
                        )
                    ).registers
                    if model == 203:
                        wh = client.convert_from_registers(regs[46:48], DT.UINT32)
                        sf = client.convert_from_registers(regs[54:55], DT.INT16)
                        value = wh * 10**sf / 1000  # type: ignore[operator]
                    else:
                        assert model == 213 and regs[1] == 124
                        value = client.convert_from_registers(regs[68:70], DT.FLOAT32) / 1000  # type: ignore[operator]
                t_after = clock.now_s()
                low = fleet.expected_reading(m.meter, t_before)
                high = fleet.expected_reading(m.meter, t_after)
                assert low is not None and high is not None
                assert low <= value <= high  # type: ignore[operator]
                assert value == pytest.approx(high, abs=0.011)
            gw1 = fleet.gateways[1]
            other = AsyncModbusTcpClient("127.0.0.1", port=gw1.port, timeout=0.3, retries=0)
            await other.connect()
            dead = fleet.meters[-2]
            assert dead.dead == "exception" and dead.register_map == "sunspec203"
            rr = await other.read_holding_registers(40000, count=2, device_id=dead.unit_id)
            assert rr.isError() and rr.exception_code == 0x0B
            silent = fleet.meters[-1]
            assert silent.dead == "silent" and silent.register_map == "sunspec213"
            with pytest.raises(ModbusIOException):
                await other.read_holding_registers(40000, count=2, device_id=silent.unit_id)
            other.close()
            assert gw.requests >= 3
        finally:
            client.close()
            await fleet.stop()

    asyncio.run(main())


def test_a_stopped_gateway_refuses_and_restarts_on_the_same_port() -> None:
    async def main() -> None:
        clock = ScaledClock(round(T0 * NS_PER_S), rate=1.0)
        fleet = await start_fleet(FleetSpec(meters=3, **QUIET), clock)
        port = fleet.gateways[0].port
        await fleet.stop_gateway(0)
        assert not fleet.gateways[0].running
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=port, timeout=0.3, retries=0, reconnect_delay=0
        )
        assert not await client.connect()
        await fleet.start_gateway(0)
        assert fleet.gateways[0].port == port
        assert await client.connect()
        rr = await client.read_input_registers(0x48, count=2, device_id=1)
        assert not rr.isError()
        client.close()
        await fleet.stop()

    asyncio.run(main())


@pytest.mark.parametrize("serial_bus", [False, True])
def test_a_serial_bus_gateway_answers_one_request_at_a_time(serial_bus: bool) -> None:
    async def main() -> float:
        clock = ScaledClock(round(T0 * NS_PER_S), rate=1.0)
        spec = FleetSpec(meters=3, **QUIET, latency_s=0.01, serial_bus=serial_bus)
        fleet = await start_fleet(spec, clock)
        port = fleet.gateways[0].port
        clients = [AsyncModbusTcpClient("127.0.0.1", port=port) for _ in range(3)]
        for c in clients:
            await c.connect()

        async def ten(c: AsyncModbusTcpClient) -> None:
            for _ in range(10):
                assert not (await c.read_input_registers(0x48, count=2, device_id=1)).isError()

        start = time.monotonic()
        await asyncio.gather(*(ten(c) for c in clients))
        elapsed = time.monotonic() - start
        for c in clients:
            c.close()
        await fleet.stop()
        return elapsed

    elapsed = asyncio.run(main())
    if serial_bus:
        assert elapsed >= 0.3  # 30 answers x 10 ms, one after the other
    else:
        assert elapsed < 0.29  # 3 at a time


def test_the_command_line_simulator_prints_its_gateways() -> None:
    args = ["--meters", "4", "--wrapping", "1", "--replaced", "0", "--dead-exception", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.simulators.modbus_fleet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    (gw,) = [GatewaySettings.model_validate(g) for g in info["gateways"]]
    assert [d.meter for d in gw.devices] == ["mb-00000", "mb-00001", "mb-00002", "mb-00003"]
    assert [d.register_map for d in gw.devices][:3] == ["sdm630", "sunspec203", "sunspec213"]
    assert gw.port > 0 and info["start_s"] > 1.7e9
