//! `_core.ec`: bindings of `crate::ec`.
//!
//! The configuration arrives as a flat dict of resolved numbers and choices (built by
//! `connectors/ec/settings.py`, which knows instrument models and metadata files); unknown keys are
//! refused so a typo never silently falls back to a default. Results leave as a dict of FLUXNET
//! names -> float (NaN where the kernel says `None`) and a list of flag strings saying why.

use std::collections::HashSet;

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::boundary::compute;
use super::errors::InputError;
use crate::ec::{
    Detrend, DiagRule, EcConfig, EcError, Footprint, GasAnalyzer, GasPath, GasUnit, InSituLowPass,
    LagMethod, LagSetting, LagWindow, PeriodFlag, PeriodResult, PlanarFitSector, PlanarFitSectors,
    RandomUncertainty, RawPeriod, Rotation, Separation, Site, Sonic, SpectralCorrection, Tube, Var,
    Workspace,
};

/// Reads keys of the config dict, remembering which were used.
struct Keys<'a, 'py> {
    dict: &'a Bound<'py, PyDict>,
    used: HashSet<String>,
}

impl<'py> Keys<'_, 'py> {
    fn raw(&mut self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.used.insert(key.to_string());
        match self.dict.get_item(key)? {
            Some(v) if !v.is_none() => Ok(Some(v)),
            _ => Ok(None),
        }
    }

    fn opt<T: FromPyObjectOwned<'py>>(&mut self, key: &str) -> PyResult<Option<T>> {
        match self.raw(key)? {
            None => Ok(None),
            Some(v) => v.extract::<T>().map(Some).map_err(|e| {
                let e: PyErr = e.into();
                InputError::new_err(format!("ec config: {key}: {e}"))
            }),
        }
    }

    fn or<T: FromPyObjectOwned<'py>>(&mut self, key: &str, default: T) -> PyResult<T> {
        Ok(self.opt(key)?.unwrap_or(default))
    }

    fn finish(self) -> PyResult<()> {
        let mut unknown: Vec<String> = self
            .dict
            .keys()
            .iter()
            .map(|k| k.to_string())
            .filter(|k| !self.used.contains(k))
            .collect();
        unknown.sort();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(InputError::new_err(format!(
                "ec config: unknown key(s) {unknown:?}"
            )))
        }
    }
}

fn bad(key: &str, value: &str, why: &str) -> PyErr {
    InputError::new_err(format!("ec config: {key} = {value:?}: {why}"))
}

fn gas_unit(key: &str, s: &str) -> PyResult<GasUnit> {
    Ok(match s {
        "molar_density" => GasUnit::MolarDensityMmolM3,
        "mass_density_mg" => GasUnit::MassDensityMgM3,
        "mass_density_g" => GasUnit::MassDensityGM3,
        "mixing_ratio" => GasUnit::MixingRatio,
        "mole_fraction" => GasUnit::MoleFraction,
        _ => {
            return Err(bad(
                key,
                s,
                "expected molar_density, mass_density_mg, mass_density_g, mixing_ratio or mole_fraction",
            ));
        }
    })
}

fn diag_rule(k: &mut Keys, key: &str, default: DiagRule) -> PyResult<DiagRule> {
    let Some((rule, mask)) = k.opt::<(String, u32)>(key)? else {
        return Ok(default);
    };
    Ok(match rule.as_str() {
        "ignore" => DiagRule::Ignore,
        "any_bit_set" => DiagRule::AnyBitSet(mask),
        "all_bits_set" => DiagRule::AllBitsSet(mask),
        _ => {
            return Err(bad(
                key,
                &rule,
                "expected ignore, any_bit_set or all_bits_set",
            ));
        }
    })
}

fn lag_setting(k: &mut Keys, key: &str) -> PyResult<LagSetting> {
    Ok(match k.opt::<(f64, f64, f64)>(key)? {
        None => LagSetting::Auto,
        Some((nominal_s, min_s, max_s)) => LagSetting::Fixed(LagWindow {
            nominal_s,
            min_s,
            max_s,
        }),
    })
}

/// (co2_fc_hz, h2o_fc_exp, ch4_fc_hz, unstable (c1, c2), stable (c1, c2)).
type InSituTuple = (f64, [f64; 3], Option<f64>, (f64, f64), (f64, f64));

/// Builds an [`EcConfig`] from the flat dict of `EcSiteSettings.kernel_config()`.
fn parse_config(dict: &Bound<'_, PyDict>) -> PyResult<EcConfig> {
    let d = EcConfig::default();
    let mut k = Keys {
        dict,
        used: HashSet::new(),
    };
    let site = Site {
        altitude_m: k.or("altitude_m", d.site.altitude_m)?,
        latitude_deg: k.or("latitude_deg", d.site.latitude_deg)?,
        canopy_height_m: k.or("canopy_height_m", d.site.canopy_height_m)?,
        displacement_m: k.opt("displacement_m")?,
        roughness_length_m: k.opt("roughness_length_m")?,
    };
    let sonic = Sonic {
        height_m: k.or("sonic_height_m", d.sonic.height_m)?,
        north_offset_deg: k.or("sonic_north_offset_deg", d.sonic.north_offset_deg)?,
        path_vertical_m: k.or("sonic_path_vertical_m", d.sonic.path_vertical_m)?,
        path_horizontal_m: k.or("sonic_path_horizontal_m", d.sonic.path_horizontal_m)?,
        response_time_s: k.or("sonic_response_time_s", d.sonic.response_time_s)?,
    };
    let li = GasAnalyzer::li7500();
    let analyzer = GasAnalyzer {
        path_length_m: k.or("gas_path_length_m", li.path_length_m)?,
        path_diameter_m: k.or("gas_path_diameter_m", li.path_diameter_m)?,
        response_time_s: k.or("gas_response_time_s", li.response_time_s)?,
    };
    let separation = Separation {
        northward_m: k.or("separation_northward_m", 0.0)?,
        eastward_m: k.or("separation_eastward_m", 0.0)?,
        vertical_m: k.or("separation_vertical_m", 0.0)?,
    };
    let path: String = k.or("gas_path", "open".to_string())?;
    let tube = Tube {
        length_m: k.or("tube_length_m", 0.0)?,
        inner_diameter_m: k.or("tube_inner_diameter_m", 0.0)?,
        flow_l_min: k.or("tube_flow_l_min", 0.0)?,
        cell_volume_l: k.or("tube_cell_volume_l", 0.0)?,
    };
    let gas_path = match path.as_str() {
        "open" => GasPath::Open {
            analyzer,
            separation,
        },
        "closed" => GasPath::Closed {
            analyzer,
            separation,
            tube,
        },
        _ => return Err(bad("gas_path", &path, "expected open or closed")),
    };
    let unit = |k: &mut Keys, key: &str| -> PyResult<GasUnit> {
        let s: String = k.or(key, "molar_density".to_string())?;
        gas_unit(key, &s)
    };
    let co2_unit = unit(&mut k, "co2_unit")?;
    let h2o_unit = unit(&mut k, "h2o_unit")?;
    let ch4_unit = unit(&mut k, "ch4_unit")?;

    let rotation: String = k.or("rotation", "double".to_string())?;
    let rotation = match rotation.as_str() {
        "double" => Rotation::Double,
        "triple" => Rotation::Triple,
        "planar_fit" => {
            let sectors: Vec<(f64, f64, [[f64; 3]; 3])> =
                k.opt("planar_fit_sectors")?.unwrap_or_default();
            let sectors = sectors
                .into_iter()
                .map(|(start_deg, end_deg, matrix)| PlanarFitSector {
                    start_deg,
                    end_deg,
                    matrix,
                    b0: f64::NAN,
                })
                .collect();
            Rotation::PlanarFit(PlanarFitSectors::new(sectors).map_err(ec_err)?)
        }
        _ => {
            return Err(bad(
                "rotation",
                &rotation,
                "expected double, triple or planar_fit",
            ));
        }
    };
    let mut lag = d.lag.clone();
    let method: String = k.or("lag_method", "covariance_max_with_default".to_string())?;
    lag.method = match method.as_str() {
        "constant" => LagMethod::Constant,
        "covariance_max" => LagMethod::CovarianceMax,
        "covariance_max_with_default" => LagMethod::CovarianceMaxWithDefault,
        _ => {
            return Err(bad(
                "lag_method",
                &method,
                "expected constant, covariance_max or covariance_max_with_default",
            ));
        }
    };
    lag.co2 = lag_setting(&mut k, "lag_co2")?;
    lag.h2o = lag_setting(&mut k, "lag_h2o")?;
    lag.ch4 = lag_setting(&mut k, "lag_ch4")?;

    let detrend: String = k.or("detrend", "block".to_string())?;
    let tau_s: f64 = k.or("detrend_tau_s", 250.0)?;
    let detrend = match detrend.as_str() {
        "block" => Detrend::Block,
        "linear" => Detrend::Linear,
        "running_mean" => Detrend::RunningMean { tau_s },
        "exp_running_mean" => Detrend::ExpRunningMean { tau_s },
        _ => {
            return Err(bad(
                "detrend",
                &detrend,
                "expected block, linear, running_mean or exp_running_mean",
            ));
        }
    };
    let spectral: String = k.or("spectral", "moncrieff1997".to_string())?;
    let sensor_separation: bool = k.or("spectral_sensor_separation", false)?;
    let spectral = match spectral.as_str() {
        "none" => SpectralCorrection::None,
        "moncrieff1997" => SpectralCorrection::Moncrieff1997 { sensor_separation },
        "ibrom2007" => {
            let p: Option<InSituTuple> = k.opt("in_situ_low_pass")?;
            let Some((co2_fc_hz, h2o_fc_exp, ch4_fc_hz, unstable, stable)) = p else {
                return Err(bad(
                    "spectral",
                    "ibrom2007",
                    "needs in_situ_low_pass (co2_fc_hz, h2o_fc_exp, ch4_fc_hz, unstable, stable)",
                ));
            };
            SpectralCorrection::Ibrom2007(InSituLowPass {
                co2_fc_hz,
                h2o_fc_exp,
                ch4_fc_hz,
                unstable,
                stable,
            })
        }
        _ => {
            return Err(bad(
                "spectral",
                &spectral,
                "expected none, moncrieff1997 or ibrom2007",
            ));
        }
    };
    let random_uncertainty = match k.opt::<f64>("random_uncertainty_max_correlation_s")? {
        None => RandomUncertainty::None,
        Some(max_correlation_s) => RandomUncertainty::FinkelsteinSims2001 { max_correlation_s },
    };
    let footprint = match k.opt::<f64>("footprint_pbl_height_m")? {
        None => Footprint::None,
        Some(pbl_height_m) => Footprint::Kljun2004 { pbl_height_m },
    };
    let despike = if k.or("despike", true)? {
        d.despike.clone()
    } else {
        None
    };
    let cfg = EcConfig {
        site,
        sonic,
        gas_path,
        co2_unit,
        h2o_unit,
        ch4_unit,
        sampling_hz: k.or("sampling_hz", d.sampling_hz)?,
        averaging_s: k.or("averaging_s", d.averaging_s)?,
        sonic_diag: diag_rule(&mut k, "sonic_diag", d.sonic_diag)?,
        gas_diag: diag_rule(&mut k, "gas_diag", d.gas_diag)?,
        ch4_diag: diag_rule(&mut k, "ch4_diag", d.ch4_diag)?,
        limits: d.limits.clone(),
        max_missing_fraction: k.or("max_missing_fraction", d.max_missing_fraction)?,
        despike,
        rotation,
        lag,
        detrend,
        spectral,
        steady_state_subperiods: k.or("steady_state_subperiods", d.steady_state_subperiods)?,
        random_uncertainty,
        footprint,
    };
    k.finish()?;
    cfg.validate().map_err(ec_err)?;
    Ok(cfg)
}

fn ec_err(e: EcError) -> PyErr {
    e.into()
}

/// The kernel's column names, in `RawPeriod` order.
const COLUMNS: [&str; 12] = [
    "u",
    "v",
    "w",
    "ts",
    "co2",
    "h2o",
    "ch4",
    "pressure_pa",
    "air_t_k",
    "diag_sonic",
    "diag_gas",
    "diag_ch4",
];

/// One tower's kernel: its configuration and a reusable workspace.
#[pyclass(module = "carbonstream._core.ec")]
pub struct EcProcessor {
    cfg: EcConfig,
    ws: Workspace,
}

#[pymethods]
impl EcProcessor {
    #[new]
    fn new(config: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Self {
            cfg: parse_config(config)?,
            ws: Workspace::default(),
        })
    }

    /// Samples a complete period has (sampling rate x averaging time).
    #[getter]
    fn expected_samples(&self) -> usize {
        self.cfg.expected_samples()
    }

    /// Processes one period. `columns` maps kernel names (u, v, w, ts [K], co2, h2o, ch4,
    /// pressure_pa, air_t_k, diag_sonic, diag_gas, diag_ch4) to float32 arrays of equal length;
    /// u, v, w and ts are required. Returns (values by FLUXNET name, NaN where unavailable; flags).
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        columns: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
        let mut arrays: Vec<Option<PyReadonlyArray1<'py, f32>>> = Vec::with_capacity(12);
        for name in COLUMNS {
            let a = match columns.get_item(name)? {
                Some(v) if !v.is_none() => {
                    Some(v.extract::<PyReadonlyArray1<'py, f32>>().map_err(|e| {
                        InputError::new_err(format!("column {name}: expected a float32 array: {e}"))
                    })?)
                }
                _ => None,
            };
            if let Some(a) = &a
                && !a.is_contiguous()
            {
                return Err(InputError::new_err(format!(
                    "column {name}: must be a contiguous array"
                )));
            }
            arrays.push(a);
        }
        for key in columns.keys() {
            let key = key.to_string();
            if !COLUMNS.contains(&key.as_str()) {
                return Err(InputError::new_err(format!(
                    "unknown column {key:?}; columns are {COLUMNS:?}"
                )));
            }
        }
        let slices: Vec<Option<&[f32]>> = arrays
            .iter()
            .map(|a| a.as_ref().map(|a| a.as_slice()).transpose())
            .collect::<Result<_, _>>()?;
        for (i, name) in COLUMNS.iter().take(4).enumerate() {
            if slices[i].is_none() {
                return Err(InputError::new_err(format!("column {name} is required")));
            }
        }
        let raw = RawPeriod {
            u: slices[0].unwrap_or_default(),
            v: slices[1].unwrap_or_default(),
            w: slices[2].unwrap_or_default(),
            ts: slices[3].unwrap_or_default(),
            co2: slices[4],
            h2o: slices[5],
            ch4: slices[6],
            pressure_pa: slices[7],
            air_t_k: slices[8],
            diag_sonic: slices[9],
            diag_gas: slices[10],
            diag_ch4: slices[11],
        };
        let (cfg, ws) = (&self.cfg, &mut self.ws);
        let res = compute(py, || crate::ec::process_period_with(ws, &raw, cfg))?;
        let values = PyDict::new(py);
        for (name, v) in fluxnet_values(&res) {
            values.set_item(name, v)?;
        }
        let flags = PyList::new(py, res.flags.iter().map(flag_text))?;
        Ok((values, flags))
    }
}

fn nan(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

fn var_name(v: Var) -> &'static str {
    v.name()
}

/// A flag as `code` or `code:var` or `code:var:value`.
fn flag_text(f: &PeriodFlag) -> String {
    match f {
        PeriodFlag::TooManyMissing { var, fraction } => {
            format!("too_many_missing:{}:{fraction:.4}", var_name(*var))
        }
        PeriodFlag::ConstantSignal { var } => format!("constant_signal:{}", var_name(*var)),
        PeriodFlag::ManySpikes { var, fraction } => {
            format!("many_spikes:{}:{fraction:.4}", var_name(*var))
        }
        PeriodFlag::ShortPeriod { samples, expected } => {
            format!("short_period:{samples}:{expected}")
        }
        PeriodFlag::PressureFromAltitude { pa } => format!("pressure_from_altitude:{pa:.0}"),
        PeriodFlag::NoWaterVapour => "no_water_vapour".into(),
        PeriodFlag::DilutionNotCorrected { var } => {
            format!("dilution_not_corrected:{}", var_name(*var))
        }
        PeriodFlag::NoPlanarFitSector { wind_dir_deg } => {
            format!("no_planar_fit_sector:{wind_dir_deg:.1}")
        }
        PeriodFlag::DefaultLagUsed { var } => format!("default_lag_used:{}", var_name(*var)),
        PeriodFlag::FootprintOutsideValidity => "footprint_outside_validity".into(),
        PeriodFlag::FootprintUnavailable => "footprint_unavailable".into(),
        PeriodFlag::NotFinite { quantity } => format!("not_finite:{quantity}"),
    }
}

/// Every output by its FLUXNET (or EddyPro FLUXNET-style) name. Units: FLUXNET's (temperatures
/// degC, pressure kPa, fluxes as in `Fluxes`).
fn fluxnet_values(r: &PeriodResult) -> Vec<(&'static str, f64)> {
    let f = &r.fluxes;
    let u = &r.uncorrected;
    let t = &r.turbulence;
    let w = &r.wind;
    let q = &r.quality;
    let ru = &r.random_uncertainty;
    let flag = |x: Option<crate::ec::FluxQuality>| x.map(|q| q64(q.flag));
    let mut out = vec![
        ("FC", nan(f.fc)),
        ("FH2O", nan(f.fh2o)),
        ("FCH4", nan(f.fch4)),
        ("LE", nan(f.le)),
        ("ET", nan(f.et)),
        ("H", nan(f.h)),
        ("TAU", nan(f.tau)),
        ("USTAR", nan(t.ustar)),
        ("ZL", nan(t.zl)),
        ("MO_LENGTH", nan(t.mo_length)),
        ("TKE", nan(t.tke)),
        ("BOWEN", nan(t.bowen)),
        ("TSTAR", nan(t.tstar)),
        ("FC_SSITC_TEST", nan(flag(q.fc))),
        ("FH2O_SSITC_TEST", nan(flag(q.h2o))),
        ("LE_SSITC_TEST", nan(flag(q.h2o))),
        ("ET_SSITC_TEST", nan(flag(q.h2o))),
        ("FCH4_SSITC_TEST", nan(flag(q.fch4))),
        ("H_SSITC_TEST", nan(flag(q.h))),
        ("TAU_SSITC_TEST", nan(flag(q.tau))),
        ("FC_RANDUNC", nan(ru.fc)),
        ("FH2O_RANDUNC", nan(ru.fh2o)),
        ("FCH4_RANDUNC", nan(ru.fch4)),
        ("LE_RANDUNC", nan(ru.le)),
        ("ET_RANDUNC", nan(ru.et)),
        ("H_RANDUNC", nan(ru.h)),
        ("TAU_RANDUNC", nan(ru.tau)),
        ("FC_UNCORR", nan(u.fc)),
        ("FH2O_UNCORR", nan(u.fh2o)),
        ("FCH4_UNCORR", nan(u.fch4)),
        ("LE_UNCORR", nan(u.le)),
        ("H_UNCORR", nan(u.h)),
        ("TAU_UNCORR", nan(u.tau)),
        ("USTAR_UNCORR", nan(t.ustar_uncorrected)),
        ("ZL_UNCORR", nan(t.zl_uncorrected)),
        ("MO_LENGTH_UNCORR", nan(t.mo_length_uncorrected)),
        ("WS", w.ws),
        ("WS_MAX", w.ws_max),
        ("WD", w.wd),
        ("WD_SIGMA", w.wd_sigma),
        ("U_UNROT", w.u_unrot),
        ("V_UNROT", w.v_unrot),
        ("W_UNROT", w.w_unrot),
        ("U", w.u_rot),
        ("V", w.v_rot),
        ("W", w.w_rot),
        ("U_SIGMA", w.sigma_u),
        ("V_SIGMA", w.sigma_v),
        ("W_SIGMA", w.sigma_w),
        ("T_SONIC", r.means.t_sonic_k - 273.15),
        ("CO2", nan(r.means.co2.map(|g| g.mole_fraction))),
        ("H2O", nan(r.means.h2o.map(|g| g.mole_fraction))),
        ("CH4", nan(r.means.ch4.map(|g| g.mole_fraction))),
        ("CO2_MIXING_RATIO", nan(r.means.co2.map(|g| g.mixing_ratio))),
        ("H2O_MIXING_RATIO", nan(r.means.h2o.map(|g| g.mixing_ratio))),
        ("CH4_MIXING_RATIO", nan(r.means.ch4.map(|g| g.mixing_ratio))),
        (
            "CO2_MOLAR_DENSITY",
            nan(r.means.co2.map(|g| g.molar_density)),
        ),
        (
            "H2O_MOLAR_DENSITY",
            nan(r.means.h2o.map(|g| g.molar_density)),
        ),
        (
            "CH4_MOLAR_DENSITY",
            nan(r.means.ch4.map(|g| g.molar_density)),
        ),
        ("N_SAMPLES", r.n_samples as f64),
        ("N_USED", r.n_used as f64),
        ("MISSING_FRACTION", r.missing_fraction),
    ];
    let air = r.air.as_ref();
    out.extend([
        ("TA_EP", nan(air.map(|a| a.ta_k - 273.15))),
        ("PA_EP", nan(air.map(|a| a.pa / 1000.0))),
        ("RH_EP", nan(air.map(|a| a.rh_percent))),
        ("VPD_EP", nan(air.map(|a| a.vpd / 100.0))),
        ("TDEW_EP", nan(air.map(|a| a.tdew_k - 273.15))),
        ("AIR_DENSITY", nan(air.map(|a| a.rho))),
        ("AIR_CP", nan(air.map(|a| a.cp))),
        ("AIR_MV", nan(air.map(|a| a.molar_volume))),
        ("LAMBDA", nan(air.map(|a| a.lambda))),
    ]);
    let rot = r.rotation.as_ref();
    out.extend([
        ("ROT_YAW", nan(rot.map(|x| x.yaw_deg))),
        ("ROT_PITCH", nan(rot.and_then(|x| x.pitch_deg))),
        ("ROT_ROLL", nan(rot.and_then(|x| x.roll_deg))),
        (
            "PLANAR_FIT_SECTOR",
            nan(rot.and_then(|x| x.planar_fit_sector.map(|s| s as f64 + 1.0))),
        ),
    ]);
    let cv = r.covariances.as_ref();
    out.extend([
        ("W_U_COV", nan(cv.map(|c| c.w_u))),
        ("W_V_COV", nan(cv.map(|c| c.w_v))),
        ("W_T_SONIC_COV", nan(cv.map(|c| c.w_ts))),
        ("W_CO2_COV", nan(cv.and_then(|c| c.w_co2))),
        ("W_H2O_COV", nan(cv.and_then(|c| c.w_h2o))),
        ("W_CH4_COV", nan(cv.and_then(|c| c.w_ch4))),
        ("T_SONIC_SIGMA", nan(cv.map(|c| c.var_ts.sqrt()))),
        ("CO2_SIGMA", nan(cv.and_then(|c| c.var_co2.map(f64::sqrt)))),
        ("H2O_SIGMA", nan(cv.and_then(|c| c.var_h2o.map(f64::sqrt)))),
        ("CH4_SIGMA", nan(cv.and_then(|c| c.var_ch4.map(f64::sqrt)))),
    ]);
    let sf = r.spectral.as_ref();
    out.extend([
        ("TAU_SCF", nan(sf.map(|s| s.tau))),
        ("H_SCF", nan(sf.map(|s| s.h))),
        ("FC_SCF", nan(sf.map(|s| s.co2))),
        ("LE_SCF", nan(sf.map(|s| s.h2o))),
        ("FCH4_SCF", nan(sf.map(|s| s.ch4))),
    ]);
    for (lag, actual, nominal, default) in [
        (
            r.lags.co2,
            "CO2_TLAG_ACTUAL",
            "CO2_TLAG_NOMINAL",
            "CO2_TLAG_USED_DEFAULT",
        ),
        (
            r.lags.h2o,
            "H2O_TLAG_ACTUAL",
            "H2O_TLAG_NOMINAL",
            "H2O_TLAG_USED_DEFAULT",
        ),
        (
            r.lags.ch4,
            "CH4_TLAG_ACTUAL",
            "CH4_TLAG_NOMINAL",
            "CH4_TLAG_USED_DEFAULT",
        ),
    ] {
        out.push((actual, nan(lag.map(|l| l.seconds))));
        out.push((nominal, nan(lag.map(|l| l.nominal_s))));
        out.push((
            default,
            nan(lag.map(|l| f64::from(u8::from(l.default_used)))),
        ));
    }
    let fp = r.footprint.as_ref();
    out.extend([
        ("FETCH_MAX", nan(fp.map(|x| x.peak))),
        ("FETCH_OFFSET", nan(fp.map(|x| x.offset))),
        ("FETCH_10", nan(fp.map(|x| x.x10))),
        ("FETCH_30", nan(fp.map(|x| x.x30))),
        ("FETCH_50", nan(fp.map(|x| x.x50))),
        ("FETCH_70", nan(fp.map(|x| x.x70))),
        ("FETCH_80", nan(fp.map(|x| x.x80))),
        ("FETCH_90", nan(fp.map(|x| x.x90))),
    ]);
    out.extend([
        ("U_ITC", nan(q.itc_u)),
        ("W_ITC", nan(q.itc_w)),
        ("T_SONIC_ITC", nan(q.itc_ts)),
        ("TAU_SS", nan(q.tau.map(|x| x.steady_state_deviation))),
        ("H_SS", nan(q.h.map(|x| x.steady_state_deviation))),
        ("FC_SS", nan(q.fc.map(|x| x.steady_state_deviation))),
        ("FH2O_SS", nan(q.h2o.map(|x| x.steady_state_deviation))),
        ("FCH4_SS", nan(q.fch4.map(|x| x.steady_state_deviation))),
    ]);
    const SPIKES: [&str; 7] = [
        "U_SPIKES",
        "V_SPIKES",
        "W_SPIKES",
        "T_SONIC_SPIKES",
        "CO2_SPIKES",
        "H2O_SPIKES",
        "CH4_SPIKES",
    ];
    const MISSING: [&str; 7] = [
        "U_MISSING",
        "V_MISSING",
        "W_MISSING",
        "T_SONIC_MISSING",
        "CO2_MISSING",
        "H2O_MISSING",
        "CH4_MISSING",
    ];
    for v in Var::ALL {
        out.push((SPIKES[v.index()], r.spikes.get(v) as f64));
        out.push((MISSING[v.index()], r.missing.get(v) as f64));
    }
    out
}

fn q64(x: u8) -> f64 {
    f64::from(x)
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "ec")?;
    m.add_class::<EcProcessor>()?;
    parent.add_submodule(&m)?;
    Ok(())
}
