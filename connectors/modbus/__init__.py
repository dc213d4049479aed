"""Modbus TCP smart-meter polling: register maps, decoding, the async fleet poller, health.

Public entry points:

- `connectors.modbus.config`: `ModbusSettings`, `GatewaySettings`, `DeviceSettings`,
  `CustomRegister` (pydantic settings models);
- `connectors.modbus.poller`: `FleetPoller`, `ReadingBatch`, `PollStats`;
- `connectors.modbus.health`: `DeviceHealth` and the state thresholds;
- `connectors.modbus.registers` / `decode`: the register maps and exact decoding.

The simulator serving a fleet over Modbus TCP is `connectors.simulators.modbus_fleet`.
"""
