"""The sites a configuration serves: the declared ones and, when the CEMS simulator runs, its
simulated stacks (so the server accepts them and the flow integrates them like any other)."""

from __future__ import annotations

from carbonstream.config import Config
from connectors.hj212.settings import (
    FLOW_CODE,
    CemsSimulatorSettings,
    FuelMeterSettings,
    SiteSettings,
    default_channels,
)

SIM_FUEL_CODE = "f01"
"""Code under which simulated stacks report their hourly natural gas use (Nm3)."""


def simulated_mn(i: int) -> str:
    return f"SIMSTACK{i:06d}"


def simulated_sites(sim: CemsSimulatorSettings) -> list[SiteSettings]:
    return [
        SiteSettings(
            id=f"{sim.id_prefix}{i:03d}",
            mn=simulated_mn(i),
            password=sim.password,
            name=f"simulated stack {i}",
            channels=default_channels(),
            fuel_meters=[FuelMeterSettings(code=SIM_FUEL_CODE, fuel="natural_gas")]
            if sim.fuel
            else [],
        )
        for i in range(sim.count)
    ]


def effective_sites(config: Config) -> list[SiteSettings]:
    """Declared sites, then the simulated ones (when the simulator is enabled)."""
    sites = list(config.cems.sites)
    sim = config.connectors.cems_simulator
    if sim.enabled:
        taken = {s.id for s in sites} | {s.mn for s in sites}
        sites += [s for s in simulated_sites(sim) if s.id not in taken and s.mn not in taken]
    return sites


def channel_row_id(site: str, code: str) -> str:
    """Row id of one variable of a stack in the cems/* products."""
    return f"{site}/{code}"


def site_rows(site: SiteSettings) -> dict[str, dict[str, object]]:
    """Registry rows (id -> attributes) of a site's variables: the flow, then each channel."""
    base = {"site": site.id, "mn": site.mn, "policy": site.policy, "utc_offset": site.utc_offset}
    rows: dict[str, dict[str, object]] = {
        channel_row_id(site.id, FLOW_CODE): {
            **base,
            "code": FLOW_CODE,
            "parameter": "flue gas flow, dry standard",
            "role": "flow",
            "unit": "scfh" if site.flow_unit in ("scfm", "scfh") else "m3/h",
            "mass_unit": "",
        }
    }
    for c in site.channels:
        mass_unit = ""
        if c.is_mass:
            mass_unit = "short_ton" if c.effective_unit == "part75_co2" else "kg"
        rows[channel_row_id(site.id, c.code)] = {
            **base,
            "code": c.code,
            "parameter": c.display_name,
            "role": "mass" if c.is_mass else "auxiliary",
            "unit": "%" if c.effective_unit == "part75_co2" else c.effective_unit,
            "mass_unit": mass_unit,
        }
    return rows
