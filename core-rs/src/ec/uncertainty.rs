//! Random (sampling) error of a covariance, Finkelstein & Sims (2001).
//!
//! A covariance from a finite, autocorrelated record is itself a random variable. Its variance is
//! estimated from the auto- and cross-covariance functions of the two series:
//! `var = (1/N) sum_{p=-m..m} [g_ww(p) g_xx(p) + g_wx(p) g_xw(p)]`, summed over lags up to the
//! integral time scale, where the correlation has decayed. The integral time scale is the integral
//! of the w-x cross-correlation function up to its first zero crossing, capped by a maximum
//! correlation period.

use super::stats::{dot, lagged_dots};

/// Biased (divide by N) lagged covariance of centred series: `sum a(i) b(i + p) / N`.
fn lagged(a: &[f64], b: &[f64], p: i64) -> f64 {
    let n = a.len().min(b.len());
    let k = p.unsigned_abs() as usize;
    if k >= n {
        return 0.0;
    }
    let s = if p >= 0 {
        dot(&a[..n - k], &b[k..n])
    } else {
        dot(&a[k..n], &b[..n - k])
    };
    s / n as f64
}

/// Integral time scale of the w-x cross-correlation, in samples, up to `max_lag` samples.
pub fn integral_scale_samples(w: &[f64], x: &[f64], max_lag: usize) -> usize {
    let c0 = lagged(w, x, 0);
    if c0 == 0.0 || !c0.is_finite() {
        return 0;
    }
    let mut integral = 0.5;
    for p in 1..=max_lag as i64 {
        let r = 0.5 * (lagged(w, x, p) + lagged(w, x, -p)) / c0;
        if r <= 0.0 {
            break;
        }
        integral += r;
    }
    (integral.round() as usize).min(max_lag)
}

/// Random error (one standard deviation) of cov(w, x), for centred series, summing lags `-m..=m`.
/// Reference implementation of the formula; [`covariance_errors`] is the fast path.
pub fn covariance_error(w: &[f64], x: &[f64], m: usize) -> f64 {
    let n = w.len().min(x.len());
    if n < 2 {
        return f64::NAN;
    }
    let mut var = 0.0;
    for p in -(m as i64)..=(m as i64) {
        let gww = lagged(w, w, p.abs());
        let gxx = lagged(x, x, p.abs());
        let gwx = lagged(w, x, p);
        let gxw = lagged(x, w, p);
        var += gww * gxx + gwx * gxw;
    }
    (var.max(0.0) / n as f64).sqrt()
}

/// Buffers for [`covariance_errors`], reusable across periods.
#[derive(Debug, Default)]
pub struct CorrelationScratch {
    ww: Vec<f64>,
    wx: Vec<f64>,
    xx: Vec<f64>,
}

/// Random errors of cov(w, x) for several scalars `xs` sharing one w (all centred, equal length),
/// each summed over its own integral time scale (at most `max_lag` samples). Writes one error
/// per scalar into `out` (in the covariance's units) and returns nothing else.
///
/// The correlation functions are computed once each with cache-blocked lagged dot products:
/// w's autocovariance is shared by all scalars, and the cross-covariance that defines the integral
/// scale is the same one the error sum needs.
pub fn covariance_errors(
    w: &[f64],
    xs: &[&[f64]],
    max_lag: usize,
    scratch: &mut CorrelationScratch,
    out: &mut [f64],
) {
    let n = xs.iter().fold(w.len(), |acc, x| acc.min(x.len()));
    let max_lag = max_lag.min(n.saturating_sub(1));
    let nf = n as f64;
    let w = &w[..n];
    let CorrelationScratch { ww, wx, xx } = scratch;
    ww.clear();
    ww.resize(max_lag + 1, 0.0);
    lagged_dots(w, w, 0, ww);
    for (x, err) in xs.iter().zip(out.iter_mut()) {
        let x = &x[..n];
        // wx[max_lag + p] = sum w(i) x(i + p), p in -max_lag..=max_lag.
        wx.clear();
        wx.resize(2 * max_lag + 1, 0.0);
        lagged_dots(w, x, -(max_lag as i64), wx);
        let c0 = wx[max_lag];
        let m = if c0 == 0.0 || !c0.is_finite() {
            0
        } else {
            let mut integral = 0.5;
            for p in 1..=max_lag {
                let r = 0.5 * (wx[max_lag + p] + wx[max_lag - p]) / c0;
                if r <= 0.0 {
                    break;
                }
                integral += r;
            }
            (integral.round() as usize).min(max_lag)
        };
        xx.clear();
        xx.resize(m + 1, 0.0);
        lagged_dots(x, x, 0, xx);
        // Sum over p = -m..=m of g_ww(|p|) g_xx(|p|) + g_wx(p) g_wx(-p), with g = dots / N.
        let mut var = ww[0] * xx[0] + wx[max_lag] * wx[max_lag];
        for p in 1..=m {
            var += 2.0 * (ww[p] * xx[p] + wx[max_lag + p] * wx[max_lag - p]);
        }
        *err = (var.max(0.0) / (nf * nf) / nf).sqrt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_matches_the_reference_formula() {
        let n = 3000;
        let w: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.05).sin() + (i as f64 * 0.31).cos())
            .collect();
        let x: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.05 + 0.3).sin() + 0.5 * (i as f64 * 0.77).sin())
            .collect();
        let wm = w.iter().sum::<f64>() / n as f64;
        let xm = x.iter().sum::<f64>() / n as f64;
        let w: Vec<f64> = w.iter().map(|v| v - wm).collect();
        let x: Vec<f64> = x.iter().map(|v| v - xm).collect();
        let m = integral_scale_samples(&w, &x, 80);
        let slow = covariance_error(&w, &x, m);
        let mut out = [0.0];
        covariance_errors(&w, &[&x], 80, &mut CorrelationScratch::default(), &mut out);
        assert!((out[0] / slow - 1.0).abs() < 1e-9, "{} vs {slow}", out[0]);
    }

    #[test]
    fn white_noise_error_is_the_textbook_value() {
        // For independent white series, var(cov) = var(w) var(x) / N.
        let n = 20_000;
        let mut s = 12345u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s as f64 / u64::MAX as f64) - 0.5
        };
        let w: Vec<f64> = (0..n).map(|_| next()).collect();
        let x: Vec<f64> = (0..n).map(|_| next()).collect();
        let e = covariance_error(&w, &x, 0);
        let expected = (1.0f64 / 12.0) / (n as f64).sqrt();
        assert!((e / expected - 1.0).abs() < 0.05, "{e} vs {expected}");
    }
}
