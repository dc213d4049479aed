//! Random (sampling) error of a covariance, Finkelstein & Sims (2001).
//!
//! A covariance from a finite, autocorrelated record is itself a random variable. Its variance is
//! estimated from the auto- and cross-covariance functions of the two series:
//! `var = (1/N) sum_{p=-m..m} [g_ww(p) g_xx(p) + g_wx(p) g_xw(p)]`, summed over lags up to the
//! integral time scale, where the correlation has decayed. The integral time scale is the integral
//! of the w-x cross-correlation function up to its first zero crossing, capped by a maximum
//! correlation period.

use super::stats::dot;

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

#[cfg(test)]
mod tests {
    use super::*;

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
