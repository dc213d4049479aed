"""Modbus TCP polling: smart meters (register maps, decoding, the async fleet poller, health)
and CEMS data-acquisition units.

Public entry points:

- `connectors.modbus.config`: `ModbusSettings`, `GatewaySettings`, `DeviceSettings`,
  `CustomRegister` (pydantic settings models);
- `connectors.modbus.poller`: `FleetPoller`, `ReadingBatch`, `PollStats`;
- `connectors.modbus.health`: `DeviceHealth` and the state thresholds;
- `connectors.modbus.registers` / `decode`: the register maps and exact decoding;
- `connectors.modbus.dau_config` / `dau_map` / `dau_poller` / `dau_connector`: CEMS units whose
  polls become the HJ 212 real-time packets a logger would have sent.

The simulator serving a fleet over Modbus TCP is `connectors.simulators.modbus_fleet`; a
simulated CEMS unit is `connectors.simulators.cems_dau`.
"""
