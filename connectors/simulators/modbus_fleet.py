"""A smart-meter fleet served over real Modbus TCP (pymodbus servers on loopback).

Each gateway is a pymodbus TCP server with up to 247 unit ids; each unit is a meter exposing its
register map (SDM630, SunSpec 203 or SunSpec 213, assigned in turn). The physics is `MeterFleet`:
a meter's energy counter is computed from its load profile at the simulated clock's time *when
a request is served*, so an accelerated `ScaledClock` shared with the poller just works.

Besides healthy meters the fleet has (all deterministic, chosen by `FleetSpec`):

- wrapping meters: their register counts modulo `rollover_kwh` (a small rollover); at
  start + wrap_after_s (+ 10 s per further wrapping meter) it shows rollover - 0.01 kWh and
  wraps to 0 at its next step;
- replaced meters: at start + replace_after_s the register drops to 0.12 kWh (the new meter)
  and counts on from there;
- dead meters: 'silent' ones never answer (the client times out), 'exception' ones make the
  gateway answer exception 0x0B (gateway target device failed to respond).

`SimFleet` is the model alone (ids, roles, the value any meter shows at any time: use it to
check a poller); `start_fleet` serves it and returns a `RunningFleet`.

Servers are pymodbus `SimDevice`s whose `action` hook writes the energy registers just before
each response. (In pymodbus 3.16 the legacy `ModbusDeviceContext` datastores are converted to
`SimDevice`s too, and offer no such hook.)
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from connectors.clock import NS_PER_S, Clock
from connectors.modbus.config import DeviceSettings, GatewaySettings
from connectors.simulators.meter_fleet import MeterFleet
from connectors.simulators.modbus_images import (
    SIM_MAPS,
    DeviceImage,
    SimMap,
    energy_words,
    sdm630_image,
    sunspec_image,
)

MAX_UNITS = 247
REPLACED_START_CKWH = 12
"""A replaced meter's register right after the swap: 0.12 kWh."""

DeadMode = Literal["silent", "exception"]


@dataclass(frozen=True)
class FleetSpec:
    """What fleet to simulate. Roles are given to meters deterministically (see `SimFleet`)."""

    meters: int = 100
    units_per_gateway: int = MAX_UNITS
    seed: int = 0
    mean_power_kw: float = 20.0
    id_prefix: str = "mb-"
    wrapping: int = 2
    rollover_kwh: float = 10_000.0
    wrap_after_s: float = 60.0
    replaced: int = 1
    replace_after_s: float = 90.0
    dead_silent: int = 1
    dead_exception: int = 1
    latency_s: float = 0.0
    """Wall-clock seconds each answer takes; 0: immediate."""
    serial_bus: bool = False
    """Each gateway answers one request at a time (an RS-485 bus behind a TCP gateway: with
    latency_s, a gateway then serves at most 1 / latency_s requests a second)."""
    record_requests: bool = False
    """Keep (clock ns, unit id) of every request answered, in `SimGateway.log` (tests)."""

    def __post_init__(self) -> None:
        if not 1 <= self.units_per_gateway <= MAX_UNITS:
            raise ValueError(f"units_per_gateway must be 1..{MAX_UNITS}")


@dataclass(frozen=True)
class SimMeter:
    """One simulated meter: where it is and what it does."""

    meter: str
    index: int
    gateway: int
    unit_id: int
    register_map: SimMap
    scale_factor: int
    """SunSpec 203: TotWh_SF, 0 (Wh) or 1 (10 Wh); 0 otherwise. (Finer factors overflow the
    acc32 at the counts MeterFleet reaches by 2027; negative ones are covered by unit tests.)"""
    common_length: int
    """SunSpec: L of the common model (66, or 65) before the meter model."""
    rollover_kwh: float | None = None
    wrap_at_s: float | None = None
    replaced_at_s: float | None = None
    dead: DeadMode | None = None


class SimFleet:
    """The simulated fleet as a model: meters, roles and register values at any time."""

    def __init__(self, spec: FleetSpec, start_s: float) -> None:
        self.spec = spec
        self.start_s = start_s
        n = spec.meters
        self.physics = MeterFleet.build(n, spec.id_prefix, spec.mean_power_kw, 10.0, spec.seed)
        self._one = [
            MeterFleet(
                ids=[self.physics.ids[i]],
                mean_kw=self.physics.mean_kw[i : i + 1],
                amp1=self.physics.amp1[i : i + 1],
                phase1=self.physics.phase1[i : i + 1],
                amp2=self.physics.amp2[i : i + 1],
                phase2=self.physics.phase2[i : i + 1],
                start_kwh=self.physics.start_kwh[i : i + 1],
                read_offset_s=self.physics.read_offset_s[i : i + 1],
            )
            for i in range(n)
        ]
        maps = [SIM_MAPS[i % len(SIM_MAPS)] for i in range(n)]
        roles: dict[int, dict[str, Any]] = {i: {} for i in range(n)}
        free = set(range(n))

        def take(candidates: list[int], count: int, what: str) -> list[int]:
            chosen = [i for i in candidates if i in free][:count]
            if len(chosen) < count:
                raise ValueError(f"not enough meters for {count} {what} meters")
            free.difference_update(chosen)
            return chosen

        # Wrapping meters have float registers (0.0 is a valid float; SunSpec acc32 0 is not).
        for j, i in enumerate(
            take([i for i in range(n) if maps[i] != "sunspec203"], spec.wrapping, "wrapping")
        ):
            roles[i].update(
                rollover_kwh=spec.rollover_kwh, wrap_at_s=start_s + spec.wrap_after_s + 10.0 * j
            )
        for i in take([i for i in range(n) if maps[i] == "sunspec203"], spec.replaced, "replaced"):
            roles[i].update(replaced_at_s=start_s + spec.replace_after_s)
        backwards = list(range(n - 1, -1, -1))
        for i in take(backwards, spec.dead_silent, "silent"):
            roles[i].update(dead="silent")
        for i in take(backwards, spec.dead_exception, "exception"):
            roles[i].update(dead="exception")

        per = spec.units_per_gateway
        self.meters = [
            SimMeter(
                meter=self.physics.ids[i],
                index=i,
                gateway=i // per,
                unit_id=1 + i % per,
                register_map=maps[i],
                scale_factor=(i // len(SIM_MAPS)) % 2 if maps[i] == "sunspec203" else 0,
                common_length=66 - (i // len(SIM_MAPS)) % 2,
                **roles[i],
            )
            for i in range(n)
        ]
        self._by_id = {m.meter: m for m in self.meters}
        # Counter offsets that put each wrap exactly at its wrap time.
        self._wrap_offset: dict[int, int] = {}
        self._replaced_base: dict[int, int] = {}
        for m in self.meters:
            if m.rollover_kwh is not None and m.wrap_at_s is not None:
                roll = round(m.rollover_kwh * 100)
                # At wrap_at the register shows its last value before the rollover; it wraps
                # to 0 at its next step.
                self._wrap_offset[m.index] = -(self.physical_ckwh(m.index, m.wrap_at_s) + 1) % roll
            if m.replaced_at_s is not None:
                self._replaced_base[m.index] = self.physical_ckwh(m.index, m.replaced_at_s)

    @property
    def gateway_count(self) -> int:
        return -(-self.spec.meters // self.spec.units_per_gateway)

    def meter(self, meter_id: str) -> SimMeter:
        return self._by_id[meter_id]

    def physical_ckwh(self, index: int, t_s: float) -> int:
        """MeterFleet's register of meter `index` at t_s, in 0.01 kWh."""
        kwh = self._one[index].register_kwh(np.array([t_s]))[0]
        return round(float(kwh) * 100)

    def counter_ckwh(self, m: SimMeter, t_s: float) -> int:
        """What the meter's register counts at t_s (0.01 kWh): wraps and replacement applied."""
        c = self.physical_ckwh(m.index, t_s)
        if m.replaced_at_s is not None and t_s >= m.replaced_at_s:
            c = REPLACED_START_CKWH + c - self._replaced_base[m.index]
        if m.rollover_kwh is not None:
            c = (c + self._wrap_offset.get(m.index, 0)) % round(m.rollover_kwh * 100)
        return c

    def expected_kwh(self, meter_id: str, t_s: float) -> float | None:
        """The meter's register at t_s in kWh (None for a dead meter)."""
        m = self.meter(meter_id)
        return None if m.dead else self.counter_ckwh(m, t_s) / 100

    def expected_reading(self, meter_id: str, t_s: float) -> float | None:
        """Exactly what a correct poller decodes from the meter's registers at t_s, in kWh:
        the counter after the map's encoding (float32 for SDM630 and SunSpec 213)."""
        m = self.meter(meter_id)
        if m.dead:
            return None
        c = self.counter_ckwh(m, t_s)
        if m.register_map == "sdm630":
            return float(np.float32(c / 100))
        if m.register_map == "sunspec203":
            return c / 100  # = raw x 10**sf / 1000, exactly, for sf = 0 or 1
        return float(np.float32(c * 10)) / 1000

    def resolution_kwh(self, meter_id: str, t_s: float) -> float:
        """Step between two adjacent register values of the meter near t_s, kWh."""
        m = self.meter(meter_id)
        kwh = self.counter_ckwh(m, t_s) / 100
        if m.register_map == "sdm630":
            return max(0.01, float(np.spacing(np.float32(kwh))))
        if m.register_map == "sunspec213":
            return max(0.01, float(np.spacing(np.float32(kwh * 1000))) / 1000)
        return 0.01

    def gateway_meters(self, gateway: int) -> list[SimMeter]:
        return [m for m in self.meters if m.gateway == gateway]


@dataclass(eq=False)
class SimGateway:
    """One served gateway. Counters are for tests: requests served, concurrent requests."""

    index: int
    host: str
    port: int
    meters: list[SimMeter]
    devices: list[SimDevice] = field(repr=False)
    server: ModbusTcpServer | None = field(default=None, repr=False)
    requests: int = 0
    inflight: int = 0
    max_inflight: int = 0
    log: list[tuple[int, int]] = field(default_factory=list, repr=False)
    """(clock ns, unit id) per answered request, if the spec asks to record them."""
    bus: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self.server.active_connections) if self.server is not None else 0


class RunningFleet:
    """A `SimFleet` served by one pymodbus TCP server per gateway."""

    def __init__(self, model: SimFleet, clock: Clock, host: str) -> None:
        self.model = model
        self.clock = clock
        self.host = host
        self.gateways: list[SimGateway] = []
        for g in range(model.gateway_count):
            meters = model.gateway_meters(g)
            gw = SimGateway(g, host, 0, meters, devices=[])
            gw.devices = [self._device(gw, m) for m in meters]
            self.gateways.append(gw)

    # Convenience pass-throughs to the model.
    def expected_reading(self, meter_id: str, t_s: float) -> float | None:
        return self.model.expected_reading(meter_id, t_s)

    def expected_kwh(self, meter_id: str, t_s: float) -> float | None:
        return self.model.expected_kwh(meter_id, t_s)

    @property
    def meters(self) -> list[SimMeter]:
        return self.model.meters

    def gateway_settings(self, interval_s: float = 10.0, **gateway: Any) -> list[GatewaySettings]:
        """Poller settings for every gateway: each meter with its map, every `interval_s`;
        `gateway` keyword arguments go to every GatewaySettings (connections=, timeout_s=...)."""
        return [
            GatewaySettings(
                name=f"sim-gw-{gw.index}",
                host=gw.host,
                port=gw.port,
                devices=[
                    DeviceSettings(
                        meter=m.meter,
                        unit_id=m.unit_id,
                        register_map=m.register_map,
                        interval_s=interval_s,
                    )
                    for m in gw.meters
                ],
                **gateway,
            )
            for gw in self.gateways
        ]

    def _device(self, gw: SimGateway, m: SimMeter) -> SimDevice:
        if m.register_map == "sdm630":
            image = sdm630_image()
        else:
            image = sunspec_image(m.register_map, m.common_length, m.scale_factor, m.meter)
        table = [SimData(image.start, values=image.registers, datatype=DataType.REGISTERS)]
        dummy = [SimData(0, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        hr, ir = (table, dummy) if image.table == "holding" else (dummy, table)
        action = functools.partial(self._serve, gw, m, image)
        return SimDevice(m.unit_id, simdata=(bits, list(bits), hr, ir), action=action)

    async def _serve(
        self,
        gw: SimGateway,
        m: SimMeter,
        image: DeviceImage,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering a request to the meter's unit id."""
        if m.dead == "silent":
            # With ignore_missing_devices the server then sends nothing at all.
            raise NoSuchIdException(f"unit {m.unit_id} is silent")
        gw.requests += 1
        if self.model.spec.record_requests:
            gw.log.append((self.clock.now_ns(), m.unit_id))
        if m.dead == "exception":
            return ExcCodes.GATEWAY_NO_RESPONSE
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # meters are read-only here
        spec = self.model.spec
        gw.inflight += 1  # received, not yet answered (waiting for the bus included)
        gw.max_inflight = max(gw.max_inflight, gw.inflight)
        try:
            if spec.serial_bus:
                async with gw.bus:
                    self._answer(m, image, start_address, registers)
                    if spec.latency_s > 0:
                        await asyncio.sleep(spec.latency_s)
            else:
                if spec.latency_s > 0:
                    await asyncio.sleep(spec.latency_s)
                self._answer(m, image, start_address, registers)
        finally:
            gw.inflight -= 1
        return None

    def _answer(
        self,
        m: SimMeter,
        image: DeviceImage,
        start_address: int,
        registers: list[int],
    ) -> None:
        """Writes the meter's energy registers as of now."""
        t_s = self.clock.now_ns() / NS_PER_S
        counter = self.model.counter_ckwh(m, t_s)
        for at, words in energy_words(m.register_map, counter, m.scale_factor, image.model_address):
            registers[at - start_address : at - start_address + len(words)] = words

    async def start_gateway(self, index: int) -> None:
        """Serves gateway `index` (on its previous port if it had one)."""
        gw = self.gateways[index]
        if gw.server is not None:
            return
        server = ModbusTcpServer(
            gw.devices, address=(self.host, gw.port), ignore_missing_devices=True
        )
        await server.serve_forever(background=True)
        gw.server = server
        if gw.port == 0:
            listener = cast(asyncio.Server, server.transport)
            gw.port = int(listener.sockets[0].getsockname()[1])

    async def stop_gateway(self, index: int) -> None:
        """Stops serving gateway `index`; its clients' connections are closed."""
        gw = self.gateways[index]
        if gw.server is not None:
            server, gw.server = gw.server, None
            await server.shutdown()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        for g in range(len(self.gateways)):
            await self.stop_gateway(g)


async def start_fleet(
    spec: FleetSpec, clock: Clock, host: str = "127.0.0.1", ports: list[int] | None = None
) -> RunningFleet:
    """Serves the fleet of `spec` on `host`, one TCP server per gateway (on `ports`, or free
    ports). Event times (wraps, replacement) count from the clock's time now."""
    fleet = RunningFleet(SimFleet(spec, clock.now_s()), clock, host)
    try:
        for gw in fleet.gateways:
            if ports is not None:
                gw.port = ports[gw.index]
            await fleet.start_gateway(gw.index)
    except BaseException:
        await fleet.stop()
        raise
    return fleet


def main(argv: list[str] | None = None) -> None:
    """Serves a simulated fleet until interrupted (SIGINT/SIGTERM); prints its gateways first.

    `python -m connectors.simulators.modbus_fleet --meters 5000` prints one JSON line,
    {"start_s": ..., "gateways": [{"name", "host", "port", "devices": [{"meter", "unit_id",
    "register_map"}, ...]}, ...]}, whose gateways validate as GatewaySettings.
    """
    import argparse
    import json
    import signal

    from connectors.clock import RealClock, ScaledClock

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--meters", type=int, default=FleetSpec.meters)
    p.add_argument("--units-per-gateway", type=int, default=MAX_UNITS)
    p.add_argument("--seed", type=int, default=0)
    for role in ("wrapping", "replaced", "dead_silent", "dead_exception"):
        p.add_argument(f"--{role.replace('_', '-')}", type=int, default=getattr(FleetSpec, role))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--latency-s", type=float, default=0.0)
    p.add_argument("--serial-bus", action="store_true", help="one request at a time per gateway")
    p.add_argument("--rate", type=float, default=None, help="simulated-time rate (ScaledClock)")
    p.add_argument("--start-ns", type=int, default=None, help="ScaledClock start")
    p.add_argument("--anchor-ns", type=int, default=None, help="ScaledClock monotonic anchor")
    args = p.parse_args(argv)
    spec = FleetSpec(
        meters=args.meters,
        units_per_gateway=args.units_per_gateway,
        seed=args.seed,
        wrapping=args.wrapping,
        replaced=args.replaced,
        dead_silent=args.dead_silent,
        dead_exception=args.dead_exception,
        latency_s=args.latency_s,
        serial_bus=args.serial_bus,
    )
    clock: Clock = (
        RealClock()
        if args.rate is None
        else ScaledClock(args.start_ns, rate=args.rate, anchor_ns=args.anchor_ns)
    )

    async def serve() -> None:
        fleet = await start_fleet(spec, clock, host=args.host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gateways = [
            g.model_dump(include={"name", "host", "port", "devices"})
            for g in fleet.gateway_settings()
        ]
        for g in gateways:
            g["devices"] = [
                {k: d[k] for k in ("meter", "unit_id", "register_map")} for d in g["devices"]
            ]
        print(json.dumps({"start_s": fleet.model.start_s, "gateways": gateways}), flush=True)
        await stop.wait()
        await fleet.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
