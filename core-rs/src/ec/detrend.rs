//! Fluctuations: what is left of a series after its "mean" is removed.
//!
//! What counts as the mean is a high-pass filter choice (Moncrieff et al. 2004): the block average
//! keeps every frequency above 1/T, a linear trend or a running mean also remove slow changes that
//! are not turbulence (a front passing, a diurnal ramp) at the price of some low-frequency flux,
//! which the spectral correction then restores with the matching transfer function
//! ([`super::spectral`]). All methods write into a caller-provided buffer, no allocation.

use super::config::Detrend;
use super::stats;

/// Writes `x - trend(x)` into `out` (resized to `x.len()`) and returns the arithmetic mean of `x`.
pub fn fluctuations(x: &[f64], method: Detrend, sampling_hz: f64, out: &mut Vec<f64>) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `fluctuations_avx2` is compiled with.
            return unsafe { fluctuations_avx2(x, method, sampling_hz, out) };
        }
    }
    fluctuations_impl(x, method, sampling_hz, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fluctuations_avx2(x: &[f64], method: Detrend, sampling_hz: f64, out: &mut Vec<f64>) -> f64 {
    fluctuations_impl(x, method, sampling_hz, out)
}

#[inline(always)]
fn fluctuations_impl(x: &[f64], method: Detrend, sampling_hz: f64, out: &mut Vec<f64>) -> f64 {
    out.clear();
    let n = x.len();
    let mean = stats::mean(x);
    if n == 0 {
        return mean;
    }
    if method == Detrend::Block {
        out.extend(x.iter().map(|&v| v - mean));
        return mean;
    }
    out.resize(n, 0.0);
    match method {
        Detrend::Block => unreachable!("handled above"),
        Detrend::Linear => {
            // Least squares on a centred time index: slope = sum(t (x - mean)) / sum(t^2).
            let tc = 0.5 * (n as f64 - 1.0);
            let mut sxy = 0.0;
            for (i, &v) in x.iter().enumerate() {
                sxy += (i as f64 - tc) * (v - mean);
            }
            let nf = n as f64;
            let sxx = nf * (nf * nf - 1.0) / 12.0;
            let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
            for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
                *o = v - mean - slope * (i as f64 - tc);
            }
        }
        Detrend::RunningMean { tau_s } => {
            // Centred boxcar of `2 h + 1` samples, truncated (not padded) at the ends.
            let h = ((tau_s * sampling_hz).round() as usize / 2).min(n.saturating_sub(1));
            let mut lo = 0usize;
            let mut hi = 0usize; // exclusive
            let mut s = 0.0;
            for i in 0..n {
                let want_hi = (i + h + 1).min(n);
                let want_lo = i.saturating_sub(h);
                while hi < want_hi {
                    s += x[hi] - mean;
                    hi += 1;
                }
                while lo < want_lo {
                    s -= x[lo] - mean;
                    lo += 1;
                }
                out[i] = (x[i] - mean) - s / (hi - lo) as f64;
            }
        }
        Detrend::ExpRunningMean { tau_s } => {
            // Causal exponential filter; started at the mean of its first time constant so the
            // opening samples are not all attributed to a start-up transient.
            let alpha = (-1.0 / (tau_s * sampling_hz)).exp();
            let warm = ((tau_s * sampling_hz).round() as usize).clamp(1, n);
            let mut m = stats::mean(&x[..warm]);
            for (o, &v) in out.iter_mut().zip(x) {
                m = alpha * m + (1.0 - alpha) * v;
                *o = v - m;
            }
        }
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_detrending_removes_a_ramp_exactly() {
        let x: Vec<f64> = (0..100).map(|i| 3.0 + 0.5 * i as f64).collect();
        let mut out = Vec::new();
        let m = fluctuations(&x, Detrend::Linear, 20.0, &mut out);
        assert!((m - (3.0 + 0.5 * 49.5)).abs() < 1e-12);
        assert!(out.iter().all(|v| v.abs() < 1e-9));
    }

    #[test]
    fn running_means_remove_a_constant_and_block_keeps_shape() {
        let x: Vec<f64> = (0..400).map(|i| 7.0 + (i as f64 * 0.9).sin()).collect();
        let mut out = Vec::new();
        for method in [
            Detrend::Block,
            Detrend::RunningMean { tau_s: 2.0 },
            Detrend::ExpRunningMean { tau_s: 2.0 },
        ] {
            fluctuations(&x, method, 20.0, &mut out);
            let m = stats::mean(&out);
            assert!(m.abs() < 0.05, "{method:?}: mean {m}");
        }
    }
}
