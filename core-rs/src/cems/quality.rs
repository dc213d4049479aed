//! Data-quality signals over series: pure functions, no state.
//!
//! Stuck (flat-lined) signals, repeated packets, physically implausible jumps and calibration
//! hours are the classic signs of analyser faults or of data tampering; the Part 75 daily
//! calibration error and RATA bias statistics grade the analysers themselves.

use super::error::{CemsError, check_range};
use super::flags::FlagCounts;
use crate::hj212::DataFlag;

/// A run of consecutive indices `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub len: usize,
}

/// Runs of at least `min_len` readings that stay within `tolerance` of the run's first reading
/// (tolerance 0: identical values). NaN breaks a run. A live analyser always jitters; a long
/// exactly-flat run means a frozen signal or values typed in.
pub fn flatline_runs(values: &[f64], min_len: usize, tolerance: f64) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let first = values[i];
        let mut j = i + 1;
        if first.is_finite() {
            while j < values.len() && (values[j] - first).abs() <= tolerance {
                j += 1;
            }
            if j - i >= min_len.max(2) {
                out.push(Run {
                    start: i,
                    len: j - i,
                });
            }
        }
        i = j;
    }
    out
}

/// Runs of at least `min_len` equal keys, e.g. `hj212::fingerprint`s of consecutive packets:
/// the same values sent again under new time stamps.
pub fn repeated_runs<T: PartialEq>(keys: &[T], min_len: usize) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let j = i + keys[i..].iter().take_while(|k| **k == keys[i]).count();
        if j - i >= min_len.max(2) {
            out.push(Run {
                start: i,
                len: j - i,
            });
        }
        i = j;
    }
    out
}

/// Indices whose change from the previous finite value exceeds both `max_abs_step` and
/// `max_rel_step` x |previous| (both, so small values near zero are not flagged for relative
/// noise and large values not for absolute noise). E.g. flow jumping 50 % in one minute with no
/// load change.
pub fn implausible_jumps(values: &[f64], max_abs_step: f64, max_rel_step: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev: Option<f64> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        if let Some(p) = prev {
            let step = (v - p).abs();
            if step > max_abs_step && step > max_rel_step * p.abs() {
                out.push(i);
            }
        }
        prev = Some(v);
    }
    out
}

/// Hours in which a calibration (C) was flagged: expected once a day per analyser; none for
/// weeks, or many per day, are both suspicious.
pub fn calibration_hours(hours: &[FlagCounts]) -> Vec<bool> {
    hours
        .iter()
        .map(|c| c.get(DataFlag::Calibration) > 0)
        .collect()
}

/// Result of a daily calibration error test (Part 75 Appendix A 3.1 / B 2.1.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationCheck {
    /// |reference - measured| / span x 100.
    pub error_pct_of_span: f64,
    pub passes: bool,
}

/// Daily calibration error of a pollutant or flow monitor: passes at <= 2.5 % of span.
pub fn calibration_error(
    reference: f64,
    measured: f64,
    span: f64,
) -> Result<CalibrationCheck, CemsError> {
    check_range("span", span, span > 0.0, "(0, inf)")?;
    let e = (reference - measured).abs() / span * 100.0;
    Ok(CalibrationCheck {
        error_pct_of_span: e,
        passes: e <= 2.5,
    })
}

/// Daily calibration error of a CO2 or O2 monitor: passes at <= 0.5 % CO2/O2 absolute
/// difference (the `error_pct_of_span` is still reported).
pub fn diluent_calibration_error(
    reference_pct: f64,
    measured_pct: f64,
    span_pct: f64,
) -> Result<CalibrationCheck, CemsError> {
    let c = calibration_error(reference_pct, measured_pct, span_pct)?;
    Ok(CalibrationCheck {
        passes: (reference_pct - measured_pct).abs() <= 0.5,
        ..c
    })
}

/// Student t at 97.5 % (two-sided 95 %) for 1..=30 degrees of freedom (Part 75 Appendix A
/// Table 7-1).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// RATA statistics from paired runs (reference method, CEMS).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RataResult {
    /// Mean of (reference - CEMS).
    pub mean_difference: f64,
    /// Confidence coefficient `t * Sd / sqrt(n)`.
    pub confidence_coefficient: f64,
    /// `(|d| + |cc|) / mean reference x 100`.
    pub relative_accuracy_pct: f64,
    /// The CEMS reads low beyond the confidence interval (d > |cc|).
    pub biased_low: bool,
    /// `1 + |d| / mean CEMS` when biased low, else 1.0. Not applied to CO2/O2 (the caller
    /// decides per parameter).
    pub bias_adjustment_factor: f64,
}

/// Relative accuracy and bias test (Part 75 Appendix A 7.3-7.6) over 2..=31 run pairs.
pub fn rata(reference: &[f64], cems: &[f64]) -> Result<RataResult, CemsError> {
    if reference.len() != cems.len() {
        return Err(CemsError::LengthMismatch {
            what: "RATA reference and CEMS runs",
            a: reference.len(),
            b: cems.len(),
        });
    }
    let n = reference.len();
    if !(2..=31).contains(&n) {
        return Err(CemsError::OutOfRange {
            what: "RATA run count",
            value: n as f64,
            range: "2..=31",
        });
    }
    let nf = n as f64;
    let d: Vec<f64> = reference.iter().zip(cems).map(|(r, c)| r - c).collect();
    let mean_d = d.iter().sum::<f64>() / nf;
    let sd = (d.iter().map(|x| (x - mean_d).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    let cc = T_975[n - 2] * sd / nf.sqrt();
    let mean_ref = reference.iter().sum::<f64>() / nf;
    let mean_cems = cems.iter().sum::<f64>() / nf;
    check_range("mean reference value", mean_ref, mean_ref > 0.0, "(0, inf)")?;
    let biased_low = mean_d > cc.abs();
    Ok(RataResult {
        mean_difference: mean_d,
        confidence_coefficient: cc,
        relative_accuracy_pct: (mean_d.abs() + cc.abs()) / mean_ref * 100.0,
        biased_low,
        bias_adjustment_factor: if biased_low {
            1.0 + mean_d.abs() / mean_cems
        } else {
            1.0
        },
    })
}
