//! What one processed period yields.
//!
//! Convention: a quantity that can be unavailable for data reasons is an `Option<f64>` and is
//! `None` exactly when it could not be computed; `flags` then holds the reason. Quantities that
//! exist for every processed period (sonic means, sample counts) are plain `f64`; NaN never stands
//! for "absent" in this struct. Units are FLUXNET's unless a field says otherwise.

use super::air::AirProperties;
use super::footprint::FootprintDistances;
use super::spectral::SpectralFactors;

/// The measured variables, for per-variable counters and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    U,
    V,
    W,
    Ts,
    Co2,
    H2o,
    Ch4,
}

impl Var {
    pub const ALL: [Var; 7] = [
        Var::U,
        Var::V,
        Var::W,
        Var::Ts,
        Var::Co2,
        Var::H2o,
        Var::Ch4,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        ["u", "v", "w", "ts", "co2", "h2o", "ch4"][self.index()]
    }
}

/// A count per variable (spikes, missing samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VarCounts(pub [usize; 7]);

impl VarCounts {
    pub fn get(&self, v: Var) -> usize {
        self.0[v.index()]
    }

    pub(crate) fn set(&mut self, v: Var, n: usize) {
        self.0[v.index()] = n;
    }
}

/// Why a period, or part of it, was not processed normally.
#[derive(Clone, Debug, PartialEq)]
pub enum PeriodFlag {
    /// More than the allowed fraction of a variable's samples is missing (not delivered, bad
    /// diagnostic or outside absolute limits); the variable and the fluxes needing it are not used.
    TooManyMissing { var: Var, fraction: f64 },
    /// The variable never changes during the period (frozen sensor).
    ConstantSignal { var: Var },
    /// Despiking replaced more than the configured fraction of samples (the fluxes are kept).
    ManySpikes { var: Var, fraction: f64 },
    /// The period has fewer samples than sampling rate x averaging time; the deficit counts as missing.
    ShortPeriod { samples: usize, expected: usize },
    /// No valid ambient pressure: the standard atmosphere at the site altitude was used.
    PressureFromAltitude { pa: f64 },
    /// No water-vapour measurement: dry air assumed, no WPL vapour term, Ta = Ts.
    NoWaterVapour,
    /// A gas in mole fraction could not be converted to mixing ratio (no water vapour).
    DilutionNotCorrected { var: Var },
    /// Planar fit: the wind direction lies in no configured sector; nothing is computed.
    NoPlanarFitSector { wind_dir_deg: f64 },
    /// The time-lag search hit the window edge; the nominal lag was used.
    DefaultLagUsed { var: Var },
    /// Footprint inputs outside Kljun et al. (2004)'s validity range; distances are indicative.
    FootprintOutsideValidity,
    /// The footprint could not be computed (no turbulence or no heat flux).
    FootprintUnavailable,
    /// A quantity came out infinite or NaN (degenerate input such as a zero covariance) and
    /// was withheld.
    NotFinite { quantity: &'static str },
}

/// Flux values, FLUXNET units: TAU kg m-1 s-2, H/LE W m-2, ET mm h-1, FC umol m-2 s-1,
/// FH2O mmol m-2 s-1, FCH4 nmol m-2 s-1.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fluxes {
    pub tau: Option<f64>,
    pub h: Option<f64>,
    pub le: Option<f64>,
    pub et: Option<f64>,
    pub fc: Option<f64>,
    pub fh2o: Option<f64>,
    pub fch4: Option<f64>,
}

/// Friction velocity, stability and turbulence statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Turbulence {
    /// Final u* (from the spectrally corrected momentum flux), m s-1.
    pub ustar: Option<f64>,
    /// u* from the raw rotated covariances.
    pub ustar_uncorrected: Option<f64>,
    /// Obukhov length from final u* and H, m.
    pub mo_length: Option<f64>,
    /// (z - d) / L.
    pub zl: Option<f64>,
    /// Obukhov length and stability from raw covariances (sonic temperature), as used for the
    /// spectral model.
    pub mo_length_uncorrected: Option<f64>,
    pub zl_uncorrected: Option<f64>,
    /// Temperature scale -w'T'/u*, K.
    pub tstar: Option<f64>,
    /// Turbulent kinetic energy, m2 s-2.
    pub tke: Option<f64>,
    pub bowen: Option<f64>,
}

/// Wind statistics (m s-1, degrees from north).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Wind {
    /// Mean horizontal wind speed after rotation (FLUXNET WS).
    pub ws: f64,
    /// Largest instantaneous 3-D wind speed after despiking (FLUXNET WS_MAX).
    pub ws_max: f64,
    /// Mean of instantaneous directions (FLUXNET WD).
    pub wd: f64,
    /// Yamartino standard deviation of the direction (FLUXNET WD_SIGMA).
    pub wd_sigma: f64,
    /// Direction of the mean wind vector.
    pub wd_vector: f64,
    pub u_unrot: f64,
    pub v_unrot: f64,
    pub w_unrot: f64,
    pub u_rot: f64,
    pub v_rot: f64,
    pub w_rot: f64,
    pub sigma_u: f64,
    pub sigma_v: f64,
    pub sigma_w: f64,
}

/// The rotation applied.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RotationAngles {
    pub yaw_deg: f64,
    pub pitch_deg: Option<f64>,
    pub roll_deg: Option<f64>,
    pub planar_fit_sector: Option<usize>,
    pub matrix: [[f64; 3]; 3],
}

/// Time lag of one scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LagResult {
    pub samples: i64,
    pub seconds: f64,
    /// The nominal lag replaced the search result.
    pub default_used: bool,
    /// Lag of maximum |covariance| found by the search (samples).
    pub found_samples: i64,
    pub nominal_s: f64,
    pub min_s: f64,
    pub max_s: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lags {
    pub co2: Option<LagResult>,
    pub h2o: Option<LagResult>,
    pub ch4: Option<LagResult>,
}

/// Raw (rotated, lag-aligned, detrended, not corrected) second moments. Gas covariances are in
/// the gas's internal unit times m s-1: densities mmol m-3; mixing ratios CO2 umol/mol, H2O
/// mmol/mol, CH4 nmol/mol (EddyPro's full-output units).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Covariances {
    pub w_u: f64,
    pub w_v: f64,
    pub w_ts: f64,
    pub w_co2: Option<f64>,
    pub w_h2o: Option<f64>,
    pub w_ch4: Option<f64>,
    pub var_u: f64,
    pub var_v: f64,
    pub var_w: f64,
    pub var_ts: f64,
    pub var_co2: Option<f64>,
    pub var_h2o: Option<f64>,
    pub var_ch4: Option<f64>,
}

/// Mean concentration of a gas in three expressions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GasMean {
    /// mmol m-3.
    pub molar_density: f64,
    /// Per mole of wet air (FLUXNET CO2 / H2O / CH4): CO2 umol/mol, H2O mmol/mol, CH4 nmol/mol.
    pub mole_fraction: f64,
    /// Per mole of dry air, same prefixes.
    pub mixing_ratio: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Means {
    pub t_sonic_k: f64,
    pub co2: Option<GasMean>,
    pub h2o: Option<GasMean>,
    pub ch4: Option<GasMean>,
}

/// Quality of one flux.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FluxQuality {
    /// Mauder & Foken (2004): 0 best, 1 budgets, 2 discard (FLUXNET *_SSITC_TEST).
    pub flag: u8,
    pub steady_state_deviation: f64,
    pub steady_state_class: u8,
    pub itc_deviation: f64,
    pub itc_class: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    pub tau: Option<FluxQuality>,
    pub h: Option<FluxQuality>,
    /// LE, ET and FH2O share it.
    pub h2o: Option<FluxQuality>,
    pub fc: Option<FluxQuality>,
    pub fch4: Option<FluxQuality>,
    /// ITC deviations (percent) of sigma_u, sigma_w and sigma_T.
    pub itc_u: Option<f64>,
    pub itc_w: Option<f64>,
    pub itc_ts: Option<f64>,
}

/// Everything computed for one period.
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodResult {
    /// Samples delivered.
    pub n_samples: usize,
    /// Samples entering the covariances (after aligning lagged scalars).
    pub n_used: usize,
    /// Final fluxes.
    pub fluxes: Fluxes,
    /// Level-0 fluxes: raw covariances times densities, before any correction.
    pub uncorrected: Fluxes,
    pub turbulence: Turbulence,
    pub wind: Wind,
    pub rotation: Option<RotationAngles>,
    pub air: Option<AirProperties>,
    pub means: Means,
    pub lags: Lags,
    pub covariances: Option<Covariances>,
    pub spectral: Option<SpectralFactors>,
    pub quality: Quality,
    /// Random error of the final fluxes, same units as `fluxes`.
    pub random_uncertainty: Fluxes,
    pub footprint: Option<FootprintDistances>,
    pub spikes: VarCounts,
    /// Missing samples per variable (not delivered, rejected by diagnostics or limits), including
    /// the deficit of a short period.
    pub missing: VarCounts,
    /// Largest missing fraction among the variables that were used.
    pub missing_fraction: f64,
    pub flags: Vec<PeriodFlag>,
}

impl PeriodResult {
    pub(crate) fn empty(n_samples: usize) -> Self {
        Self {
            n_samples,
            n_used: 0,
            fluxes: Fluxes::default(),
            uncorrected: Fluxes::default(),
            turbulence: Turbulence::default(),
            wind: Wind::default(),
            rotation: None,
            air: None,
            means: Means::default(),
            lags: Lags::default(),
            covariances: None,
            spectral: None,
            quality: Quality::default(),
            random_uncertainty: Fluxes::default(),
            footprint: None,
            spikes: VarCounts::default(),
            missing: VarCounts::default(),
            missing_fraction: 0.0,
            flags: Vec::new(),
        }
    }

    /// Replaces non-finite values of optional outputs by `None`, each with a flag, so that
    /// absence is always `None` and never NaN.
    pub(crate) fn withhold_non_finite(&mut self) {
        let flags = &mut self.flags;
        let mut check = |name: &'static str, x: &mut Option<f64>| {
            if x.is_some_and(|v| !v.is_finite()) {
                *x = None;
                flags.push(PeriodFlag::NotFinite { quantity: name });
            }
        };
        for f in [
            &mut self.fluxes,
            &mut self.uncorrected,
            &mut self.random_uncertainty,
        ] {
            check("TAU", &mut f.tau);
            check("H", &mut f.h);
            check("LE", &mut f.le);
            check("ET", &mut f.et);
            check("FC", &mut f.fc);
            check("FH2O", &mut f.fh2o);
            check("FCH4", &mut f.fch4);
        }
        let t = &mut self.turbulence;
        check("USTAR", &mut t.ustar);
        check("USTAR uncorrected", &mut t.ustar_uncorrected);
        check("MO_LENGTH", &mut t.mo_length);
        check("ZL", &mut t.zl);
        check("MO_LENGTH uncorrected", &mut t.mo_length_uncorrected);
        check("ZL uncorrected", &mut t.zl_uncorrected);
        check("TSTAR", &mut t.tstar);
        check("TKE", &mut t.tke);
        check("BOWEN", &mut t.bowen);
    }

    /// True when no flux at all could be computed.
    pub fn is_unprocessed(&self) -> bool {
        self.fluxes == Fluxes::default()
    }
}
