//! Site, instrument and method settings of the eddy-covariance kernel.
//!
//! One [`EcConfig`] describes one measurement system: what is installed where (site, sonic, gas
//! analyser, tube) and which processing choices are made. Names follow EddyPro's settings so a
//! site's `.metadata`/ICOS ecmd file maps onto it field by field; see each field for the EddyPro
//! option it stands for. [`EcConfig::default`] is EddyPro's *Express* mode for a CSAT3 + LI-7500
//! open-path system; the site geometry in it is a placeholder that must be replaced.

use super::error::EcError;

/// Where the tower stands and what surrounds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Metres above sea level. Used for the standard-atmosphere pressure when the period has no
    /// pressure column (EddyPro does the same).
    pub altitude_m: f64,
    /// Degrees north; sets the Coriolis parameter of the neutral ITC model.
    pub latitude_deg: f64,
    pub canopy_height_m: f64,
    /// Zero-plane displacement. `None`: 0.67 x canopy height, EddyPro's default.
    pub displacement_m: Option<f64>,
    /// Roughness length. `None`: 0.15 x canopy height, EddyPro's default.
    pub roughness_length_m: Option<f64>,
}

impl Site {
    pub fn displacement(&self) -> f64 {
        self.displacement_m.unwrap_or(0.67 * self.canopy_height_m)
    }

    /// Never below 1 mm: the footprint model takes its logarithm.
    pub fn roughness_length(&self) -> f64 {
        self.roughness_length_m
            .unwrap_or(0.15 * self.canopy_height_m)
            .max(1e-3)
    }
}

/// The sonic anemometer: height, orientation and the parts of its geometry that attenuate
/// high frequencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Sonic {
    pub height_m: f64,
    /// Wind direction (degrees from north) of a wind whose sonic components are `u > 0, v = 0`,
    /// i.e. `WD = north_offset - atan2(v, u)`. For a CSAT3 this is EddyPro's `north_offset`; for a
    /// Gill with `spar` alignment it is EddyPro's `north_offset + 180`, because Gill's u axis points
    /// the other way.
    pub north_offset_deg: f64,
    /// Vertical acoustic path (line averaging of w).
    pub path_vertical_m: f64,
    /// Horizontal acoustic path (line averaging of u and of sonic temperature).
    pub path_horizontal_m: f64,
    /// First-order time constant of the instrument.
    pub response_time_s: f64,
}

impl Sonic {
    /// Campbell CSAT3 with EddyPro's built-in geometry (paths 11.5 / 5.8 cm, 60 Hz internal rate).
    pub fn csat3(height_m: f64, north_offset_deg: f64) -> Self {
        Self {
            height_m,
            north_offset_deg,
            path_vertical_m: 0.115,
            path_horizontal_m: 0.058,
            response_time_s: 1.0 / 60.0,
        }
    }

    /// Gill HS-50 (paths 12.5 / 11 cm, 50 Hz internal rate). `north_offset_deg` is EddyPro's offset;
    /// the 180 degree flip of Gill's axes is added here.
    pub fn gill_hs50(height_m: f64, eddypro_north_offset_deg: f64) -> Self {
        Self {
            height_m,
            north_offset_deg: eddypro_north_offset_deg + 180.0,
            path_vertical_m: 0.125,
            path_horizontal_m: 0.11,
            response_time_s: 0.02,
        }
    }
}

/// Optical path of a gas analyser and its response time.
#[derive(Clone, Debug, PartialEq)]
pub struct GasAnalyzer {
    /// Length of the optical path (line averaging; open path only, a cell's path is inside the tube
    /// system and is not a spatial average of the free air).
    pub path_length_m: f64,
    pub path_diameter_m: f64,
    pub response_time_s: f64,
}

impl GasAnalyzer {
    /// Volume of the LI-7200's sample cell (16 cm3), part of its transport delay.
    pub const LI7200_CELL_VOLUME_L: f64 = 0.016;

    pub fn li7500() -> Self {
        Self {
            path_length_m: 0.127,
            path_diameter_m: 0.0095,
            response_time_s: 0.1,
        }
    }

    pub fn li7200() -> Self {
        Self {
            path_length_m: 0.127,
            path_diameter_m: 0.0127,
            response_time_s: 0.1,
        }
    }
}

/// Position of the gas analyser (or tube inlet) relative to the sonic's centre, metres, in
/// EddyPro's convention (northward, eastward, vertical).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Separation {
    pub northward_m: f64,
    pub eastward_m: f64,
    pub vertical_m: f64,
}

impl Separation {
    pub fn horizontal_m(&self) -> f64 {
        self.northward_m.hypot(self.eastward_m)
    }
}

/// Sampling line of a closed-path analyser.
#[derive(Clone, Debug, PartialEq)]
pub struct Tube {
    pub length_m: f64,
    pub inner_diameter_m: f64,
    /// Volumetric flow through the tube.
    pub flow_l_min: f64,
    /// Volume of the analyser's cell, which adds to the transport delay (LI-7200: 16 cm3).
    pub cell_volume_l: f64,
}

impl Tube {
    /// Transport delay of the sample from inlet to the middle of the cell: (tube + cell) / flow.
    /// This is EddyPro's nominal closed-path time lag.
    pub fn nominal_lag_s(&self) -> f64 {
        let r = 0.5 * self.inner_diameter_m;
        let tube_m3 = std::f64::consts::PI * r * r * self.length_m;
        let flow_m3_s = self.flow_l_min / 60_000.0;
        (tube_m3 + self.cell_volume_l * 1e-3) / flow_m3_s
    }

    /// Mean flow speed in the tube.
    pub fn speed_m_s(&self) -> f64 {
        let r = 0.5 * self.inner_diameter_m;
        self.flow_l_min / 60_000.0 / (std::f64::consts::PI * r * r)
    }
}

/// Open path (densities in free air, needs WPL) or closed path (air drawn through a tube).
#[derive(Clone, Debug, PartialEq)]
pub enum GasPath {
    Open {
        analyzer: GasAnalyzer,
        separation: Separation,
    },
    Closed {
        analyzer: GasAnalyzer,
        separation: Separation,
        tube: Tube,
    },
}

impl GasPath {
    pub fn analyzer(&self) -> &GasAnalyzer {
        match self {
            GasPath::Open { analyzer, .. } | GasPath::Closed { analyzer, .. } => analyzer,
        }
    }

    pub fn separation(&self) -> &Separation {
        match self {
            GasPath::Open { separation, .. } | GasPath::Closed { separation, .. } => separation,
        }
    }
}

/// Unit of a gas column as delivered by the analyser.
///
/// Densities (molar or mass) are amounts per volume of the in-situ air: their fluxes need the WPL
/// terms. Mixing ratios (per mole of *dry* air) are conserved under heat and water-vapour
/// fluctuations and need none. Mole fractions (per mole of *wet* air) are converted sample by
/// sample to mixing ratios with the water-vapour column. The concentration prefix is per gas:
/// CO2 in umol/mol (ppm), H2O in mmol/mol (ppt), CH4 in nmol/mol (ppb).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GasUnit {
    /// mmol m-3.
    MolarDensityMmolM3,
    /// mg m-3 (CO2, CH4 on LI-7500/LI-7700 outputs).
    MassDensityMgM3,
    /// g m-3 (H2O on LI-7500 outputs).
    MassDensityGM3,
    /// Per mole of dry air, in the gas's customary prefix (CO2 ppm, H2O ppt, CH4 ppb).
    MixingRatio,
    /// Per mole of wet air, in the gas's customary prefix (CO2 ppm, H2O ppt, CH4 ppb).
    MoleFraction,
}

impl GasUnit {
    pub fn is_density(self) -> bool {
        matches!(
            self,
            GasUnit::MolarDensityMmolM3 | GasUnit::MassDensityMgM3 | GasUnit::MassDensityGM3
        )
    }
}

/// How a diagnostic word flags a bad sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagRule {
    /// The column is not used.
    Ignore,
    /// Bad when any of these bits is set (CSAT3: the four warning bits, `0xF000`).
    AnyBitSet(u32),
    /// Good only when all these bits are set (LI-7500: `0xF0` chopper/detector/PLL/sync OK;
    /// LI-7200: `0x1FF0`, the nine "OK" bits).
    AllBitsSet(u32),
}

impl DiagRule {
    pub const CSAT3: DiagRule = DiagRule::AnyBitSet(0xF000);
    pub const LI7500: DiagRule = DiagRule::AllBitsSet(0x00F0);
    pub const LI7200: DiagRule = DiagRule::AllBitsSet(0x1FF0);

    /// A NaN or negative diagnostic is treated as "no information", not as bad: loggers write NaN
    /// when the word was not polled, and the measured value itself is then checked by the limits.
    pub fn is_bad(self, diag: f32) -> bool {
        if !(diag.is_finite() && diag >= 0.0) {
            return false;
        }
        let word = diag as u32;
        match self {
            DiagRule::Ignore => false,
            DiagRule::AnyBitSet(mask) => word & mask != 0,
            DiagRule::AllBitsSet(mask) => word & mask != mask,
        }
    }
}

/// Physically plausible ranges; samples outside are treated as missing (EddyPro "absolute limits").
#[derive(Clone, Debug, PartialEq)]
pub struct AbsoluteLimits {
    /// |u| and |v| limit, m s-1.
    pub u_max: f64,
    /// |w| limit, m s-1.
    pub w_max: f64,
    pub ts_min_k: f64,
    pub ts_max_k: f64,
    /// umol/mol (densities are compared after conversion with the period's mean air density).
    pub co2_ppm: (f64, f64),
    /// mmol/mol.
    pub h2o_ppt: (f64, f64),
    /// nmol/mol.
    pub ch4_ppb: (f64, f64),
}

impl Default for AbsoluteLimits {
    fn default() -> Self {
        Self {
            u_max: 30.0,
            w_max: 5.0,
            ts_min_k: 273.15 - 40.0,
            ts_max_k: 273.15 + 50.0,
            co2_ppm: (200.0, 900.0),
            h2o_ppt: (0.0, 40.0),
            ch4_ppb: (170.0, 1_000_000.0),
        }
    }
}

/// Vickers & Mahrt (1997) despiking as configured in EddyPro.
#[derive(Clone, Debug, PartialEq)]
pub struct Despike {
    /// Moving-window length as a fraction of the period (1/6: 5 min of 30 min).
    pub window_fraction: f64,
    /// The window advances by this many samples; samples of each step are judged against the
    /// window centred on it.
    pub step_samples: usize,
    /// Longer runs of outliers are treated as real events, not spikes.
    pub max_consecutive: usize,
    pub max_passes: usize,
    /// Added to every threshold after each pass that found spikes.
    pub threshold_increment: f64,
    /// Thresholds in standard deviations.
    pub sigma_u: f64,
    pub sigma_w: f64,
    pub sigma_ts: f64,
    pub sigma_co2: f64,
    pub sigma_h2o: f64,
    pub sigma_ch4: f64,
    /// A variable whose spikes exceed this fraction of the period raises a flag.
    pub flag_fraction: f64,
}

impl Default for Despike {
    fn default() -> Self {
        Self {
            window_fraction: 1.0 / 6.0,
            step_samples: 100,
            max_consecutive: 3,
            max_passes: 10,
            threshold_increment: 0.1,
            sigma_u: 3.5,
            sigma_w: 5.0,
            sigma_ts: 3.5,
            sigma_co2: 3.5,
            sigma_h2o: 3.5,
            sigma_ch4: 8.0,
            flag_fraction: 0.01,
        }
    }
}

/// One planar-fit wind sector: the tilt matrix fitted (over weeks) for winds from `start_deg`
/// (inclusive) to `end_deg` (exclusive), directions as reported in WD.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanarFitSector {
    pub start_deg: f64,
    pub end_deg: f64,
    /// Rows map sonic (u, v, w) to the plane's coordinates (Wilczak et al. 2001, matrix P).
    pub matrix: [[f64; 3]; 3],
    /// Offset b0 of the fitted plane; kept for reference, the mean w is not forced to zero.
    pub b0: f64,
}

impl PlanarFitSector {
    /// Builds P from the plane w = b0 + b1 u + b2 v (Wilczak et al. 2001): the third row is the
    /// plane's unit normal, the second row is v tilted by the roll only, the first completes a
    /// right-handed orthonormal basis.
    pub fn from_plane(start_deg: f64, end_deg: f64, b0: f64, b1: f64, b2: f64) -> Self {
        let n = (1.0 + b1 * b1 + b2 * b2).sqrt();
        let r3 = [-b1 / n, -b2 / n, 1.0 / n];
        let m = (1.0 + b2 * b2).sqrt();
        let r2 = [0.0, 1.0 / m, b2 / m];
        let r1 = [
            r2[1] * r3[2] - r2[2] * r3[1],
            r2[2] * r3[0] - r2[0] * r3[2],
            r2[0] * r3[1] - r2[1] * r3[0],
        ];
        Self {
            start_deg,
            end_deg,
            matrix: [r1, r2, r3],
            b0,
        }
    }

    fn contains(&self, wd: f64) -> bool {
        if self.start_deg <= self.end_deg {
            wd >= self.start_deg && wd < self.end_deg
        } else {
            wd >= self.start_deg || wd < self.end_deg
        }
    }
}

/// Planar-fit matrices per wind sector.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanarFitSectors {
    sectors: Vec<PlanarFitSector>,
}

impl PlanarFitSectors {
    pub fn new(sectors: Vec<PlanarFitSector>) -> Result<Self, EcError> {
        if sectors.is_empty() {
            return Err(EcError::config(
                "planar_fit.sectors",
                0,
                "at least one sector is needed",
            ));
        }
        for s in &sectors {
            let finite = s.matrix.iter().flatten().all(|x| x.is_finite());
            if !finite
                || !(0.0..=360.0).contains(&s.start_deg)
                || !(0.0..=360.0).contains(&s.end_deg)
            {
                return Err(EcError::config(
                    "planar_fit.sector",
                    format!("{}..{}", s.start_deg, s.end_deg),
                    "sector bounds must lie in 0..360 degrees and the matrix must be finite",
                ));
            }
        }
        Ok(Self { sectors })
    }

    pub fn sectors(&self) -> &[PlanarFitSector] {
        &self.sectors
    }

    /// Index of the sector holding wind direction `wd` (degrees from north).
    pub fn sector_for(&self, wd: f64) -> Option<usize> {
        let wd = wd.rem_euclid(360.0);
        self.sectors.iter().position(|s| s.contains(wd))
    }
}

/// Tilt correction (EddyPro "axis rotation for tilt correction").
#[derive(Clone, Debug, PartialEq)]
pub enum Rotation {
    /// Yaw then pitch: mean v and w become zero.
    Double,
    /// Double plus a roll that zeroes cov(v, w).
    Triple,
    /// Sector-wise planar fit (Wilczak et al. 2001) followed by a yaw into the mean wind.
    PlanarFit(PlanarFitSectors),
}

/// How the time lag of a scalar is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagMethod {
    /// Use the nominal lag.
    Constant,
    /// Lag of maximum |cov(w, scalar)| inside the window, whatever it is.
    CovarianceMax,
    /// As `CovarianceMax`, but fall back to the nominal lag when the maximum sits on the window's
    /// edge (the true maximum is then outside the window). EddyPro Express.
    CovarianceMaxWithDefault,
}

/// Time-lag window of one scalar, seconds. Positive lags: the scalar arrives after w.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LagWindow {
    pub nominal_s: f64,
    pub min_s: f64,
    pub max_s: f64,
}

/// Where the window comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LagSetting {
    /// Open path: 0 +/- (2 separation / mean wind + 0.3 s), capped at 5 s. Closed path: nominal
    /// = (tube + cell volume) / flow, searched over 0 ..= 2 x nominal + 1 s (water vapour lags
    /// grow with humidity, so the window is generous).
    Auto,
    Fixed(LagWindow),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LagConfig {
    pub method: LagMethod,
    pub co2: LagSetting,
    pub h2o: LagSetting,
    pub ch4: LagSetting,
}

impl Default for LagConfig {
    fn default() -> Self {
        Self {
            method: LagMethod::CovarianceMaxWithDefault,
            co2: LagSetting::Auto,
            h2o: LagSetting::Auto,
            ch4: LagSetting::Auto,
        }
    }
}

/// Separation of mean and fluctuations (EddyPro "detrending").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Detrend {
    /// Period mean.
    Block,
    /// Least-squares line over the period.
    Linear,
    /// Centred moving average of `tau_s` seconds.
    RunningMean { tau_s: f64 },
    /// Causal exponential moving average with time constant `tau_s` (EddyPro's default 250 s).
    ExpRunningMean { tau_s: f64 },
}

/// In-situ low-pass parameters of a closed-path system (Ibrom et al. 2007), as EddyPro's spectral
/// assessment reports them: each gas's first-order cut-off frequency, and the correction-factor
/// model CF = 1 + c1 u / (c2 + fc) fitted on degraded sonic-temperature fluxes.
#[derive(Clone, Debug, PartialEq)]
pub struct InSituLowPass {
    pub co2_fc_hz: f64,
    /// Water vapour sticks to walls more at high humidity: fc = exp(a RH^2 + b RH + c), RH as a
    /// fraction 0..1 (EddyPro's "RH/fc exponential fit").
    pub h2o_fc_exp: [f64; 3],
    pub ch4_fc_hz: Option<f64>,
    /// (c1, c2) for z/L < 0 and z/L >= 0.
    pub unstable: (f64, f64),
    pub stable: (f64, f64),
}

impl InSituLowPass {
    pub fn h2o_fc_hz(&self, rh_fraction: f64) -> f64 {
        let [a, b, c] = self.h2o_fc_exp;
        let rh = rh_fraction.clamp(0.0, 1.0);
        (a * rh * rh + b * rh + c).exp()
    }
}

/// Frequency-response (spectral) correction.
#[derive(Clone, Debug, PartialEq)]
pub enum SpectralCorrection {
    None,
    /// Fully analytic: Kaimal et al. (1972) model cospectra (forms of Moncrieff et al. 1997)
    /// attenuated by block/linear/running-mean high-pass filters (Moncrieff et al. 2004) and by
    /// sonic and analyser line averaging, first-order responses and tube attenuation (Moncrieff et
    /// al. 1997). `sensor_separation` adds the Moore (1986) separation loss; EddyPro 7 Express does
    /// not (its factors on the TOA5 reference do not vary with wind direction), so the default is off.
    Moncrieff1997 {
        sensor_separation: bool,
    },
    /// As `Moncrieff1997` for momentum, heat and the high-pass part of every flux; gases of a
    /// closed-path system get the in-situ low-pass correction of Ibrom et al. (2007) instead of
    /// the analytic tube/cell transfer functions.
    Ibrom2007(InSituLowPass),
}

/// Random error of the fluxes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RandomUncertainty {
    None,
    /// Finkelstein & Sims (2001), summing auto- and cross-covariances over +/- the integral
    /// time scale of w and the scalar (first zero crossing of their cross-correlation), at most
    /// `max_correlation_s` seconds.
    FinkelsteinSims2001 {
        max_correlation_s: f64,
    },
}

/// Footprint model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Footprint {
    None,
    /// Kljun et al. (2004) with the boundary-layer height it needs.
    Kljun2004 {
        pbl_height_m: f64,
    },
}

/// Everything the kernel needs to process one period of one system.
#[derive(Clone, Debug, PartialEq)]
pub struct EcConfig {
    pub site: Site,
    pub sonic: Sonic,
    pub gas_path: GasPath,
    pub co2_unit: GasUnit,
    pub h2o_unit: GasUnit,
    pub ch4_unit: GasUnit,
    pub sampling_hz: f64,
    /// Length of the averaging period; a shorter column counts its deficit as missing samples.
    pub averaging_s: f64,
    pub sonic_diag: DiagRule,
    pub gas_diag: DiagRule,
    pub ch4_diag: DiagRule,
    pub limits: AbsoluteLimits,
    /// Above this fraction of missing samples a variable is not used (EddyPro: 10 %).
    pub max_missing_fraction: f64,
    /// `None`: no despiking.
    pub despike: Option<Despike>,
    pub rotation: Rotation,
    pub lag: LagConfig,
    pub detrend: Detrend,
    pub spectral: SpectralCorrection,
    /// Number of sub-periods of the steady-state test (Foken & Wichura 1996: 6).
    pub steady_state_subperiods: usize,
    pub random_uncertainty: RandomUncertainty,
    pub footprint: Footprint,
}

impl Default for EcConfig {
    /// EddyPro 7 Express: double rotation, block averaging, covariance-maximisation lag with
    /// default fallback, WPL, Moncrieff et al. (1997) analytic spectral correction, Vickers & Mahrt
    /// despiking, Mauder & Foken (2004) flags, Kljun et al. (2004) footprint, no random error.
    /// Instruments: CSAT3 + LI-7500 open path, 20 Hz, 30 min. The site (3 m above a bare
    /// surface) is a placeholder: set `site` and `sonic.height_m` for real data.
    fn default() -> Self {
        Self {
            site: Site {
                altitude_m: 0.0,
                latitude_deg: 45.0,
                canopy_height_m: 0.1,
                displacement_m: None,
                roughness_length_m: None,
            },
            sonic: Sonic::csat3(3.0, 0.0),
            gas_path: GasPath::Open {
                analyzer: GasAnalyzer::li7500(),
                separation: Separation::default(),
            },
            co2_unit: GasUnit::MolarDensityMmolM3,
            h2o_unit: GasUnit::MolarDensityMmolM3,
            ch4_unit: GasUnit::MolarDensityMmolM3,
            sampling_hz: 20.0,
            averaging_s: 1800.0,
            sonic_diag: DiagRule::CSAT3,
            gas_diag: DiagRule::Ignore,
            ch4_diag: DiagRule::Ignore,
            limits: AbsoluteLimits::default(),
            max_missing_fraction: 0.10,
            despike: Some(Despike::default()),
            rotation: Rotation::Double,
            lag: LagConfig::default(),
            detrend: Detrend::Block,
            spectral: SpectralCorrection::Moncrieff1997 {
                sensor_separation: false,
            },
            steady_state_subperiods: 6,
            random_uncertainty: RandomUncertainty::None,
            footprint: Footprint::Kljun2004 {
                pbl_height_m: 1000.0,
            },
        }
    }
}

fn positive(field: &'static str, v: f64) -> Result<(), EcError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(EcError::config(
            field,
            v,
            "must be a positive finite number",
        ))
    }
}

fn non_negative(field: &'static str, v: f64) -> Result<(), EcError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(EcError::config(field, v, "must be a finite number >= 0"))
    }
}

impl EcConfig {
    /// Aerodynamic measurement height z - d.
    pub fn measurement_height(&self) -> f64 {
        self.sonic.height_m - self.site.displacement()
    }

    /// Number of samples a complete period has.
    pub fn expected_samples(&self) -> usize {
        (self.sampling_hz * self.averaging_s).round() as usize
    }

    /// Checks everything that would otherwise make the arithmetic meaningless.
    pub fn validate(&self) -> Result<(), EcError> {
        positive("sampling_hz", self.sampling_hz)?;
        positive("averaging_s", self.averaging_s)?;
        if !self.site.latitude_deg.is_finite() || self.site.latitude_deg.abs() > 90.0 {
            return Err(EcError::config(
                "site.latitude_deg",
                self.site.latitude_deg,
                "must lie in -90..=90",
            ));
        }
        if !self.site.altitude_m.is_finite() || self.site.altitude_m.abs() > 9000.0 {
            return Err(EcError::config(
                "site.altitude_m",
                self.site.altitude_m,
                "must be a finite height within -9000..=9000 m",
            ));
        }
        non_negative("site.canopy_height_m", self.site.canopy_height_m)?;
        if let Some(d) = self.site.displacement_m {
            non_negative("site.displacement_m", d)?;
        }
        if let Some(z0) = self.site.roughness_length_m {
            positive("site.roughness_length_m", z0)?;
        }
        positive("sonic.height_m", self.sonic.height_m)?;
        if self.measurement_height() <= 0.0 {
            return Err(EcError::config(
                "sonic.height_m",
                self.sonic.height_m,
                "must be above the displacement height (z - d > 0)",
            ));
        }
        if !self.sonic.north_offset_deg.is_finite() {
            return Err(EcError::config(
                "sonic.north_offset_deg",
                self.sonic.north_offset_deg,
                "must be finite",
            ));
        }
        non_negative("sonic.path_vertical_m", self.sonic.path_vertical_m)?;
        non_negative("sonic.path_horizontal_m", self.sonic.path_horizontal_m)?;
        non_negative("sonic.response_time_s", self.sonic.response_time_s)?;
        let a = self.gas_path.analyzer();
        non_negative("gas.path_length_m", a.path_length_m)?;
        non_negative("gas.path_diameter_m", a.path_diameter_m)?;
        non_negative("gas.response_time_s", a.response_time_s)?;
        let s = self.gas_path.separation();
        for (f, v) in [
            ("separation.northward_m", s.northward_m),
            ("separation.eastward_m", s.eastward_m),
            ("separation.vertical_m", s.vertical_m),
        ] {
            if !v.is_finite() {
                return Err(EcError::config(f, v, "must be finite"));
            }
        }
        if let GasPath::Closed { tube, .. } = &self.gas_path {
            non_negative("tube.length_m", tube.length_m)?;
            positive("tube.inner_diameter_m", tube.inner_diameter_m)?;
            positive("tube.flow_l_min", tube.flow_l_min)?;
            non_negative("tube.cell_volume_l", tube.cell_volume_l)?;
        }
        if !(self.max_missing_fraction.is_finite()
            && (0.0..1.0).contains(&self.max_missing_fraction))
        {
            return Err(EcError::config(
                "max_missing_fraction",
                self.max_missing_fraction,
                "must lie in 0..1",
            ));
        }
        if let Some(d) = &self.despike {
            if !(d.window_fraction > 0.0 && d.window_fraction <= 1.0) {
                return Err(EcError::config(
                    "despike.window_fraction",
                    d.window_fraction,
                    "must lie in (0, 1]",
                ));
            }
            if d.step_samples == 0 {
                return Err(EcError::config("despike.step_samples", 0, "must be >= 1"));
            }
            for (f, v) in [
                ("despike.sigma_u", d.sigma_u),
                ("despike.sigma_w", d.sigma_w),
                ("despike.sigma_ts", d.sigma_ts),
                ("despike.sigma_co2", d.sigma_co2),
                ("despike.sigma_h2o", d.sigma_h2o),
                ("despike.sigma_ch4", d.sigma_ch4),
            ] {
                positive(f, v)?;
            }
            non_negative("despike.threshold_increment", d.threshold_increment)?;
        }
        for (f, setting) in [
            ("lag.co2", self.lag.co2),
            ("lag.h2o", self.lag.h2o),
            ("lag.ch4", self.lag.ch4),
        ] {
            if let LagSetting::Fixed(w) = setting
                && !(w.min_s.is_finite()
                    && w.max_s.is_finite()
                    && w.nominal_s.is_finite()
                    && w.min_s <= w.max_s)
            {
                return Err(EcError::config(
                    f,
                    format!("{}..{} (nominal {})", w.min_s, w.max_s, w.nominal_s),
                    "lag window bounds must be finite with min <= max",
                ));
            }
        }
        match self.detrend {
            Detrend::RunningMean { tau_s } | Detrend::ExpRunningMean { tau_s } => {
                positive("detrend.tau_s", tau_s)?
            }
            Detrend::Block | Detrend::Linear => {}
        }
        if let SpectralCorrection::Ibrom2007(p) = &self.spectral {
            if !matches!(self.gas_path, GasPath::Closed { .. }) {
                return Err(EcError::Unsupported(
                    "the Ibrom et al. (2007) in-situ low-pass correction applies to closed-path systems",
                ));
            }
            positive("spectral.co2_fc_hz", p.co2_fc_hz)?;
            if let Some(fc) = p.ch4_fc_hz {
                positive("spectral.ch4_fc_hz", fc)?;
            }
            if !p.h2o_fc_exp.iter().all(|x| x.is_finite()) {
                return Err(EcError::config(
                    "spectral.h2o_fc_exp",
                    format!("{:?}", p.h2o_fc_exp),
                    "must be finite",
                ));
            }
        }
        if self.steady_state_subperiods < 2 {
            return Err(EcError::config(
                "steady_state_subperiods",
                self.steady_state_subperiods,
                "must be >= 2",
            ));
        }
        if let RandomUncertainty::FinkelsteinSims2001 { max_correlation_s } =
            self.random_uncertainty
        {
            positive("random_uncertainty.max_correlation_s", max_correlation_s)?;
        }
        if let Footprint::Kljun2004 { pbl_height_m } = self.footprint {
            positive("footprint.pbl_height_m", pbl_height_m)?;
        }
        Ok(())
    }
}
