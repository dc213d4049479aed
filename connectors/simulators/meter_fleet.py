"""A simulated smart-meter fleet: cumulative energy registers that follow daily load profiles.

Each meter's register is a closed-form function of time (the integral of its load profile), so
readings are deterministic for a given seed, monotonic, and consistent across simulator restarts:
stopping and starting the simulator never creates a jump or a fall in any register.

Load of meter m at time t (kW):  P_m * (1 + a_m sin(w t + phi_m) + b_m sin(2 w t + psi_m)),
w = 2 pi / day, a_m + b_m < 1 so the load stays positive. Registers read with 0.01 kWh resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DAY_S = 86_400.0
REGISTER_EPOCH_S = 1_704_067_200.0
"""2024-01-01T00:00Z: registers count energy from here (plus a random start value)."""
OMEGA = 2 * np.pi / DAY_S
RESOLUTION_KWH = 0.01


@dataclass(frozen=True)
class MeterFleet:
    ids: list[str]
    mean_kw: npt.NDArray[np.float64]
    amp1: npt.NDArray[np.float64]
    phase1: npt.NDArray[np.float64]
    amp2: npt.NDArray[np.float64]
    phase2: npt.NDArray[np.float64]
    start_kwh: npt.NDArray[np.float64]
    read_offset_s: npt.NDArray[np.float64]
    """Each meter reads at its own offset within the interval, as real fleets do."""

    @classmethod
    def build(
        cls, count: int, id_prefix: str, mean_power_kw: float, interval_s: float, seed: int
    ) -> MeterFleet:
        rng = np.random.default_rng(seed)
        return cls(
            ids=[f"{id_prefix}{i:05d}" for i in range(count)],
            mean_kw=mean_power_kw * rng.lognormal(0.0, 0.5, count),
            amp1=rng.uniform(0.2, 0.6, count),
            phase1=rng.uniform(0, 2 * np.pi, count),
            amp2=rng.uniform(0.0, 0.3, count),
            phase2=rng.uniform(0, 2 * np.pi, count),
            start_kwh=rng.uniform(0, 50_000, count).round(2),
            read_offset_s=rng.uniform(0, interval_s, count),
        )

    def register_kwh(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Register of each meter at t_s (seconds since epoch, one per meter), in kWh."""
        t_s = t_s - REGISTER_EPOCH_S
        energy_s = self.mean_kw * (
            t_s
            - self.amp1 / OMEGA * np.cos(OMEGA * t_s + self.phase1)
            - self.amp2 / (2 * OMEGA) * np.cos(2 * OMEGA * t_s + self.phase2)
        )
        origin = self.mean_kw * (
            -self.amp1 / OMEGA * np.cos(self.phase1) - self.amp2 / (2 * OMEGA) * np.cos(self.phase2)
        )
        kwh = self.start_kwh + (energy_s - origin) / 3600.0
        return np.floor(kwh / RESOLUTION_KWH) * RESOLUTION_KWH

    def readings_at(self, tick_s: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Every meter's reading of the interval starting at `tick_s`: (timestamps ns, kWh)."""
        t_s = tick_s + self.read_offset_s
        # Whole milliseconds, like a logger clock; computed from integers so it is exact.
        ts_ns = (np.round(t_s * 1e3).astype(np.int64)) * 1_000_000
        return ts_ns, self.register_kwh(ts_ns / 1e9)


def demo_entities(meter_ids: list[str]) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    """A small city to roll the simulated meters up into: one city, two districts, four parks,
    ten enterprises (with floor areas, for intensity); meter i belongs to enterprise i mod 10.
    Returns (entity id -> attributes, meter id -> entity id)."""
    entities: dict[str, dict[str, object]] = {
        "demo-city": {"name": "Demo City", "kind": "city", "parent": None}
    }
    for d in ("north", "south"):
        entities[f"demo-{d}"] = {
            "name": f"{d.title()} District",
            "kind": "district",
            "parent": "demo-city",
        }
    for p in range(4):
        district = "demo-north" if p < 2 else "demo-south"
        entities[f"demo-park-{p + 1}"] = {
            "name": f"Park {p + 1}",
            "kind": "park",
            "parent": district,
        }
    for e in range(10):
        entities[f"demo-ent-{e + 1:02d}"] = {
            "name": f"Enterprise {e + 1}",
            "kind": "enterprise",
            "parent": f"demo-park-{e % 4 + 1}",
            "activity": {"measure": "floor_area", "value": 5_000.0 + 1_000.0 * e, "unit": "m2"},
        }
    meter_entity = {m: f"demo-ent-{i % 10 + 1:02d}" for i, m in enumerate(meter_ids)}
    return entities, meter_entity
