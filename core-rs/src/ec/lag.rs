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
    let n = w.len().min(c.len());
    let (w, c) = (&w[..n], &c[..n]);
    let l = lag.unsigned_abs() as usize;
    if l >= n {
        return f64::NAN;
    }
    let d = if lag >= 0 {
        dot(&w[..n - l], &c[l..])
    } else {
        dot(&w[l..], &c[..n - l])
    };
    overlap_cov(
        w.into(),
        c.into(),
        lag,
        d,
        super::stats::sum(w),
        super::stats::sum(c),
    )
}

/// Covariance over the overlap of a lag from the overlap's dot product and the whole-series sums:
/// the overlap's sums are the totals minus the few samples the shift leaves out. `cw` and `cc`
/// are subtracted from the samples (see [`Centred`]).
fn overlap_cov(w: Centred, c: Centred, lag: i64, dot_wc: f64, sw: f64, sc: f64) -> f64 {
    let n = w.x.len();
    let l = lag.unsigned_abs() as usize;
    if l >= n {
        return f64::NAN;
    }
    let (w_out, c_out) = if lag >= 0 {
        (&w.x[n - l..], &c.x[..l])
    } else {
        (&w.x[..l], &c.x[n - l..])
    };
    let mf = (n - l) as f64;
    let sw = sw - w_out.iter().map(|v| v - w.centre).sum::<f64>();
    let sc = sc - c_out.iter().map(|v| v - c.centre).sum::<f64>();
    dot_wc / mf - (sw / mf) * (sc / mf)
}

/// A series and the value the search subtracts from each sample (the period mean, for accuracy:
/// see [`find_lag`]). Centring on the fly gives exactly what a stored `x - centre` would hold,
/// without the pipeline writing three centred copies of 36,000 samples before every search.
#[derive(Clone, Copy, Debug)]
pub struct Centred<'a> {
    pub x: &'a [f64],
    pub centre: f64,
}

impl<'a> From<&'a [f64]> for Centred<'a> {
    /// A series used as it is (subtracting 0 is exact).
    fn from(x: &'a [f64]) -> Self {
        Centred { x, centre: 0.0 }
    }
}

/// Reusable buffers of [`find_lag`].
#[derive(Debug, Default)]
pub struct LagScratch {
    /// One product sum per candidate lag.
    products: Vec<f64>,
    /// The cache block being centred (see [`super::stats::lagged_dots_centred`]).
    block: Vec<f64>,
}

/// Searches `lo..=hi` (samples) for the lag of largest |cov(w, c)|; see the module doc for the
/// fallback. Lags are clipped to a quarter of the period, so that even two scalars lagged in
/// opposite directions leave half of the period aligned. `w` and `c` should be roughly centred
/// (the period mean subtracted, here or by [`Centred::centre`]) for accuracy.
pub fn find_lag(
    w: Centred,
    c: Centred,
    lo: i64,
    hi: i64,
    nominal: i64,
    method: LagMethod,
    scratch: &mut LagScratch,
) -> LagOutcome {
    let n = w.x.len().min(c.x.len()) as i64;
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
    let w = Centred {
        x: &w.x[..n as usize],
        ..w
    };
    let c = Centred {
        x: &c.x[..n as usize],
        ..c
    };
    let sw = super::stats::sum_centred(w.x, w.centre);
    let sc = super::stats::sum_centred(c.x, c.centre);
    let products = &mut scratch.products;
    products.clear();
    products.resize((hi - lo + 1) as usize, 0.0);
    super::stats::lagged_dots_centred(
        w.x,
        c.x,
        Some((w.centre, c.centre)),
        lo,
        products,
        &mut scratch.block,
    );
    let mut best = nominal;
    let mut best_abs = f64::NEG_INFINITY;
    for (k, &d) in products.iter().enumerate() {
        let lag = lo + k as i64;
        let cv = overlap_cov(w, c, lag, d, sw, sc).abs();
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
        let s = &mut LagScratch::default();
        let (wc, cc) = (Centred::from(&w[..]), Centred::from(&c[..]));
        let out = find_lag(wc, cc, -10, 10, 0, LagMethod::CovarianceMaxWithDefault, s);
        assert_eq!((out.lag, out.default_used), (4, false));
        let edge = find_lag(wc, cc, -10, 4, 1, LagMethod::CovarianceMaxWithDefault, s);
        assert_eq!((edge.lag, edge.found, edge.default_used), (1, 4, true));
        let plain = find_lag(wc, cc, -10, 4, 1, LagMethod::CovarianceMax, s);
        assert_eq!((plain.lag, plain.default_used), (4, false));
        // Centring on the fly finds the same lag as centring first.
        let shifted: Vec<f64> = c.iter().map(|v| v + 400.0).collect();
        let on_the_fly = Centred {
            x: &shifted,
            centre: 400.0,
        };
        let again = find_lag(
            wc,
            on_the_fly,
            -10,
            10,
            0,
            LagMethod::CovarianceMaxWithDefault,
            s,
        );
        assert_eq!(again, out);
    }
}
