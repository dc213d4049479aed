//! Time lag between w and a scalar by covariance maximisation.
//!
//! A scalar reaches its analyser later (tube transport) or earlier/later (sensor separation along
//! the wind) than the wind reaches the sonic. Pairing w(t) with c(t + lag) for the lag that makes
//! |cov| largest recovers the flux lost to the misalignment. If the largest |cov| sits on the
//! window's edge the true peak is outside the window (or there is no peak, as for a near-zero
//! flux), so the nominal lag is the better guess: EddyPro's "covariance maximisation with default".
//!
//! Each candidate is one dot product over the overlap; with the eight-lane [`dot`] the whole search
//! of a 30-min period over +/- 1 s costs well under a millisecond.

use super::config::LagMethod;
use super::stats::dot;

/// Result of a lag search, in samples. Positive: the scalar sample `i + lag` belongs with w sample `i`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LagOutcome {
    /// Lag used for the flux.
    pub lag: i64,
    /// Lag of maximum |covariance| in the window (equal to `lag` unless the default was used).
    pub found: i64,
    /// True when the nominal lag replaced the search result.
    pub default_used: bool,
}

/// Covariance of w(i) and c(i + lag) over their overlap, with the overlap's own means removed.
/// `w` and `c` should be roughly centred (the period mean removed) for accuracy.
pub fn lagged_cov(w: &[f64], c: &[f64], lag: i64) -> f64 {
    let n = w.len().min(c.len()) as i64;
    if lag.abs() >= n {
        return f64::NAN;
    }
    let (ws, cs) = if lag >= 0 {
        let l = lag as usize;
        (&w[..w.len() - l], &c[l..])
    } else {
        let l = (-lag) as usize;
        (&w[l..], &c[..c.len() - l])
    };
    let m = ws.len().min(cs.len());
    let (ws, cs) = (&ws[..m], &cs[..m]);
    let mf = m as f64;
    let sw = super::stats::sum(ws);
    let sc = super::stats::sum(cs);
    dot(ws, cs) / mf - (sw / mf) * (sc / mf)
}

/// Searches `lo..=hi` (samples) for the lag of largest |cov(w, c)|; see the module doc for the
/// fallback. Lags are clipped to a quarter of the period, so that even two scalars lagged in
/// opposite directions leave half of the period aligned.
pub fn find_lag(
    w: &[f64],
    c: &[f64],
    lo: i64,
    hi: i64,
    nominal: i64,
    method: LagMethod,
) -> LagOutcome {
    let n = w.len().min(c.len()) as i64;
    let limit = (n / 4).max(0);
    let (lo, hi) = (lo.clamp(-limit, limit), hi.clamp(-limit, limit));
    let nominal = nominal.clamp(-limit, limit);
    if method == LagMethod::Constant || lo > hi {
        return LagOutcome {
            lag: nominal,
            found: nominal,
            default_used: method != LagMethod::Constant,
        };
    }
    let mut best = nominal;
    let mut best_abs = f64::NEG_INFINITY;
    for lag in lo..=hi {
        let cv = lagged_cov(w, c, lag).abs();
        if cv > best_abs {
            best_abs = cv;
            best = lag;
        }
    }
    if !best_abs.is_finite() {
        return LagOutcome {
            lag: nominal,
            found: nominal,
            default_used: true,
        };
    }
    let on_edge = lo < hi && (best == lo || best == hi);
    if method == LagMethod::CovarianceMaxWithDefault && on_edge {
        LagOutcome {
            lag: nominal,
            found: best,
            default_used: true,
        }
    } else {
        LagOutcome {
            lag: best,
            found: best,
            default_used: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_shift_and_falls_back_on_the_window_edge() {
        let n = 4000;
        let base: Vec<f64> = (0..n + 10)
            .map(|i| ((i * 7919) % 101) as f64 - 50.0)
            .collect();
        let w: Vec<f64> = base[..n].to_vec();
        // c(i) = w(i - 4): the scalar arrives 4 samples late.
        let c: Vec<f64> = (0..n)
            .map(|i| if i >= 4 { base[i - 4] } else { 0.0 })
            .collect();
        let out = find_lag(&w, &c, -10, 10, 0, LagMethod::CovarianceMaxWithDefault);
        assert_eq!((out.lag, out.default_used), (4, false));
        let edge = find_lag(&w, &c, -10, 4, 1, LagMethod::CovarianceMaxWithDefault);
        assert_eq!((edge.lag, edge.found, edge.default_used), (1, 4, true));
        let plain = find_lag(&w, &c, -10, 4, 1, LagMethod::CovarianceMax);
        assert_eq!((plain.lag, plain.default_used), (4, false));
    }
}
