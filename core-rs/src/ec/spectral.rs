//! Frequency-response correction factors (analytic, Moncrieff et al. 1997 and 2004).
//!
//! A measured covariance is the integral of the true cospectrum times the system's transfer
//! function: detrending removes low frequencies, sensors average over their paths and respond with
//! a time constant, tubes smear concentration fluctuations. The correction factor is
//! `SCF = int Co(f) df / int T(f) Co(f) df` with a model cospectrum Co. Kaimal et al. (1972)
//! surface-layer cospectra are used, in the forms of Moncrieff et al. (1997), scaled by
//! n = f (z - d) / u.
//!
//! The covariance transfer functions are products of amplitude gains: the square root of each
//! power transfer function of a variable that is filtered on its own. Sonic quantities (u, w, Ts)
//! come from one transducer cycle, so the sonic's time response enters once per covariance; a
//! gas analyser's response enters as its own square root. The integral runs on a logarithmic
//! frequency grid from 1e-5 Hz to the Nyquist frequency: the attenuation above Nyquist is not
//! part of what the sampled covariance lost (the energy there is aliased, not removed).

use super::config::{Detrend, EcConfig, GasPath, SpectralCorrection};
use std::f64::consts::PI;

/// Which model cospectrum a covariance follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cospectrum {
    /// u'w'.
    Momentum,
    /// w'T', w'c' (scalars share one shape).
    Scalar,
}

/// Normalised Kaimal cospectrum n Co(n) / cov at normalised frequency n = f z / u.
pub fn kaimal(n: f64, zl: f64, kind: Cospectrum) -> f64 {
    if zl <= 0.0 {
        match kind {
            Cospectrum::Momentum => {
                if n < 0.24 {
                    20.78 * n / (1.0 + 31.0 * n).powf(1.575)
                } else {
                    12.66 * n / (1.0 + 9.6 * n).powf(2.4)
                }
            }
            Cospectrum::Scalar => {
                if n < 0.54 {
                    12.92 * n / (1.0 + 26.7 * n).powf(1.375)
                } else {
                    4.378 * n / (1.0 + 3.8 * n).powf(2.4)
                }
            }
        }
    } else {
        let a = match kind {
            Cospectrum::Momentum => 0.124 * (1.0 + 7.9 * zl).powf(0.75),
            Cospectrum::Scalar => 0.284 * (1.0 + 6.4 * zl).powf(0.75),
        };
        let b = 2.34 * a.powf(-1.1);
        n / (a + b * n.powf(2.1))
    }
}

/// High-pass transfer function of the detrending (Moncrieff et al. 2004; linear detrending after
/// Rannik & Vesala 1999). `t` is the averaging period, s.
pub fn high_pass(f: f64, detrend: Detrend, t: f64) -> f64 {
    let sinc = |x: f64| if x.abs() < 1e-8 { 1.0 } else { x.sin() / x };
    let x = PI * f * t;
    match detrend {
        Detrend::Block => 1.0 - sinc(x).powi(2),
        Detrend::Linear => {
            let s = sinc(x);
            let extra = if x.abs() < 1e-4 {
                0.0
            } else {
                3.0 * (s - x.cos()).powi(2) / (x * x)
            };
            (1.0 - s * s - extra).max(0.0)
        }
        Detrend::RunningMean { tau_s } => (1.0 - sinc(PI * f * tau_s)).powi(2),
        Detrend::ExpRunningMean { tau_s } => {
            let a = (2.0 * PI * f * tau_s).powi(2);
            a / (1.0 + a)
        }
    }
}

/// First-order response, power transfer function.
pub fn first_order(f: f64, tau: f64) -> f64 {
    1.0 / (1.0 + (2.0 * PI * f * tau).powi(2))
}

/// Line averaging of w along a vertical sonic path of length `p` (Kaimal et al. 1968), power.
pub fn w_line_average(f: f64, p: f64, u: f64) -> f64 {
    let x = 2.0 * PI * f * p / u;
    if x < 1e-4 {
        return 1.0;
    }
    let e = (-x).exp();
    (4.0 / x) * (1.0 + 0.5 * e - 1.5 * (1.0 - e) / x)
}

/// Line averaging of a scalar along a path of length `p` (Gurvich 1962, Moncrieff et al. 1997), power.
pub fn scalar_line_average(f: f64, p: f64, u: f64) -> f64 {
    let x = 2.0 * PI * f * p / u;
    if x < 1e-4 {
        return 1.0;
    }
    let e = (-x).exp();
    (3.0 + e - 4.0 * (1.0 - e) / x) / x
}

/// Cospectral loss due to lateral sensor separation `s` (Moore 1986).
pub fn separation(f: f64, s: f64, u: f64) -> f64 {
    (-9.9 * (f * s / u).powf(1.5)).exp()
}

/// Amplitude attenuation of concentration fluctuations along a sampling tube.
///
/// Turbulent flow (Re > 2300): Taylor (1954) dispersion with the Blasius friction factor gives
/// exp(-8 pi^2 Re^(-1/8) r f^2 L / U^2) (Lenschow & Raupach 1991; the ~80 of Moore 1986).
/// Laminar flow: Taylor dispersion r^2 U^2 / (48 D), i.e. exp(-pi^2 r^2 f^2 L / (12 D U)).
pub fn tube(f: f64, radius: f64, length: f64, speed: f64, diffusivity: f64) -> f64 {
    if length <= 0.0 || speed <= 0.0 {
        return 1.0;
    }
    let re = speed * 2.0 * radius / 1.5e-5;
    let k = if re > 2300.0 {
        8.0 * PI * PI * re.powf(-0.125) * radius * length / (speed * speed)
    } else {
        PI * PI * radius * radius * length / (12.0 * diffusivity * speed)
    };
    (-k * f * f).exp()
}

/// Correction factors, each >= 1 in normal conditions. NaN when not applicable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralFactors {
    pub tau: f64,
    pub h: f64,
    pub co2: f64,
    pub h2o: f64,
    pub ch4: f64,
}

impl SpectralFactors {
    pub const ONE: SpectralFactors = SpectralFactors {
        tau: 1.0,
        h: 1.0,
        co2: 1.0,
        h2o: 1.0,
        ch4: 1.0,
    };
}

/// Conditions of the period the factors depend on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralConditions {
    /// Mean horizontal wind after rotation, m s-1.
    pub wind_speed: f64,
    pub zl: f64,
    /// Relative humidity as a fraction (in-situ water-vapour cut-off).
    pub rh_fraction: f64,
    /// Length of the covariance series, s.
    pub period_s: f64,
}

const F_MIN: f64 = 1e-5;
const POINTS_PER_DECADE: usize = 60;

/// Molecular diffusivities in air, m2 s-1 (laminar tube flow only).
const D_CO2: f64 = 1.39e-5;
const D_H2O: f64 = 2.4e-5;
const D_CH4: f64 = 2.1e-5;

/// Computes the factors for the configured method.
pub fn correction_factors(cfg: &EcConfig, c: &SpectralConditions) -> SpectralFactors {
    let separation_on = match &cfg.spectral {
        SpectralCorrection::None => return SpectralFactors::ONE,
        SpectralCorrection::Moncrieff1997 { sensor_separation } => *sensor_separation,
        SpectralCorrection::Ibrom2007(_) => false,
    };
    // A calm period has no meaningful cospectral scaling; the factors would explode.
    let u = c.wind_speed.max(0.2);
    let z = cfg.measurement_height();
    let fmax = 0.5 * cfg.sampling_hz;
    if fmax <= F_MIN {
        return SpectralFactors::ONE;
    }
    let decades = (fmax / F_MIN).log10();
    let npts = ((decades * POINTS_PER_DECADE as f64).ceil() as usize).max(20);
    let dlnf = (fmax / F_MIN).ln() / npts as f64;

    let sonic = &cfg.sonic;
    let analyzer = cfg.gas_path.analyzer();
    let (open, tube_geo) = match &cfg.gas_path {
        GasPath::Open { .. } => (true, None),
        GasPath::Closed { tube, .. } => (
            false,
            Some((0.5 * tube.inner_diameter_m, tube.length_m, tube.speed_m_s())),
        ),
    };
    let sep = cfg.gas_path.separation().horizontal_m();

    // Numerator and denominator integrals: momentum, heat, CO2, H2O, CH4, and (for the in-situ
    // method) a scalar seen through the high-pass and sonic terms only.
    let mut num = [0.0f64; 2];
    let mut den = [0.0f64; 6];
    for i in 0..=npts {
        let f = F_MIN * (i as f64 * dlnf).exp();
        let weight = if i == 0 || i == npts { 0.5 } else { 1.0 };
        let n = f * z / u;
        // n Co(n) is the cospectral density per ln f, so the integral over ln f needs no extra f.
        let co_m = kaimal(n, c.zl, Cospectrum::Momentum) * weight;
        let co_s = kaimal(n, c.zl, Cospectrum::Scalar) * weight;
        num[0] += co_m;
        num[1] += co_s;

        let hp = high_pass(f, cfg.detrend, c.period_s);
        let sonic_resp = first_order(f, sonic.response_time_s).sqrt();
        let w_path = w_line_average(f, sonic.path_vertical_m, u).sqrt();
        let sonic_common = hp * w_path * sonic_resp;
        den[0] += co_m * sonic_common;
        den[1] += co_s * sonic_common * scalar_line_average(f, sonic.path_horizontal_m, u).sqrt();

        den[5] += co_s * sonic_common;
        let mut gas = sonic_common * first_order(f, analyzer.response_time_s).sqrt();
        if open {
            gas *= scalar_line_average(f, analyzer.path_length_m, u).sqrt();
        }
        if separation_on {
            gas *= separation(f, sep, u);
        }
        match tube_geo {
            Some((r, l, speed)) => {
                den[2] += co_s * gas * tube(f, r, l, speed, D_CO2);
                den[3] += co_s * gas * tube(f, r, l, speed, D_H2O);
                den[4] += co_s * gas * tube(f, r, l, speed, D_CH4);
            }
            None => {
                den[2] += co_s * gas;
                den[3] += co_s * gas;
                den[4] += co_s * gas;
            }
        }
    }
    let mut out = SpectralFactors {
        tau: num[0] / den[0],
        h: num[1] / den[1],
        co2: num[1] / den[2],
        h2o: num[1] / den[3],
        ch4: num[1] / den[4],
    };

    if let SpectralCorrection::Ibrom2007(p) = &cfg.spectral {
        // In-situ low-pass: the analytic part keeps only high-pass and sonic terms, the gas
        // analyser, cell and tube are represented by the measured cut-off frequency.
        let sonic_only_scalar = num[1] / den[5];
        let (c1, c2) = if c.zl < 0.0 { p.unstable } else { p.stable };
        let cf = |fc: f64| 1.0 + c1 * u / (c2 + fc);
        out.co2 = sonic_only_scalar * cf(p.co2_fc_hz);
        out.h2o = sonic_only_scalar * cf(p.h2o_fc_hz(c.rh_fraction));
        out.ch4 = match p.ch4_fc_hz {
            Some(fc) => sonic_only_scalar * cf(fc),
            None => out.ch4,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_functions_tend_to_one_at_low_frequency_and_vanish_at_high() {
        for f in [1e-7, 1e-6] {
            assert!((w_line_average(f, 0.1, 2.0) - 1.0).abs() < 1e-6);
            assert!((scalar_line_average(f, 0.1, 2.0) - 1.0).abs() < 1e-6);
            assert!(high_pass(f, Detrend::Block, 1800.0) < 1e-3);
            assert!(high_pass(f, Detrend::Linear, 1800.0) < 1e-3);
        }
        assert!(w_line_average(100.0, 0.1, 1.0) < 0.1);
        assert!(high_pass(1.0, Detrend::Block, 1800.0) > 0.999);
        assert!(high_pass(1.0, Detrend::ExpRunningMean { tau_s: 250.0 }, 1800.0) > 0.999);
    }

    #[test]
    fn kaimal_scalar_cospectrum_integrates_to_about_one() {
        // The forms are normalised so that the integral over ln n is close to 1.
        let (mut s, n0, n1, k) = (0.0, 1e-6f64, 1e4f64, 20_000);
        let d = (n1 / n0).ln() / k as f64;
        for i in 0..k {
            let n = n0 * ((i as f64 + 0.5) * d).exp();
            s += kaimal(n, -0.1, Cospectrum::Scalar) * d;
        }
        assert!((s - 1.0).abs() < 0.1, "integral {s}");
    }
}
