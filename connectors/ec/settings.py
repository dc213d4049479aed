"""Settings of one eddy-covariance measurement system, and the metadata files that describe one.

`EcSiteSettings` is what a `[[ec.sites]]` table of the configuration holds: where the tower is,
which instruments are installed where, how the raw columns are named and in which units, and the
processing choices (EddyPro Express by default). `kernel_config()` resolves instrument models to
their geometry and returns the flat dict the Rust kernel (`core.ec.EcProcessor`) takes.

The same settings are read from the files flux sites already have:

- `from_eddypro_metadata(path)`: an EddyPro `.metadata` (GHG_METADATA ini) file;
- `from_icos_ecmd(path, at)`: an ICOS `*_ecmd.csv` table, the row in force at time `at`;
- `planar_fit_sectors(path)`: the rotation matrices of EddyPro's `planar_fit.txt`;
- `in_situ_low_pass(path, month, ...)`: the Ibrom et al. (2007) parameters of EddyPro's
  `spectral_assessment.txt`.

Units used internally by the readers (connectors/ec/readers.py): wind m s-1, sonic temperature K,
pressure Pa; gases stay in the unit declared here (the kernel converts).
"""

from __future__ import annotations

import configparser
import csv
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"

GasUnit = Literal[
    "molar_density", "mass_density_mg", "mass_density_g", "mixing_ratio", "mole_fraction"
]
"""As the analyser delivers it: molar_density mmol m-3; mass_density_mg mg m-3; mass_density_g
g m-3; mixing_ratio (per mole of dry air) and mole_fraction (per mole of wet air) in the gas's
customary prefix: CO2 umol/mol (ppm), H2O mmol/mol (ppt), CH4 nmol/mol (ppb)."""

Variable = Literal[
    "u", "v", "w", "ts", "co2", "h2o", "ch4", "pressure", "air_t", "diag_sonic", "diag_gas",
    "diag_ch4",
]  # fmt: skip
VARIABLES: tuple[str, ...] = Variable.__args__  # type: ignore[attr-defined]

KERNEL_COLUMN = {"pressure": "pressure_pa", "air_t": "air_t_k"}
"""Kernel column name of a settings variable where they differ."""


def site_columns(site: EcSiteSettings) -> list[str]:
    """Kernel column names of the variables the site maps."""
    return [KERNEL_COLUMN.get(v, v) for v in site.columns.mapping()]


class EcSettingsError(ValueError):
    """A metadata file that cannot be turned into settings (the message names file and field)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Built-in geometry of known instruments (EddyPro uses these for known models, whatever the file
# says): vertical and horizontal path (m), response time (s); Gill sonics with 'spar' alignment
# have their u axis pointing the other way (+180 degrees).
SONIC_MODELS: dict[str, tuple[float, float, float, bool]] = {
    "csat3": (0.115, 0.058, 1.0 / 60.0, False),
    "csat3b": (0.115, 0.058, 1.0 / 60.0, False),
    "hs50": (0.125, 0.11, 0.02, True),
    "hs100": (0.125, 0.11, 0.01, True),
}
GAS_MODELS: dict[str, tuple[Literal["open", "closed"], float, float, float, float]] = {
    # path, path length (m), path diameter (m), response time (s), cell volume (L)
    "li7500": ("open", 0.127, 0.0095, 0.1, 0.0),
    "li7500a": ("open", 0.127, 0.0095, 0.1, 0.0),
    "li7500rs": ("open", 0.127, 0.0095, 0.1, 0.0),
    "li7500ds": ("open", 0.127, 0.0095, 0.1, 0.0),
    "li7200": ("closed", 0.127, 0.0127, 0.1, 0.016),
    "li7200rs": ("closed", 0.127, 0.0127, 0.1, 0.016),
}
DIAG_RULES: dict[str, tuple[str, int]] = {
    "csat3": ("any_bit_set", 0xF000),
    "csat3b": ("any_bit_set", 0xF000),
    "li7500": ("all_bits_set", 0x00F0),
    "li7500a": ("all_bits_set", 0x00F0),
    "li7500rs": ("all_bits_set", 0x00F0),
    "li7200": ("all_bits_set", 0x1FF0),
    "li7200rs": ("all_bits_set", 0x1FF0),
}


class SonicSettings(_Section):
    model: str = Field(
        "csat3",
        description="csat3, csat3b, hs50, hs100 (built-in geometry) or 'generic' (give paths).",
    )
    height_m: float = Field(3.0, gt=0, description="Measurement height above ground, m.")
    north_offset_deg: float = Field(
        0.0, description="EddyPro's north offset of the sonic (degrees from north)."
    )
    path_vertical_m: float | None = Field(None, ge=0, description="Vertical path (generic).")
    path_horizontal_m: float | None = Field(None, ge=0, description="Horizontal path (generic).")
    response_time_s: float | None = Field(None, ge=0, description="Response time (generic).")

    @model_validator(mode="after")
    def _known(self) -> SonicSettings:
        if self.model != "generic" and self.model not in SONIC_MODELS:
            raise ValueError(
                f"sonic.model {self.model!r} is not built in ({', '.join(SONIC_MODELS)}); "
                "use 'generic' and give its paths and response time"
            )
        return self


class GasAnalyzerSettings(_Section):
    model: str = Field(
        "li7500",
        description="li7500(a/rs/ds) open path, li7200(rs) closed path, or 'generic'.",
    )
    path: Literal["open", "closed"] | None = Field(
        None, description="Open or closed path (default: from the model)."
    )
    path_length_m: float | None = Field(None, ge=0, description="Optical path (generic).")
    path_diameter_m: float | None = Field(None, ge=0, description="Path diameter (generic).")
    response_time_s: float | None = Field(None, ge=0, description="Response time (generic).")
    northward_separation_m: float = Field(0.0, description="Northward offset from the sonic, m.")
    eastward_separation_m: float = Field(0.0, description="Eastward offset from the sonic, m.")
    vertical_separation_m: float = Field(0.0, description="Vertical offset from the sonic, m.")
    tube_length_m: float = Field(0.0, ge=0, description="Closed path: sampling tube length, m.")
    tube_inner_diameter_m: float = Field(
        0.0, ge=0, description="Closed path: tube inner diameter, m."
    )
    tube_flow_l_min: float = Field(0.0, ge=0, description="Closed path: tube flow, L min-1.")
    cell_volume_l: float | None = Field(
        None, ge=0, description="Closed path: cell volume, L (default: from the model)."
    )

    @model_validator(mode="after")
    def _known(self) -> GasAnalyzerSettings:
        if self.model != "generic" and self.model not in GAS_MODELS:
            raise ValueError(
                f"gas.model {self.model!r} is not built in ({', '.join(GAS_MODELS)}); "
                "use 'generic' and give its path type, geometry and response time"
            )
        if self.model == "generic" and self.path is None:
            raise ValueError("gas.path (open or closed) is required for a generic analyser")
        if self.resolved_path == "closed" and (
            self.tube_length_m <= 0 or self.tube_inner_diameter_m <= 0 or self.tube_flow_l_min <= 0
        ):
            raise ValueError(
                "a closed-path analyser needs tube_length_m, tube_inner_diameter_m and "
                "tube_flow_l_min > 0"
            )
        return self

    @property
    def resolved_path(self) -> Literal["open", "closed"]:
        if self.path is not None:
            return self.path
        return GAS_MODELS[self.model][0]


class ColumnSettings(_Section):
    """Source column (header name, or 1-based position as in EddyPro) of each variable."""

    u: str | int = Field("U", description="Wind along the sonic's x axis.")
    v: str | int = Field("V", description="Wind along the sonic's y axis.")
    w: str | int = Field("W", description="Vertical wind.")
    ts: str | int = Field("T_SONIC", description="Sonic temperature.")
    co2: str | int | None = Field("CO2", description="CO2 (none: not measured).")
    h2o: str | int | None = Field("H2O", description="H2O (none: not measured).")
    ch4: str | int | None = Field(None, description="CH4 (none: not measured).")
    pressure: str | int | None = Field(None, description="Ambient air pressure.")
    air_t: str | int | None = Field(None, description="Slow air temperature.")
    diag_sonic: str | int | None = Field(None, description="Sonic diagnostic word.")
    diag_gas: str | int | None = Field(None, description="CO2/H2O analyser diagnostic word.")
    diag_ch4: str | int | None = Field(None, description="CH4 analyser diagnostic word.")

    def mapping(self) -> dict[str, str | int]:
        """variable -> source column, for the variables that are present."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class UnitSettings(_Section):
    wind: Literal["m_s", "cm_s"] = Field("m_s", description="Unit of u, v, w.")
    ts: Literal["kelvin", "celsius"] = Field("kelvin", description="Unit of sonic temperature.")
    air_t: Literal["kelvin", "celsius"] = Field("kelvin", description="Unit of air temperature.")
    pressure: Literal["pa", "hpa", "kpa"] = Field("kpa", description="Unit of air pressure.")
    co2: GasUnit = Field("molar_density", description="CO2 as delivered (see GasUnit).")
    h2o: GasUnit = Field("molar_density", description="H2O as delivered.")
    ch4: GasUnit = Field("molar_density", description="CH4 as delivered.")


LagWindow = tuple[float, float, float]
"""(nominal, min, max) seconds."""


class MethodSettings(_Section):
    """Processing choices; the defaults are EddyPro 7 Express."""

    despike: bool = Field(True, description="Vickers & Mahrt (1997) despiking.")
    rotation: Literal["double", "triple", "planar_fit"] = Field(
        "double", description="Tilt correction."
    )
    planar_fit_file: Path | None = Field(
        None, description="EddyPro planar_fit.txt with the sector matrices (planar_fit)."
    )
    lag_method: Literal["constant", "covariance_max", "covariance_max_with_default"] = Field(
        "covariance_max_with_default", description="Time-lag method."
    )
    lag_co2: LagWindow | None = Field(
        None, description="(nominal, min, max) s of CO2; none: automatic window."
    )
    lag_h2o: LagWindow | None = Field(None, description="(nominal, min, max) s of H2O.")
    lag_ch4: LagWindow | None = Field(None, description="(nominal, min, max) s of CH4.")
    detrend: Literal["block", "linear", "running_mean", "exp_running_mean"] = Field(
        "block", description="Detrending."
    )
    detrend_tau_s: float = Field(250.0, gt=0, description="Time constant of running means, s.")
    spectral: Literal["none", "moncrieff1997", "ibrom2007"] = Field(
        "moncrieff1997", description="Spectral correction."
    )
    spectral_assessment_file: Path | None = Field(
        None, description="EddyPro spectral_assessment.txt (ibrom2007)."
    )
    random_uncertainty: bool = Field(
        False, description="Finkelstein & Sims (2001) random error (costs ~20 ms a period)."
    )
    footprint: bool = Field(True, description="Kljun et al. (2004) footprint.")
    pbl_height_m: float = Field(1000.0, gt=0, description="Boundary-layer height (footprint).")

    @model_validator(mode="after")
    def _files(self) -> MethodSettings:
        if self.rotation == "planar_fit" and self.planar_fit_file is None:
            raise ValueError("rotation 'planar_fit' needs planar_fit_file")
        if self.spectral == "ibrom2007" and self.spectral_assessment_file is None:
            raise ValueError("spectral 'ibrom2007' needs spectral_assessment_file")
        return self


class EcSiteSettings(_Section):
    """One eddy-covariance system ([[ec.sites]])."""

    id: str = Field(description="Site (tower) id, unique.", pattern=STREAM_ID)
    altitude_m: float = Field(0.0, description="Metres above sea level.")
    latitude_deg: float = Field(45.0, ge=-90, le=90, description="Degrees north.")
    longitude_deg: float = Field(0.0, ge=-180, le=180, description="Degrees east.")
    canopy_height_m: float = Field(0.1, ge=0, description="Canopy height, m.")
    displacement_m: float | None = Field(
        None, ge=0, description="Zero-plane displacement (default 0.67 x canopy height)."
    )
    roughness_length_m: float | None = Field(
        None, gt=0, description="Roughness length (default 0.15 x canopy height)."
    )
    sonic: SonicSettings = Field(default_factory=SonicSettings, description="Sonic anemometer.")
    gas: GasAnalyzerSettings = Field(
        default_factory=GasAnalyzerSettings, description="Gas analyser."
    )
    sampling_hz: float = Field(20.0, gt=0, le=100, description="Raw sampling rate, Hz.")
    averaging_min: float = Field(
        30.0, gt=0, le=1440, description="Averaging period, minutes (periods labelled by start)."
    )
    columns: ColumnSettings = Field(
        default_factory=ColumnSettings, description="Source column of each variable."
    )
    units: UnitSettings = Field(default_factory=UnitSettings, description="Units of the columns.")
    methods: MethodSettings = Field(
        default_factory=MethodSettings, description="Processing choices (EddyPro Express)."
    )
    timestamps: Literal["start", "end"] = Field(
        "end",
        description="What a raw row's timestamp marks: the start or the end of its sample "
        "(Campbell loggers stamp the end). A file named by time: the start or end of the file.",
    )
    sonic_diag: bool = Field(True, description="Screen samples by the sonic diagnostic word.")
    gas_diag: bool = Field(True, description="Screen samples by the analyser diagnostic word.")
    archive_raw: bool = Field(
        False, description="Archive the raw samples in ec/raw_20hz (see [ec] raw_origin)."
    )

    @property
    def period_s(self) -> float:
        return self.averaging_min * 60.0

    @property
    def expected_samples(self) -> int:
        return round(self.sampling_hz * self.period_s)

    def kernel_config(self) -> dict[str, Any]:
        """The flat configuration of `core.ec.EcProcessor` (see core-rs/src/python/ec.rs)."""
        s, g, m = self.sonic, self.gas, self.methods
        if s.model == "generic":
            vpath, hpath, tau, flip = (
                s.path_vertical_m or 0.0,
                s.path_horizontal_m or 0.0,
                s.response_time_s or 0.0,
                False,
            )
        else:
            vpath, hpath, tau, flip = SONIC_MODELS[s.model]
        if g.model == "generic":
            glen, gdia, gtau, cell = (
                g.path_length_m or 0.0,
                g.path_diameter_m or 0.0,
                g.response_time_s or 0.0,
                0.0,
            )
        else:
            _, glen, gdia, gtau, cell = GAS_MODELS[g.model]
        out: dict[str, Any] = {
            "altitude_m": self.altitude_m,
            "latitude_deg": self.latitude_deg,
            "canopy_height_m": self.canopy_height_m,
            "displacement_m": self.displacement_m,
            "roughness_length_m": self.roughness_length_m,
            "sonic_height_m": s.height_m,
            "sonic_north_offset_deg": s.north_offset_deg + (180.0 if flip else 0.0),
            "sonic_path_vertical_m": vpath,
            "sonic_path_horizontal_m": hpath,
            "sonic_response_time_s": tau,
            "gas_path": g.resolved_path,
            "gas_path_length_m": glen,
            "gas_path_diameter_m": gdia,
            "gas_response_time_s": gtau,
            "separation_northward_m": g.northward_separation_m,
            "separation_eastward_m": g.eastward_separation_m,
            "separation_vertical_m": g.vertical_separation_m,
            "tube_length_m": g.tube_length_m,
            "tube_inner_diameter_m": g.tube_inner_diameter_m,
            "tube_flow_l_min": g.tube_flow_l_min,
            "tube_cell_volume_l": cell if g.cell_volume_l is None else g.cell_volume_l,
            "co2_unit": self.units.co2,
            "h2o_unit": self.units.h2o,
            "ch4_unit": self.units.ch4,
            "sampling_hz": self.sampling_hz,
            "averaging_s": self.period_s,
            "sonic_diag": DIAG_RULES.get(s.model, ("ignore", 0))
            if self.sonic_diag
            else ("ignore", 0),
            "gas_diag": DIAG_RULES.get(g.model, ("ignore", 0)) if self.gas_diag else ("ignore", 0),
            "despike": m.despike,
            "rotation": m.rotation,
            "lag_method": m.lag_method,
            "lag_co2": m.lag_co2,
            "lag_h2o": m.lag_h2o,
            "lag_ch4": m.lag_ch4,
            "detrend": m.detrend,
            "detrend_tau_s": m.detrend_tau_s,
            "spectral": m.spectral,
            "random_uncertainty_max_correlation_s": 10.0 if m.random_uncertainty else None,
            "footprint_pbl_height_m": m.pbl_height_m if m.footprint else None,
        }
        if m.rotation == "planar_fit":
            assert m.planar_fit_file is not None
            out["planar_fit_sectors"] = planar_fit_sectors(m.planar_fit_file)
        if m.spectral == "ibrom2007":
            assert m.spectral_assessment_file is not None
            out["in_situ_low_pass"] = in_situ_low_pass(m.spectral_assessment_file)
        return out


# ---------------------------------------------------------------------------------------------
# EddyPro .metadata (GHG_METADATA ini)

_EDDYPRO_VARIABLES = {
    "u": "u",
    "v": "v",
    "w": "w",
    "ts": "ts",
    "sos": None,
    "co2": "co2",
    "h2o": "h2o",
    "ch4": "ch4",
    "air_p": "pressure",
    "air_t": "air_t",
    "diag_75": "diag_gas",
    "diag_72": "diag_gas",
    "diag_77": "diag_ch4",
}


def _model(name: str) -> str:
    """EddyPro model ids carry a version suffix: csat3_1 -> csat3, hs_50_1 -> hs50."""
    base = re.sub(r"_\d+$", "", name.strip().lower())
    return base.replace("_", "")


def _gas_unit(measure_type: str, unit: str, where: str) -> str:
    unit = unit.lower()
    mt = measure_type.lower()
    if unit == "mg_m3":
        return "mass_density_mg"
    if unit == "g_m3":
        return "mass_density_g"
    if unit == "mmol_m3":
        return "molar_density"
    if mt in ("mixing_ratio", "mole_fraction"):
        return mt
    raise EcSettingsError(f"{where}: gas unit {unit!r} ({measure_type!r}) is not supported")


def from_eddypro_metadata(path: Path, site_id: str | None = None) -> EcSiteSettings:
    """Settings from an EddyPro `.metadata` file (the file's column numbers become the mapping)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        text = path.read_text(errors="replace")
        parser.read_string("\n".join(ln for ln in text.splitlines() if not ln.startswith(";")))
    except (OSError, configparser.Error) as exc:
        raise EcSettingsError(f"{path}: not an EddyPro metadata file: {exc}") from None
    flat: dict[str, str] = {}
    for section in parser.sections():
        flat.update(parser[section])

    def num(key: str, default: float | None = None) -> float:
        raw = flat.get(key, "").strip()
        if raw == "":
            if default is None:
                raise EcSettingsError(f"{path}: {key} is missing")
            return default
        try:
            return float(raw)
        except ValueError:
            raise EcSettingsError(f"{path}: {key} = {raw!r} is not a number") from None

    instruments: dict[str, dict[str, str]] = {}
    for key, value in flat.items():
        m = re.match(r"instr_(\d+)_(.+)", key)
        if m:
            instruments.setdefault(m.group(1), {})[m.group(2)] = value
    sonic = next(
        (i for i in instruments.values() if _model(i.get("model", "")) in SONIC_MODELS), None
    )
    gas_id, gas = next(
        ((k, i) for k, i in instruments.items() if _model(i.get("model", "")) in GAS_MODELS),
        (None, None),
    )
    if sonic is None:
        raise EcSettingsError(f"{path}: no known sonic among the instruments")
    columns: dict[str, int] = {}
    units: dict[str, str] = {}
    lags: dict[str, LagWindow] = {}
    for key, value in flat.items():
        m = re.match(r"col_(\d+)_variable$", key)
        if not m:
            continue
        var = _EDDYPRO_VARIABLES.get(value.strip().lower())
        if var is None:
            continue
        i = int(m.group(1))
        columns[var] = i
        unit_in = flat.get(f"col_{i}_unit_in", "").strip().lower()
        if var in ("co2", "h2o", "ch4"):
            try:
                units[var] = _gas_unit(flat.get(f"col_{i}_measure_type", ""), unit_in, f"col_{i}")
            except EcSettingsError as exc:
                raise EcSettingsError(f"{path}: {exc}") from None
            lo, hi = num(f"col_{i}_min_timelag", 0.0), num(f"col_{i}_max_timelag", 0.0)
            if hi > lo:
                lags[var] = (num(f"col_{i}_nom_timelag", 0.0), lo, hi)
        elif var == "ts" or var == "air_t":
            units[var] = "celsius" if unit_in == "celsius" else "kelvin"
        elif var == "pressure":
            units[var] = {"pa": "pa", "hpa": "hpa"}.get(unit_in, "kpa")
        elif var in ("u", "v", "w"):
            units["wind"] = "cm_s" if unit_in == "cm_sec" else "m_s"
    for need in ("u", "v", "w", "ts"):
        if need not in columns:
            raise EcSettingsError(f"{path}: no column is declared as {need}")
    gas_settings: dict[str, Any] = {}
    if gas is not None:
        gas_settings = {
            "model": _model(gas["model"]),
            "northward_separation_m": num(f"instr_{gas_id}_northward_separation", 0.0),
            "eastward_separation_m": num(f"instr_{gas_id}_eastward_separation", 0.0),
            "vertical_separation_m": num(f"instr_{gas_id}_vertical_separation", 0.0),
        }
        if GAS_MODELS[gas_settings["model"]][0] == "closed":
            gas_settings.update(
                tube_length_m=num(f"instr_{gas_id}_tube_length") / 100.0,
                tube_inner_diameter_m=num(f"instr_{gas_id}_tube_diameter") / 1000.0,
                tube_flow_l_min=num(f"instr_{gas_id}_tube_flowrate"),
            )
    sonic_id = next(k for k, i in instruments.items() if i is sonic)

    def set_or_none(key: str) -> float | None:
        # EddyPro reads 0 as "not set" and then uses 0.67 h and 0.15 h.
        v = num(key, 0.0)
        return v if v > 0 else None

    try:
        return EcSiteSettings(
            id=site_id or flat.get("site_id", "").strip() or path.stem or "site",
            altitude_m=num("altitude", 0.0),
            latitude_deg=num("latitude", 45.0),
            longitude_deg=num("longitude", 0.0),
            canopy_height_m=num("canopy_height", 0.1),
            displacement_m=set_or_none("displacement_height"),
            roughness_length_m=set_or_none("roughness_length"),
            sonic=SonicSettings(
                model=_model(sonic["model"]),
                height_m=num(f"instr_{sonic_id}_height"),
                north_offset_deg=num(f"instr_{sonic_id}_north_offset", 0.0),
            ),
            gas=GasAnalyzerSettings(**gas_settings) if gas_settings else GasAnalyzerSettings(),
            sampling_hz=num("acquisition_frequency"),
            averaging_min=num("file_duration"),
            columns=ColumnSettings(
                **{v: columns.get(v) for v in VARIABLES if v not in ("u", "v", "w", "ts")},
                u=columns["u"],
                v=columns["v"],
                w=columns["w"],
                ts=columns["ts"],
            ),
            units=UnitSettings(**units),
            methods=MethodSettings(
                lag_co2=lags.get("co2"), lag_h2o=lags.get("h2o"), lag_ch4=lags.get("ch4")
            ),
            timestamps="end",
        )
    except ValueError as exc:
        raise EcSettingsError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# ICOS ecmd


def _icos_date(raw: str) -> datetime:
    raw = raw.strip()
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M"}.get(len(raw))
    if fmt is None:
        raise ValueError(f"date {raw!r} is neither YYYYMMDD nor YYYYMMDDHHMM")
    return datetime.strptime(raw, fmt).replace(tzinfo=UTC)


def icos_filename_time(name: str) -> datetime | None:
    """The timestamp of an ICOS raw file name (SITE_EC_YYYYMMDDHHMM_...); None when the name
    has none, or twelve digits that are not a time (month 13: a file named by mistake)."""
    m = re.search(r"_(\d{12})(?:_|\.|$)", name)
    try:
        return datetime.strptime(m.group(1), "%Y%m%d%H%M").replace(tzinfo=UTC) if m else None
    except ValueError:
        return None


def from_icos_ecmd(path: Path, at: datetime | None = None) -> EcSiteSettings:
    """Settings from an ICOS `*_ecmd.csv`: the row whose DATE_OF_VARIATION_EF is the latest at or
    before `at` (default: the latest row). ICOS units: separations and tube length cm, tube
    diameter mm, flow L min-1."""
    try:
        with path.open(newline="", errors="replace") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise EcSettingsError(f"{path}: cannot read: {exc.strerror}") from None
    if not rows or "SITEID" not in rows[0]:
        raise EcSettingsError(f"{path}: not an ICOS ecmd table (no SITEID column)")
    try:
        dated = sorted(
            ((_icos_date(r["DATE_OF_VARIATION_EF"]), r) for r in rows), key=lambda x: x[0]
        )
    except (KeyError, ValueError) as exc:
        raise EcSettingsError(f"{path}: DATE_OF_VARIATION_EF: {exc}") from None
    if at is not None:
        valid = [x for x in dated if x[0] <= at]
        if not valid:
            raise EcSettingsError(f"{path}: no metadata row is in force at {at.isoformat()}")
        row = valid[-1][1]
    else:
        row = dated[-1][1]
    upper = {k.upper(): v for k, v in row.items() if k is not None}

    def num(key: str, default: float | None = None) -> float:
        raw = (upper.get(key.upper()) or "").strip()
        if raw in ("", "NA", "-9999"):
            if default is None:
                raise EcSettingsError(f"{path}: {key} is missing")
            return default
        try:
            return float(raw)
        except ValueError:
            raise EcSettingsError(f"{path}: {key} = {raw!r} is not a number") from None

    def text(key: str) -> str:
        return (upper.get(key.upper()) or "").strip().lower()

    gas_model = _model(text("GA_MODEL"))
    sonic_model = _model(text("SA_MODEL"))
    sonic_units = {"kelvin": "kelvin", "celsius": "celsius"}
    try:
        settings = EcSiteSettings(
            id=(row.get("SITEID") or "site").strip(),
            altitude_m=num("ALTITUDE", 0.0),
            latitude_deg=num("LATITUDE", 45.0),
            longitude_deg=num("LONGITUDE", 0.0),
            canopy_height_m=num("CANOPY_HEIGHT", 0.1),
            sonic=SonicSettings(
                model=sonic_model,
                height_m=num("SA_HEIGHT"),
                north_offset_deg=num("SA_NORTH_OFFSET", 0.0),
            ),
            gas=GasAnalyzerSettings(
                model=gas_model,
                path=text("GA_PATH") or None,
                northward_separation_m=num("GA_NORTHWARD_SEPARATION", 0.0) / 100.0,
                eastward_separation_m=num("GA_EASTWARD_SEPARATION", 0.0) / 100.0,
                vertical_separation_m=num("GA_VERTICAL_SEPARATION", 0.0) / 100.0,
                tube_length_m=num("GA_TUBE_LENGTH", 0.0) / 100.0,
                tube_inner_diameter_m=num("GA_TUBE_DIAMETER", 0.0) / 1000.0,
                tube_flow_l_min=num("GA_FLOWRATE", 0.0),
            ),
            sampling_hz=num("ACQUISITION_FREQUENCY"),
            averaging_min=num("FILE_DURATION"),
            columns=ColumnSettings(
                u="U",
                v="V",
                w="W",
                ts="T_SONIC",
                co2="CO2",
                h2o="H2O",
                diag_sonic="SA_DIAG",
                diag_gas="GA_DIAG",
            ),
            units=UnitSettings(
                wind="m_s",
                ts=sonic_units.get(text("T_SONIC_UNITS"), "kelvin"),
                co2=_gas_unit(text("CO2_MEASURE_TYPE"), text("CO2_UNITS"), "CO2"),
                h2o=_gas_unit(text("H2O_MEASURE_TYPE"), text("H2O_UNITS"), "H2O"),
            ),
            timestamps="end" if text("EXTERNAL_TIMESTAMP") == "end" else "start",
        )
    except ValueError as exc:
        raise EcSettingsError(f"{path}: {exc}") from None
    return settings


def read_metadata(path: Path, at: datetime | None = None) -> EcSiteSettings:
    """An EddyPro `.metadata` or an ICOS ecmd CSV, told apart by their content."""
    try:
        head = path.read_text(errors="replace")[:4096]
    except OSError as exc:
        raise EcSettingsError(f"{path}: cannot read: {exc.strerror}") from None
    if "SITEID" in head.splitlines()[0] if head else False:
        return from_icos_ecmd(path, at)
    if "[Instruments]" in head or "GHG_METADATA" in head or "[Site]" in head:
        return from_eddypro_metadata(path)
    raise EcSettingsError(f"{path}: neither an EddyPro .metadata nor an ICOS ecmd file")


# ---------------------------------------------------------------------------------------------
# EddyPro planar_fit.txt and spectral_assessment.txt

PlanarFitSector = tuple[float, float, list[list[float]]]


def planar_fit_sectors(path: Path) -> list[PlanarFitSector]:
    """(start_deg, end_deg, 3x3 matrix) of every sector of an EddyPro `planar_fit.txt`."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise EcSettingsError(f"{path}: cannot read: {exc.strerror}") from None
    out: list[PlanarFitSector] = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*Sector number\s+\d+;\s*angle:\s*([\d.]+)\s*-\s*([\d.]+)", line)
        if not m:
            continue
        try:
            matrix = [[float(x) for x in lines[i + k].split()[:3]] for k in (1, 2, 3)]
        except (IndexError, ValueError):
            raise EcSettingsError(f"{path}: line {i + 2}: incomplete rotation matrix") from None
        if any(len(r) != 3 for r in matrix):
            raise EcSettingsError(f"{path}: line {i + 2}: incomplete rotation matrix")
        out.append((float(m.group(1)), float(m.group(2)), matrix))
    if not out:
        raise EcSettingsError(f"{path}: no 'Sector number' rotation matrices")
    return out


_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip

InSituLowPass = tuple[
    float, tuple[float, float, float], float | None, tuple[float, float], tuple[float, float]
]


def in_situ_low_pass(path: Path) -> InSituLowPass:
    """Ibrom et al. (2007) parameters of an EddyPro `spectral_assessment.txt`: CO2 cut-off (mean of
    the monthly values, which EddyPro currently fits on all months together), the RH -> H2O
    cut-off exponential fit, CH4 cut-off (if any) and the correction-factor models (c1, c2) for
    unstable and stable conditions."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise EcSettingsError(f"{path}: cannot read: {exc.strerror}") from None

    def numbers(line: str) -> list[float]:
        out = []
        for tok in re.split(r"[=\s]+", line):
            try:
                out.append(float(tok))
            except ValueError:
                continue
        return out

    def find(prefix: str, start: int = 0) -> int:
        for i in range(start, len(lines)):
            if lines[i].strip().startswith(prefix):
                return i
        raise EcSettingsError(f"{path}: no line starting with {prefix!r}")

    def fc_of(gas: str) -> float | None:
        start = find(gas)
        values = []
        for name in _MONTHS:
            vals = numbers(lines[find(name, start)])
            if len(vals) > 1 and vals[1] > 0:
                values.append(vals[1])
        return sum(values) / len(values) if values else None

    co2 = fc_of("CO2")
    if co2 is None:
        raise EcSettingsError(f"{path}: no CO2 cut-off frequency")
    ch4 = fc_of("CH4")
    e = numbers(lines[find("exp1") + 1])
    unstable = numbers(lines[find("unstable")])
    stable = numbers(lines[find("stable")])
    if len(e) < 3 or len(unstable) < 2 or len(stable) < 2:
        raise EcSettingsError(f"{path}: incomplete exponential fit or correction models")
    if not all(math.isfinite(x) for x in [*e[:3], *unstable[:2], *stable[:2]]):
        raise EcSettingsError(f"{path}: non-finite parameters")
    return (
        co2,
        (e[0], e[1], e[2]),
        ch4,
        (unstable[0], unstable[1]),
        (stable[0], stable[1]),
    )


# ---------------------------------------------------------------------------------------------
# The [ec] section of the configuration


class EcSimulatorSettings(_Section):
    enabled: bool = Field(True, description="Run simulated flux towers in the ingest role.")
    count: int = Field(2, ge=0, le=10_000, description="Number of simulated towers.")
    sampling_hz: float = Field(10.0, gt=0, le=50, description="Sampling rate of the towers, Hz.")
    averaging_min: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Averaging period of the simulated sites, minutes (short, so a demo shows "
        "fluxes within minutes; real sites use 30).",
    )
    batch_s: float = Field(1.0, gt=0, le=60, description="Seconds of samples per pushed batch.")
    lag_s: float = Field(
        0.3, ge=0, le=5, description="Known time lag of CO2 and H2O behind w (closed-path like)."
    )
    id_prefix: str = Field("sim-tower-", description="Tower ids: this prefix and a 3-digit number.")
    seed: int = Field(0, description="Seed of the turbulence (same seed, same towers).")


class EcDropFolderSettings(_Section):
    enabled: bool = Field(False, description="Watch a folder for raw files (TOA5 / ICOS CSV).")
    path: Path = Field(
        Path("carbonstream-data/ec-drop"),
        description="Folder watched; one subfolder per site id holds that site's files.",
    )
    poll_s: float = Field(2.0, gt=0, le=3600, description="Seconds between scans.")
    settle_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="A file is read once its size and time have not changed for this long "
        "(a logger may still be writing it).",
    )


class EcSettings(_Section):
    sites: list[EcSiteSettings] = Field(
        default_factory=list, description="Eddy-covariance systems ([[ec.sites]] tables)."
    )
    origin: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC),
        description="Start of the ec/flux_* time grids (UTC). Earlier samples are refused.",
    )
    chunk_streams: int = Field(64, ge=1, le=65_536, description="Zarr chunk size along stream.")
    chunk_time: int = Field(
        336,
        ge=1,
        le=1_000_000,
        description="Zarr chunk size along time, periods (1 week of 30 min).",
    )
    raw_origin: datetime | None = Field(
        None,
        description="Start of the ec/raw_<rate>hz archive grid (UTC); required when a site "
        "archives raw data (a 20 Hz time axis from 2020 would be billions of entries).",
    )
    simulator: EcSimulatorSettings = Field(
        default_factory=EcSimulatorSettings, description="Simulated flux towers."
    )
    drop_folder: EcDropFolderSettings = Field(
        default_factory=EcDropFolderSettings, description="Watched folder of raw files."
    )

    @model_validator(mode="after")
    def _check(self) -> EcSettings:
        ids = [s.id for s in self.all_sites()]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"ec site id {dup[0]!r} is declared twice")
        for t in (self.origin, self.raw_origin):
            if t is not None and (t.tzinfo is None or t.utcoffset() != UTC.utcoffset(None)):
                raise ValueError("ec origins must be UTC timestamps, e.g. 2020-01-01T00:00:00Z")
        if self.raw_origin is None and any(s.archive_raw for s in self.sites):
            raise ValueError("ec.raw_origin is required when a site sets archive_raw")
        return self

    def all_sites(self) -> list[EcSiteSettings]:
        """Declared sites, then the simulated ones."""
        return [*self.sites, *simulated_sites(self.simulator)]

    def site(self, site_id: str) -> EcSiteSettings | None:
        return next((s for s in self.all_sites() if s.id == site_id), None)


def simulated_sites(sim: EcSimulatorSettings) -> list[EcSiteSettings]:
    """The settings of the simulated towers: a CSAT3 + LI-7200-like closed-path system whose
    CO2/H2O arrive `lag_s` after w, in mixing ratios, no diagnostics."""
    if not sim.enabled:
        return []
    lag = sim.lag_s
    return [
        EcSiteSettings(
            id=f"{sim.id_prefix}{i:03d}",
            altitude_m=100.0,
            latitude_deg=45.0,
            canopy_height_m=0.5,
            sonic=SonicSettings(model="csat3", height_m=4.0),
            gas=GasAnalyzerSettings(
                model="generic",
                path="open",
                path_length_m=0.127,
                path_diameter_m=0.0095,
                response_time_s=0.1,
            ),
            sampling_hz=sim.sampling_hz,
            averaging_min=sim.averaging_min,
            columns=ColumnSettings(pressure="PA"),
            units=UnitSettings(co2="mixing_ratio", h2o="mixing_ratio"),
            methods=MethodSettings(
                lag_co2=(lag, max(0.0, lag - 1.0), lag + 1.0),
                lag_h2o=(lag, max(0.0, lag - 1.0), lag + 1.0),
                footprint=True,
            ),
            sonic_diag=False,
            gas_diag=False,
        )
        for i in range(sim.count)
    ]
