"""The FLUXNET half-hour table: variable names, units, and the CSV layout (-9999 for missing).

The same variables are the `ec/flux_*` product's arrays (with these units as CF attributes), the
columns of `carbonstream ec process --out` and of `GET /v1/ec/{site}/fluxes?format=fluxnet`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

MISSING = -9999

# name -> (units, long name). Order = column order of the FLUXNET file.
VARIABLES: dict[str, tuple[str, str]] = {
    "FC": ("umol m-2 s-1", "CO2 flux"),
    "FC_SSITC_TEST": ("1", "FC quality flag, Mauder & Foken 2004 (0 best, 2 discard)"),
    "FC_RANDUNC": ("umol m-2 s-1", "FC random uncertainty (Finkelstein & Sims 2001)"),
    "FH2O": ("mmol m-2 s-1", "water vapour flux"),
    "FH2O_SSITC_TEST": ("1", "FH2O quality flag"),
    "FCH4": ("nmol m-2 s-1", "CH4 flux"),
    "FCH4_SSITC_TEST": ("1", "FCH4 quality flag"),
    "FCH4_RANDUNC": ("nmol m-2 s-1", "FCH4 random uncertainty"),
    "LE": ("W m-2", "latent heat flux"),
    "LE_SSITC_TEST": ("1", "LE quality flag"),
    "LE_RANDUNC": ("W m-2", "LE random uncertainty"),
    "ET": ("mm h-1", "evapotranspiration"),
    "H": ("W m-2", "sensible heat flux"),
    "H_SSITC_TEST": ("1", "H quality flag"),
    "H_RANDUNC": ("W m-2", "H random uncertainty"),
    "TAU": ("kg m-1 s-2", "momentum flux"),
    "TAU_SSITC_TEST": ("1", "TAU quality flag"),
    "TAU_RANDUNC": ("kg m-1 s-2", "TAU random uncertainty"),
    "USTAR": ("m s-1", "friction velocity"),
    "ZL": ("1", "stability parameter (z-d)/L"),
    "MO_LENGTH": ("m", "Obukhov length"),
    "TKE": ("m2 s-2", "turbulent kinetic energy"),
    "TSTAR": ("K", "temperature scale"),
    "BOWEN": ("1", "Bowen ratio"),
    "WS": ("m s-1", "mean horizontal wind speed"),
    "WS_MAX": ("m s-1", "maximum wind speed"),
    "WD": ("degree", "wind direction"),
    "WD_SIGMA": ("degree", "standard deviation of wind direction"),
    "U_SIGMA": ("m s-1", "standard deviation of u"),
    "V_SIGMA": ("m s-1", "standard deviation of v"),
    "W_SIGMA": ("m s-1", "standard deviation of w"),
    "T_SONIC": ("deg C", "sonic temperature"),
    "T_SONIC_SIGMA": ("K", "standard deviation of sonic temperature"),
    "TA_EP": ("deg C", "air temperature from sonic temperature"),
    "PA_EP": ("kPa", "air pressure"),
    "RH_EP": ("%", "relative humidity"),
    "VPD_EP": ("hPa", "vapour pressure deficit"),
    "AIR_DENSITY": ("kg m-3", "air density"),
    "AIR_CP": ("J kg-1 K-1", "air heat capacity"),
    "CO2": ("umol mol-1", "CO2 mole fraction"),
    "H2O": ("mmol mol-1", "H2O mole fraction"),
    "CH4": ("nmol mol-1", "CH4 mole fraction"),
    "FC_UNCORR": ("umol m-2 s-1", "CO2 flux before corrections"),
    "LE_UNCORR": ("W m-2", "LE before corrections"),
    "H_UNCORR": ("W m-2", "H before corrections"),
    "TAU_UNCORR": ("kg m-1 s-2", "TAU before corrections"),
    "USTAR_UNCORR": ("m s-1", "u* from raw covariances"),
    "FC_SCF": ("1", "FC spectral correction factor"),
    "LE_SCF": ("1", "LE spectral correction factor"),
    "H_SCF": ("1", "H spectral correction factor"),
    "TAU_SCF": ("1", "TAU spectral correction factor"),
    "W_T_SONIC_COV": ("m s-1 K", "covariance of w and sonic temperature"),
    "W_CO2_COV": ("m s-1 (gas unit)", "covariance of w and CO2 (as measured)"),
    "W_H2O_COV": ("m s-1 (gas unit)", "covariance of w and H2O (as measured)"),
    "W_U_COV": ("m2 s-2", "covariance of w and u"),
    "CO2_TLAG_ACTUAL": ("s", "time lag of CO2"),
    "CO2_TLAG_USED_DEFAULT": ("1", "1 when the nominal CO2 lag was used"),
    "H2O_TLAG_ACTUAL": ("s", "time lag of H2O"),
    "H2O_TLAG_USED_DEFAULT": ("1", "1 when the nominal H2O lag was used"),
    "CH4_TLAG_ACTUAL": ("s", "time lag of CH4"),
    "ROT_YAW": ("degree", "yaw rotation angle"),
    "ROT_PITCH": ("degree", "pitch rotation angle"),
    "ROT_ROLL": ("degree", "roll rotation angle"),
    "FETCH_MAX": ("m", "distance of the footprint maximum (Kljun et al. 2004)"),
    "FETCH_70": ("m", "distance containing 70 % of the footprint"),
    "FETCH_90": ("m", "distance containing 90 % of the footprint"),
    "N_SAMPLES": ("1", "samples in the period"),
    "MISSING_FRACTION": ("1", "largest fraction of missing samples among the variables used"),
    "W_SPIKES": ("1", "spikes removed from w"),
    "T_SONIC_SPIKES": ("1", "spikes removed from sonic temperature"),
    "CO2_SPIKES": ("1", "spikes removed from CO2"),
    "H2O_SPIKES": ("1", "spikes removed from H2O"),
}
NAMES: tuple[str, ...] = tuple(VARIABLES)

INTEGER_LIKE = frozenset(
    n for n in NAMES if n.endswith(("_SSITC_TEST", "_USED_DEFAULT", "_SPIKES")) or n == "N_SAMPLES"
)


def stamp(ns: int) -> str:
    """YYYYMMDDHHMM of a UTC epoch-ns instant."""
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y%m%d%H%M")


def _format(name: str, v: float) -> str:
    if v is None or not math.isfinite(v):
        return str(MISSING)
    if name in INTEGER_LIKE:
        return str(round(v))
    return f"{v:.6g}"


def write_csv(
    rows: Iterable[tuple[int, int, Mapping[str, float]]], names: Iterable[str] = NAMES
) -> str:
    """(start ns, end ns, values) per period -> FLUXNET CSV text."""
    cols = list(names)
    out = io.StringIO()
    out.write(",".join(["TIMESTAMP_START", "TIMESTAMP_END", *cols]) + "\n")
    for start, end, values in rows:
        cells = [stamp(start), stamp(end)]
        cells.extend(_format(n, values.get(n, math.nan)) for n in cols)
        out.write(",".join(cells) + "\n")
    return out.getvalue()
