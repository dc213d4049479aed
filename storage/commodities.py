"""What meters count, in which unit the roll-ups sum it, and which GHG Protocol scope it is.

Scope 1: fuels burned on site; scope 2: purchased electricity and heat (green power included, at
its market-based factor of zero). Water has no CO2 factor here; it is rolled up as consumption.
A meter whose unit differs from its commodity's canonical unit still contributes its CO2, but
not its consumption, to roll-ups (summing Nm3 into m3 unnoticed is how inventories go wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal[1, 2, 0]


@dataclass(frozen=True)
class Commodity:
    name: str
    unit: str
    scope: Scope
    long_name: str


COMMODITIES: tuple[Commodity, ...] = (
    Commodity("electricity", "kWh", 2, "purchased electricity"),
    Commodity("green_electricity", "kWh", 2, "certified green electricity"),
    Commodity("heat", "GJ", 2, "purchased heat"),
    Commodity("natural_gas", "Nm3", 1, "natural gas burned on site"),
    Commodity("raw_coal", "kg", 1, "raw coal burned on site"),
    Commodity("diesel", "kg", 1, "diesel burned on site"),
    Commodity("water", "m3", 0, "water"),
)

BY_NAME = {c.name: c for c in COMMODITIES}
