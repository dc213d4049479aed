//! Eddy-covariance fluxes of one averaging period, agreeing with EddyPro on its reference data.
//!
//! [`process_period`] runs EddyPro's sequence on float32 columns ([`RawPeriod`]) with the settings
//! of one measurement system ([`EcConfig`]):
//!
//! 1. unit conversion, diagnostic words and absolute limits ([`filter`]); a variable with more than
//!    10 % missing samples is not used; shorter gaps are bridged linearly;
//! 2. despiking after Vickers & Mahrt 1997 ([`despike`]);
//! 3. tilt correction: double/triple rotation or sector-wise planar fit ([`rotation`]);
//! 4. time lag by covariance maximisation with default fallback ([`lag`]);
//! 5. block/linear/running-mean detrending ([`detrend`]);
//! 6. air properties from the sonic temperature ([`air`]);
//! 7. level-0 fluxes, spectral correction factors ([`spectral`]), sonic humidity correction and
//!    WPL (open path) or mixing-ratio fluxes (closed path) ([`fluxes`]);
//! 8. u*, Obukhov length, Mauder & Foken 2004 quality flags ([`qc`]), Finkelstein & Sims 2001
//!    random error ([`uncertainty`]), Kljun 2004 footprint ([`footprint`]).
//!
//! Internally everything is f64 in a [`Workspace`] of contiguous buffers that can be reused from
//! period to period ([`process_period_with`]); the samples are traversed a small, fixed number of
//! times and nothing is allocated per sample.

pub mod air;
pub mod config;
pub mod despike;
pub mod detrend;
pub mod error;
pub mod filter;
pub mod fluxes;
pub mod footprint;
pub mod input;
pub mod lag;
pub mod qc;
pub mod result;
pub mod rotation;
pub mod spectral;
pub mod stats;
pub mod uncertainty;

pub use config::{
    AbsoluteLimits, Despike, Detrend, DiagRule, EcConfig, Footprint, GasAnalyzer, GasPath, GasUnit,
    InSituLowPass, LagConfig, LagMethod, LagSetting, LagWindow, PlanarFitSector, PlanarFitSectors,
    RandomUncertainty, Rotation, Separation, Site, Sonic, SpectralCorrection, Tube,
};
pub use error::EcError;
pub use input::RawPeriod;
pub use result::{
    Covariances, FluxQuality, Fluxes, GasMean, LagResult, Lags, Means, PeriodFlag, PeriodResult,
    Quality, RotationAngles, Turbulence, Var, VarCounts, Wind,
};
pub use spectral::SpectralFactors;

use air::{Humidity, M_CH4, M_CO2, M_H2O};
use result::Var::{Ch4, Co2, H2o, Ts, U, V, W};

/// Reusable buffers: keep one per worker thread and pass it to [`process_period_with`] to avoid
/// allocating ~4 MB per period.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Samples per variable (indexed by [`Var`]), converted, screened, despiked, rotated.
    x: [Vec<f64>; 7],
    /// Fluctuations per variable over the lag-aligned common range.
    fl: [Vec<f64>; 7],
    despike: despike::DespikeScratch,
    /// Lag search buffers.
    lags: lag::LagScratch,
    correlations: uncertainty::CorrelationScratch,
    /// Per steady-state sub-period and variable: sums of x, w x and x^2 of the fluctuations.
    moment_sums: Vec<[[f64; 3]; 7]>,
    /// Bad-sample masks of the sonic, gas and CH4 diagnostic columns.
    masks: [Vec<u8>; 3],
}

/// Processes one period with a fresh workspace. See the module documentation for the steps.
pub fn process_period(raw: &RawPeriod, cfg: &EcConfig) -> Result<PeriodResult, EcError> {
    let mut ws = Workspace::default();
    process_period_with(&mut ws, raw, cfg)
}

const SONIC: [Var; 4] = [U, V, W, Ts];
const GASES: [Var; 3] = [Co2, H2o, Ch4];

/// How a gas's column maps to the kernel's internal unit.
struct GasSpec {
    unit: config::GasUnit,
    /// g mol-1.
    molar_mass: f64,
    /// mol per unit of the gas's mixing-ratio prefix (CO2 1e-6, H2O 1e-3, CH4 1e-9).
    prefix: f64,
    limits: (f64, f64),
    lag: LagSetting,
}

fn gas_spec(cfg: &EcConfig, g: Var) -> GasSpec {
    match g {
        Co2 => GasSpec {
            unit: cfg.co2_unit,
            molar_mass: M_CO2 * 1e3,
            prefix: 1e-6,
            limits: cfg.limits.co2_ppm,
            lag: cfg.lag.co2,
        },
        H2o => GasSpec {
            unit: cfg.h2o_unit,
            molar_mass: M_H2O * 1e3,
            prefix: 1e-3,
            limits: cfg.limits.h2o_ppt,
            lag: cfg.lag.h2o,
        },
        _ => GasSpec {
            unit: cfg.ch4_unit,
            molar_mass: M_CH4 * 1e3,
            prefix: 1e-9,
            limits: cfg.limits.ch4_ppb,
            lag: cfg.lag.ch4,
        },
    }
}

impl GasSpec {
    /// Factor from the column's unit to the internal unit: mmol m-3 for densities, the gas's
    /// prefix for mixing ratios and mole fractions.
    fn scale(&self) -> f64 {
        match self.unit {
            GasUnit::MolarDensityMmolM3 | GasUnit::MixingRatio | GasUnit::MoleFraction => 1.0,
            GasUnit::MassDensityMgM3 => 1.0 / self.molar_mass,
            GasUnit::MassDensityGM3 => 1e3 / self.molar_mass,
        }
    }

    /// Flux in mol m-2 s-1 per unit of internal covariance.
    fn flux_per_cov(&self, air: &air::AirProperties) -> f64 {
        if self.unit.is_density() {
            1e-3
        } else {
            air.rho_d_mol * self.prefix
        }
    }

    fn mean(&self, internal: f64, air: &air::AirProperties, chi_h2o: f64) -> GasMean {
        if self.unit.is_density() {
            let mol = internal * 1e-3;
            GasMean {
                molar_density: internal,
                mole_fraction: mol / air.rho_mol / self.prefix,
                mixing_ratio: mol / air.rho_d_mol / self.prefix,
            }
        } else {
            GasMean {
                molar_density: internal * self.prefix * air.rho_d_mol * 1e3,
                mole_fraction: internal / (1.0 + chi_h2o),
                mixing_ratio: internal,
            }
        }
    }
}

fn column<'a>(raw: &RawPeriod<'a>, v: Var) -> Option<&'a [f32]> {
    match v {
        U => Some(raw.u),
        V => Some(raw.v),
        W => Some(raw.w),
        Ts => Some(raw.ts),
        Co2 => raw.co2,
        H2o => raw.h2o,
        Ch4 => raw.ch4,
    }
}

/// Processes one period reusing `ws`'s buffers.
pub fn process_period_with(
    ws: &mut Workspace,
    raw: &RawPeriod,
    cfg: &EcConfig,
) -> Result<PeriodResult, EcError> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `process_period_avx2` is compiled with.
            return unsafe { process_period_avx2(ws, raw, cfg) };
        }
    }
    process_period_impl(ws, raw, cfg)
}

/// The whole pipeline compiled for AVX2 (the crate's baseline is SSE2): every per-sample loop
/// that is inlined here (loading and screening, rotation, fluctuations, quality sums) uses
/// four-lane registers. Rust never contracts `a * b + c` into an FMA by itself and vectorises only
/// loops whose order of operations it can keep, so results are bit-identical to the baseline build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn process_period_avx2(
    ws: &mut Workspace,
    raw: &RawPeriod,
    cfg: &EcConfig,
) -> Result<PeriodResult, EcError> {
    process_period_impl(ws, raw, cfg)
}

#[inline(always)]
fn process_period_impl(
    ws: &mut Workspace,
    raw: &RawPeriod,
    cfg: &EcConfig,
) -> Result<PeriodResult, EcError> {
    cfg.validate()?;
    let n = raw.len_checked()?;
    let expected = cfg.expected_samples().max(1);
    if n > expected + expected / 1000 {
        return Err(EcError::TooManySamples {
            len: n,
            expected,
            sampling_hz: cfg.sampling_hz,
            averaging_s: cfg.averaging_s,
        });
    }
    let fs = cfg.sampling_hz;
    let deficit = expected.saturating_sub(n);
    let denom = n.max(expected) as f64;
    let mut res = PeriodResult::empty(n);
    if deficit > 0 {
        res.flags.push(PeriodFlag::ShortPeriod {
            samples: n,
            expected,
        });
    }

    // Ambient pressure: the column's mean, else the standard atmosphere at the site.
    let pa = match raw
        .pressure_pa
        .map(filter::finite_mean_f32)
        .filter(|p| (10_000.0..=120_000.0).contains(p))
    {
        Some(p) => p,
        None => {
            let p = air::standard_pressure(cfg.site.altitude_m);
            res.flags.push(PeriodFlag::PressureFromAltitude { pa: p });
            p
        }
    };

    // 1. Load, screen, count.
    let lim = &cfg.limits;
    let mut missing = [0usize; 7];
    let mut has_mask = [false; 3];
    for (k, (col, rule)) in [
        (raw.diag_sonic, cfg.sonic_diag),
        (raw.diag_gas, cfg.gas_diag),
        (raw.diag_ch4, cfg.ch4_diag),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(d) = col.filter(|_| rule != DiagRule::Ignore) {
            filter::diag_mask(&mut ws.masks[k], d, rule);
            has_mask[k] = true;
        }
    }
    for v in SONIC {
        let limits = match v {
            U | V => (-lim.u_max, lim.u_max),
            W => (-lim.w_max, lim.w_max),
            _ => (lim.ts_min_k, lim.ts_max_k),
        };
        missing[v.index()] = filter::load_screened(
            &mut ws.x[v.index()],
            column(raw, v).unwrap_or_default(),
            1.0,
            limits,
            has_mask[0].then_some(ws.masks[0].as_slice()),
        );
    }
    let ts_mean_raw = filter::finite_mean(&ws.x[Ts.index()]);
    // Mean molar density of air, only to express the gas limits in density units.
    let air_mol_m3 = pa
        / (air::R
            * if ts_mean_raw.is_finite() {
                ts_mean_raw
            } else {
                293.15
            });
    let mut active = [false; 7];
    for g in GASES {
        let Some(col) = column(raw, g) else { continue };
        let spec = gas_spec(cfg, g);
        if spec.unit.is_density() && matches!(cfg.gas_path, GasPath::Closed { .. }) {
            // Cell densities refer to the cell's temperature and pressure, not the ambient air's.
            return Err(EcError::Config {
                field: ["co2_unit", "h2o_unit", "ch4_unit"][g.index() - 4],
                value: format!("{:?}", spec.unit),
                why: "a closed-path analyser's densities refer to the cell's temperature and \
                      pressure; configure it to output mixing ratios or mole fractions",
            });
        }
        let k = if g == Ch4 { 2 } else { 1 };
        let diag = has_mask[k].then_some(ws.masks[k].as_slice());
        let to_internal = if spec.unit.is_density() {
            // prefix units -> mol/mol -> mol m-3 -> mmol m-3
            spec.prefix * air_mol_m3 * 1e3
        } else {
            1.0
        };
        let (lo, hi) = spec.limits;
        missing[g.index()] = filter::load_screened(
            &mut ws.x[g.index()],
            col,
            spec.scale(),
            (lo * to_internal, hi * to_internal),
            diag,
        );
        active[g.index()] = true;
    }

    let mut sonic_ok = true;
    let mut worst = 0.0f64;
    for v in Var::ALL {
        if v.index() >= 4 && !active[v.index()] {
            continue;
        }
        let total = missing[v.index()] + deficit;
        res.missing.set(v, total);
        let frac = total as f64 / denom;
        if frac > cfg.max_missing_fraction {
            res.flags.push(PeriodFlag::TooManyMissing {
                var: v,
                fraction: frac,
            });
            if v.index() < 4 {
                sonic_ok = false;
                worst = worst.max(frac);
            } else {
                active[v.index()] = false;
            }
        } else {
            worst = worst.max(frac);
        }
    }
    res.missing_fraction = worst;
    if !sonic_ok {
        return Ok(res);
    }
    for v in Var::ALL {
        if (v.index() < 4 || active[v.index()]) && missing[v.index()] > 0 {
            filter::fill_gaps(&mut ws.x[v.index()]);
        }
    }
    for v in [W, Ts] {
        if filter::is_constant(&ws.x[v.index()]) {
            res.flags.push(PeriodFlag::ConstantSignal { var: v });
            sonic_ok = false;
        }
    }
    if filter::is_constant(&ws.x[U.index()]) && filter::is_constant(&ws.x[V.index()]) {
        res.flags.push(PeriodFlag::ConstantSignal { var: U });
        sonic_ok = false;
    }
    if !sonic_ok {
        return Ok(res);
    }
    for g in GASES {
        if active[g.index()] && filter::is_constant(&ws.x[g.index()]) {
            res.flags.push(PeriodFlag::ConstantSignal { var: g });
            active[g.index()] = false;
        }
    }
    convert_mole_fractions(ws, cfg, &mut active, air_mol_m3, &mut res.flags);

    // 2. Despiking.
    if let Some(d) = &cfg.despike {
        let window = ((n as f64 * d.window_fraction).round() as usize).max(2);
        for v in Var::ALL {
            if v.index() >= 4 && !active[v.index()] {
                continue;
            }
            let sigma = match v {
                U | V => d.sigma_u,
                W => d.sigma_w,
                Ts => d.sigma_ts,
                Co2 => d.sigma_co2,
                H2o => d.sigma_h2o,
                Ch4 => d.sigma_ch4,
            };
            let p = despike::DespikeParams {
                window,
                step: d.step_samples,
                max_consecutive: d.max_consecutive,
                max_passes: d.max_passes,
                sigma,
                threshold_increment: d.threshold_increment,
            };
            let count = despike::despike_with(&mut ws.x[v.index()], &p, &mut ws.despike);
            res.spikes.set(v, count);
            let frac = count as f64 / n as f64;
            if frac > d.flag_fraction {
                res.flags.push(PeriodFlag::ManySpikes {
                    var: v,
                    fraction: frac,
                });
            }
        }
    }

    // 3. Wind statistics and tilt correction.
    let [xu, xv, xw, ..] = &mut ws.x;
    let unrotated = rotation::wind_statistics(xu, xv, xw, cfg.sonic.north_offset_deg);
    let dir = unrotated.direction;
    // Only the triple rotation's roll angle needs the covariance matrix (a pass over the samples
    // with six sums); the other methods use the means.
    let moments = if matches!(cfg.rotation, Rotation::Triple) {
        rotation::wind_moments(xu, xv, xw)
    } else {
        rotation::WindMoments {
            mean: unrotated.means,
            cov: [[f64::NAN; 3]; 3],
        }
    };
    let ws_max = unrotated.max_speed;
    res.wind.wd = dir.mean_deg;
    res.wind.wd_sigma = dir.sigma_deg;
    res.wind.wd_vector = dir.vector_deg;
    res.wind.ws_max = ws_max;
    [res.wind.u_unrot, res.wind.v_unrot, res.wind.w_unrot] = moments.mean;
    let tilt = match rotation::tilt_correction(&cfg.rotation, &moments, dir.vector_deg) {
        Ok(t) => t,
        Err(rotation::TiltFailure::NoSector { wind_dir_deg }) => {
            res.flags
                .push(PeriodFlag::NoPlanarFitSector { wind_dir_deg });
            return Ok(res);
        }
    };
    rotation::apply(xu, xv, xw, &tilt.matrix);
    let rm_mean = rotation::mat_vec(&tilt.matrix, &moments.mean);
    res.rotation = Some(RotationAngles {
        yaw_deg: tilt.yaw_deg,
        pitch_deg: tilt.pitch_deg,
        roll_deg: tilt.roll_deg,
        planar_fit_sector: tilt.sector,
        matrix: tilt.matrix,
    });
    [res.wind.u_rot, res.wind.v_rot, res.wind.w_rot] = rm_mean;
    res.wind.ws = (rm_mean[0].powi(2) + rm_mean[1].powi(2) + rm_mean[2].powi(2)).sqrt();
    let u_mean = rm_mean[0].hypot(rm_mean[1]);

    // 4. Time lags: w and each gas centred on their period means, on the fly.
    let mut lag_samples = [0i64; 7];
    let w_centred = lag::Centred {
        x: &ws.x[W.index()],
        centre: stats::mean(&ws.x[W.index()]),
    };
    for g in GASES {
        if !active[g.index()] {
            continue;
        }
        let spec = gas_spec(cfg, g);
        let window = lag_window(cfg, spec.lag, u_mean);
        let to_samples = |s: f64| (s * fs).round() as i64;
        let gas = &ws.x[g.index()];
        let out = lag::find_lag(
            w_centred,
            lag::Centred {
                x: gas,
                centre: stats::mean(gas),
            },
            to_samples(window.min_s),
            to_samples(window.max_s),
            to_samples(window.nominal_s),
            cfg.lag.method,
            &mut ws.lags,
        );
        if out.default_used && cfg.lag.method != LagMethod::Constant {
            res.flags.push(PeriodFlag::DefaultLagUsed { var: g });
        }
        lag_samples[g.index()] = out.lag;
        let r = LagResult {
            samples: out.lag,
            seconds: out.lag as f64 / fs,
            default_used: out.default_used,
            found_samples: out.found,
            nominal_s: window.nominal_s,
            min_s: window.min_s,
            max_s: window.max_s,
        };
        match g {
            Co2 => res.lags.co2 = Some(r),
            H2o => res.lags.h2o = Some(r),
            _ => res.lags.ch4 = Some(r),
        }
    }
    let lead = GASES
        .iter()
        .filter(|g| active[g.index()])
        .map(|g| (-lag_samples[g.index()]).max(0))
        .max()
        .unwrap_or(0) as usize;
    let trail = GASES
        .iter()
        .filter(|g| active[g.index()])
        .map(|g| lag_samples[g.index()].max(0))
        .max()
        .unwrap_or(0) as usize;
    let (i0, i1) = (lead, n - trail);
    let m = i1 - i0;
    res.n_used = m;

    // 5. Detrending over the aligned range. Block detrending only subtracts the mean, so unless
    // the random error needs the series themselves, the fluctuations are formed on the fly by the
    // moment sums below from the samples and their means (the same values, without writing and
    // re-reading six buffers). Otherwise they are written to the fluctuation buffers.
    let materialise =
        cfg.detrend != Detrend::Block || !matches!(cfg.random_uncertainty, RandomUncertainty::None);
    let mut means = [f64::NAN; 7];
    // Per variable: the aligned range of `ws.x`, and the centre the moment sums subtract.
    let mut range = [(0usize, 0usize); 7];
    let mut centre = [0.0f64; 7];
    for v in Var::ALL {
        if v.index() >= 4 && !active[v.index()] {
            continue;
        }
        let shift = lag_samples[v.index()];
        let lo = (i0 as i64 + shift) as usize;
        let hi = (i1 as i64 + shift) as usize;
        range[v.index()] = (lo, hi);
        let x = &ws.x[v.index()][lo..hi];
        if materialise {
            means[v.index()] = detrend::fluctuations(x, cfg.detrend, fs, &mut ws.fl[v.index()]);
        } else {
            means[v.index()] = stats::mean(x);
            centre[v.index()] = means[v.index()];
        }
    }
    let fl = &ws.fl;
    let f = |v: Var| fl[v.index()].as_slice();
    let xs = &ws.x;
    let series = |v: Var| -> &[f64] {
        if materialise {
            f(v)
        } else {
            let (lo, hi) = range[v.index()];
            &xs[v.index()][lo..hi]
        }
    };
    // Every second moment the period reports pairs a variable with w or with itself. One pass per
    // variable and steady-state sub-period sums x, w x and x^2 ([`stats::pair_sums`]; for w
    // itself: w, w^2, w^2): the totals give the means and covariances, the parts the steady-state
    // test. `parts[j][v]` holds sub-period j of variable v.
    let k_sub = cfg.steady_state_subperiods;
    let n_parts = if k_sub == 0 || m < k_sub { 1 } else { k_sub };
    let parts = &mut ws.moment_sums;
    parts.clear();
    parts.resize(n_parts, [[0.0; 3]; 7]);
    for (j, part) in parts.iter_mut().enumerate() {
        let (lo, hi) = (j * m / n_parts, (j + 1) * m / n_parts);
        let w = &series(W)[lo..hi];
        for v in Var::ALL {
            if v.index() < 4 || active[v.index()] {
                part[v.index()] =
                    stats::pair_sums(w, centre[W.index()], &series(v)[lo..hi], centre[v.index()]);
            }
        }
    }
    let parts = &ws.moment_sums;
    let total = |v: Var, k: usize| parts.iter().map(|p| p[v.index()][k]).sum::<f64>();
    // Means of the fluctuations: zero for block and linear detrending, not exactly for running
    // means, so covariances are mean-corrected.
    let mut fl_mean = [0.0f64; 7];
    for v in Var::ALL {
        if v.index() < 4 || active[v.index()] {
            fl_mean[v.index()] = total(v, 0) / m as f64;
        }
    }
    let cov = |a: Var, b: Var| {
        let products = match (a, b) {
            (W, x) => total(x, 1),
            (x, y) if x == y => total(x, 2),
            _ => unreachable!("only w-x covariances and variances are reported"),
        };
        products / m as f64 - fl_mean[a.index()] * fl_mean[b.index()]
    };
    let gas_cov = |g: Var| active[g.index()].then(|| cov(W, g));
    let gas_var = |g: Var| active[g.index()].then(|| cov(g, g));
    let covs = Covariances {
        w_u: cov(W, U),
        w_v: cov(W, V),
        w_ts: cov(W, Ts),
        w_co2: gas_cov(Co2),
        w_h2o: gas_cov(H2o),
        w_ch4: gas_cov(Ch4),
        var_u: cov(U, U),
        var_v: cov(V, V),
        var_w: cov(W, W),
        var_ts: cov(Ts, Ts),
        var_co2: gas_var(Co2),
        var_h2o: gas_var(H2o),
        var_ch4: gas_var(Ch4),
    };
    res.covariances = Some(covs);
    res.wind.sigma_u = covs.var_u.sqrt();
    res.wind.sigma_v = covs.var_v.sqrt();
    res.wind.sigma_w = covs.var_w.sqrt();

    // 6. Air properties.
    let ts_mean = means[Ts.index()];
    res.means.t_sonic_k = ts_mean;
    let h2o_spec = gas_spec(cfg, H2o);
    let humidity = if active[H2o.index()] {
        let mean = means[H2o.index()];
        if h2o_spec.unit.is_density() {
            Humidity::MolarDensity(mean * 1e-3)
        } else {
            Humidity::MixingRatio(mean * h2o_spec.prefix)
        }
    } else {
        res.flags.push(PeriodFlag::NoWaterVapour);
        Humidity::Unknown
    };
    let measured_ta = raw
        .air_t_k
        .map(filter::finite_mean_f32)
        .filter(|t| (200.0..=350.0).contains(t));
    let air = air::air_properties(ts_mean, pa, humidity, measured_ta);
    res.air = Some(air);
    let chi_h2o = air.e / (air.pa - air.e);
    for g in GASES {
        if active[g.index()] {
            let gm = gas_spec(cfg, g).mean(means[g.index()], &air, chi_h2o);
            match g {
                Co2 => res.means.co2 = Some(gm),
                H2o => res.means.h2o = Some(gm),
                _ => res.means.ch4 = Some(gm),
            }
        }
    }

    // 7. Level-0 fluxes.
    let gas_flux0 = |g: Var| -> Option<f64> {
        let c = match g {
            Co2 => covs.w_co2,
            H2o => covs.w_h2o,
            _ => covs.w_ch4,
        }?;
        Some(c * gas_spec(cfg, g).flux_per_cov(&air))
    };
    let h0 = air.rho_cp * covs.w_ts;
    let e0 = gas_flux0(H2o);
    let fc0 = gas_flux0(Co2);
    let fch4_0 = gas_flux0(Ch4);
    let ustar0 = fluxes::friction_velocity(covs.w_u, covs.w_v);
    let momentum_sign = if covs.w_u > 0.0 { 1.0 } else { -1.0 };
    let tau0 = momentum_sign * air.rho * ustar0 * ustar0;
    let zm = cfg.measurement_height();
    let l0 = fluxes::obukhov_length(ustar0, covs.w_ts, ts_mean);
    let zl0 = zm / l0;
    res.turbulence.ustar_uncorrected = Some(ustar0);
    res.turbulence.mo_length_uncorrected = Some(l0);
    res.turbulence.zl_uncorrected = Some(zl0);
    res.uncorrected = Fluxes {
        tau: Some(tau0),
        h: Some(h0),
        le: e0.map(|e| air.lambda * e * M_H2O),
        et: e0.map(|e| e * M_H2O * 3600.0),
        fc: fc0.map(|v| v * 1e6),
        fh2o: e0.map(|v| v * 1e3),
        fch4: fch4_0.map(|v| v * 1e9),
    };

    // Spectral correction factors (stability from the raw covariances, as EddyPro).
    let scf = spectral::correction_factors(
        cfg,
        &spectral::SpectralConditions {
            wind_speed: u_mean,
            zl: if zl0.is_finite() { zl0 } else { 0.0 },
            rh_fraction: air.rh_percent / 100.0,
            period_s: n as f64 / fs,
        },
    );
    res.spectral = Some(scf);

    // Corrections: humidity-corrected, spectrally corrected H first; WPL needs it.
    let h =
        air.rho_cp * fluxes::sonic_humidity_correction(covs.w_ts, e0.unwrap_or(0.0), &air) * scf.h;
    let h2o_density = h2o_spec.unit.is_density();
    let e_final = e0.map(|e0| {
        let e1 = e0 * scf.h2o;
        if h2o_density {
            fluxes::wpl_water(e1, h, &air)
        } else {
            e1
        }
    });
    // Vapour-density flux behind the final E, for the trace gases' dilution term.
    let e_density = match (e0, e_final) {
        (Some(e0), Some(_)) if h2o_density => e0 * scf.h2o,
        (_, Some(e)) => fluxes::density_vapour_flux(e, h, &air),
        _ => 0.0,
    };
    let trace_flux = |g: Var, f0: Option<f64>, factor: f64| -> Option<f64> {
        let f1 = f0? * factor;
        let spec = gas_spec(cfg, g);
        Some(if spec.unit.is_density() {
            fluxes::wpl_trace(f1, means[g.index()] * 1e-3, e_density, h, &air)
        } else {
            f1
        })
    };
    let fc = trace_flux(Co2, fc0, scf.co2);
    let fch4 = trace_flux(Ch4, fch4_0, scf.ch4);
    let tau = tau0 * scf.tau;
    let ustar = (tau.abs() / air.rho).sqrt();
    let wt = h / air.rho_cp;
    let l = fluxes::obukhov_length(ustar, wt, air.ta_k);
    let zl = zm / l;
    let le = e_final.map(|e| air.lambda * e * M_H2O);
    res.fluxes = Fluxes {
        tau: Some(tau),
        h: Some(h),
        le,
        et: e_final.map(|e| e * M_H2O * 3600.0),
        fc: fc.map(|v| v * 1e6),
        fh2o: e_final.map(|v| v * 1e3),
        fch4: fch4.map(|v| v * 1e9),
    };
    res.turbulence.ustar = Some(ustar);
    res.turbulence.mo_length = l.is_finite().then_some(l);
    res.turbulence.zl = zl.is_finite().then_some(zl);
    res.turbulence.tstar = (ustar > 0.0).then(|| -wt / ustar);
    res.turbulence.tke = Some(0.5 * (covs.var_u + covs.var_v + covs.var_w));
    res.turbulence.bowen = le.filter(|v| *v != 0.0).map(|le| h / le);

    // 8. Quality flags.
    let k = cfg.steady_state_subperiods;
    let fcor = qc::coriolis(cfg.site.latitude_deg);
    let zl_q = if zl.is_finite() { zl } else { 0.0 };
    let itc_w = qc::itc_deviation(
        res.wind.sigma_w / ustar,
        qc::model_sigma_w(zl_q, fcor, ustar),
    );
    let itc_u = qc::itc_deviation(
        res.wind.sigma_u / ustar,
        qc::model_sigma_u(zl_q, fcor, ustar),
    );
    let tstar = -wt / ustar;
    let itc_t = qc::itc_deviation(covs.var_ts.sqrt() / tstar.abs(), qc::model_sigma_t(zl_q));
    res.quality.itc_u = itc_u.is_finite().then_some(itc_u);
    res.quality.itc_w = itc_w.is_finite().then_some(itc_w);
    res.quality.itc_ts = itc_t.is_finite().then_some(itc_t);
    let class_w = qc::class_of(itc_w);
    let class_u = qc::class_of(itc_u);
    let quality = |x: Var, itc: f64, itc_class: u8| {
        let dev = if k == 0 || m < k {
            f64::NAN
        } else {
            qc::steady_state_from_sums(parts.iter().enumerate().map(|(j, p)| {
                let count = (j + 1) * m / k - j * m / k;
                (count, p[W.index()][0], p[x.index()][0], p[x.index()][1])
            }))
        };
        let ss_class = qc::class_of(dev);
        FluxQuality {
            flag: qc::mauder_foken_flag(ss_class, itc_class),
            steady_state_deviation: dev,
            steady_state_class: ss_class,
            itc_deviation: itc,
            itc_class,
        }
    };
    let (tau_itc, tau_class) = if class_u >= class_w {
        (itc_u, class_u)
    } else {
        (itc_w, class_w)
    };
    res.quality.tau = Some(quality(U, tau_itc, tau_class));
    res.quality.h = Some(quality(Ts, itc_w, class_w));
    res.quality.h2o = active[H2o.index()].then(|| quality(H2o, itc_w, class_w));
    res.quality.fc = active[Co2.index()].then(|| quality(Co2, itc_w, class_w));
    res.quality.fch4 = active[Ch4.index()].then(|| quality(Ch4, itc_w, class_w));

    // Random uncertainty: relative error of the raw covariance applied to the final flux.
    if let RandomUncertainty::FinkelsteinSims2001 { max_correlation_s } = cfg.random_uncertainty {
        let max_lag = ((max_correlation_s * fs).round() as usize).max(1);
        // Scalars in a fixed order: u, Ts, then the active gases.
        let mut vars = [U; 5];
        let mut k = 2;
        vars[1] = Ts;
        for g in GASES {
            if active[g.index()] {
                vars[k] = g;
                k += 1;
            }
        }
        let xs: Vec<&[f64]> = vars[..k].iter().map(|&v| f(v)).collect();
        let mut err = [f64::NAN; 5];
        uncertainty::covariance_errors(f(W), &xs, max_lag, &mut ws.correlations, &mut err[..k]);
        let rel = |v: Var, c: Option<f64>| -> Option<f64> {
            let i = vars[..k].iter().position(|&x| x == v)?;
            let c = c?;
            (c != 0.0).then(|| err[i] / c.abs())
        };
        let scale = |flux: Option<f64>, r: Option<f64>| flux.zip(r).map(|(v, r)| v.abs() * r);
        let r_h2o = rel(H2o, covs.w_h2o);
        res.random_uncertainty = Fluxes {
            tau: scale(res.fluxes.tau, rel(U, Some(covs.w_u))),
            h: scale(res.fluxes.h, rel(Ts, Some(covs.w_ts))),
            le: scale(res.fluxes.le, r_h2o),
            et: scale(res.fluxes.et, r_h2o),
            fc: scale(res.fluxes.fc, rel(Co2, covs.w_co2)),
            fh2o: scale(res.fluxes.fh2o, r_h2o),
            fch4: scale(res.fluxes.fch4, rel(Ch4, covs.w_ch4)),
        };
    }

    // Footprint.
    if let Footprint::Kljun2004 { .. } = cfg.footprint {
        let fp = footprint::kljun2004(res.wind.sigma_w, ustar, zm, cfg.site.roughness_length());
        match fp {
            Some(fp) => {
                let valid = ustar >= 0.2 && zm >= 1.0 && (-200.0..=1.0).contains(&zl_q);
                if !valid {
                    res.flags.push(PeriodFlag::FootprintOutsideValidity);
                }
                res.footprint = Some(fp);
            }
            None => res.flags.push(PeriodFlag::FootprintUnavailable),
        }
    }
    res.withhold_non_finite();
    Ok(res)
}

/// Two distinct mutable buffers of the same array.
fn two_mut(a: &mut [Vec<f64>; 7], i: usize, j: usize) -> (&mut Vec<f64>, &mut Vec<f64>) {
    assert_ne!(i, j);
    if i < j {
        let (l, r) = a.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = a.split_at_mut(i);
        (&mut r[0], &mut l[j])
    }
}

/// The lag window of one gas in seconds.
fn lag_window(cfg: &EcConfig, setting: LagSetting, wind_speed: f64) -> LagWindow {
    match setting {
        LagSetting::Fixed(w) => w,
        LagSetting::Auto => match &cfg.gas_path {
            GasPath::Open { separation, .. } => {
                let half = (2.0 * separation.horizontal_m() / wind_speed.max(0.5) + 0.3).min(5.0);
                LagWindow {
                    nominal_s: 0.0,
                    min_s: -half,
                    max_s: half,
                }
            }
            GasPath::Closed { tube, .. } => {
                let nominal = tube.nominal_lag_s();
                LagWindow {
                    nominal_s: nominal,
                    min_s: 0.0,
                    max_s: 2.0 * nominal + 1.0,
                }
            }
        },
    }
}

/// Gases delivered as mole fractions (per mole of wet air) become mixing ratios (per mole of dry
/// air) sample by sample, so their fluxes need no WPL terms. Needs the water vapour column.
fn convert_mole_fractions(
    ws: &mut Workspace,
    cfg: &EcConfig,
    active: &mut [bool; 7],
    air_mol_m3: f64,
    flags: &mut Vec<PeriodFlag>,
) {
    let h2o_unit = cfg.h2o_unit;
    let h2o_ok = active[H2o.index()];
    // Water-vapour mole fraction (mol/mol) of a sample.
    let xv = |v: f64| match h2o_unit {
        GasUnit::MixingRatio => {
            let chi = v * 1e-3;
            chi / (1.0 + chi)
        }
        GasUnit::MoleFraction => v * 1e-3,
        _ => v * 1e-3 / air_mol_m3,
    };
    for g in [Co2, Ch4] {
        if !active[g.index()] || gas_spec(cfg, g).unit != GasUnit::MoleFraction {
            continue;
        }
        if !h2o_ok {
            flags.push(PeriodFlag::DilutionNotCorrected { var: g });
            continue;
        }
        let (gx, hx) = two_mut(&mut ws.x, g.index(), H2o.index());
        for (c, &h) in gx.iter_mut().zip(hx.iter()) {
            *c /= 1.0 - xv(h);
        }
    }
    if h2o_ok && h2o_unit == GasUnit::MoleFraction {
        for h in ws.x[H2o.index()].iter_mut() {
            let x = *h * 1e-3;
            *h = 1e3 * x / (1.0 - x);
        }
    }
}
