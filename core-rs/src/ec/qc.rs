//! Quality flags: steady state and integral turbulence characteristics (Foken & Wichura 1996,
//! Foken et al. 2004), combined into the 0/1/2 system of Mauder & Foken (2004).
//!
//! Eddy covariance assumes a stationary, fully developed turbulent flow. The steady-state test
//! compares the mean of sub-period covariances with the whole-period covariance; a trend or a
//! sudden change makes them differ. The ITC test compares the normalised standard deviation of a
//! wind component with its surface-layer similarity value; large departures mean the turbulence is
//! not the kind the flux formulae describe. Both deviations (percent) are graded into classes 1-9
//! and the worse class decides: 0 = high quality, 1 = usable for budgets, 2 = discard.

/// Class 1..9 of a relative deviation in percent (Foken et al. 2004, Table 9.3/9.4).
pub fn class_of(deviation_percent: f64) -> u8 {
    if !deviation_percent.is_finite() {
        return 9;
    }
    const BOUNDS: [f64; 8] = [15.0, 30.0, 50.0, 75.0, 100.0, 250.0, 500.0, 1000.0];
    1 + BOUNDS
        .iter()
        .take_while(|&&b| deviation_percent > b)
        .count() as u8
}

/// Mauder & Foken (2004) flag from the steady-state and ITC classes.
pub fn mauder_foken_flag(ss_class: u8, itc_class: u8) -> u8 {
    if ss_class <= 2 && itc_class <= 2 {
        0
    } else if ss_class <= 5 && itc_class <= 5 {
        1
    } else {
        2
    }
}

/// Steady-state deviation (percent) of the covariance of two fluctuation series: mean of
/// `k` sub-period covariances (each with its own means) against the whole-period covariance.
pub fn steady_state_deviation(x: &[f64], y: &[f64], k: usize) -> f64 {
    let n = x.len().min(y.len());
    if n < k || k == 0 {
        return f64::NAN;
    }
    steady_state_from_sums((0..k).map(|j| {
        let (lo, hi) = (j * n / k, (j + 1) * n / k);
        let (mut sx, mut sy, mut sxy) = (0.0, 0.0, 0.0);
        for (&a, &b) in x[lo..hi].iter().zip(&y[lo..hi]) {
            sx += a;
            sy += b;
            sxy += a * b;
        }
        (hi - lo, sx, sy, sxy)
    }))
}

/// [`steady_state_deviation`] from the sums of each sub-period in order: (samples, sum x, sum y,
/// sum x y). The pipeline gets these sums from the same pass as the covariances
/// ([`super::stats::pair_sums`]); the whole period's sums are their totals.
pub fn steady_state_from_sums(
    sub_periods: impl IntoIterator<Item = (usize, f64, f64, f64)>,
) -> f64 {
    let (mut tx, mut ty, mut txy) = (0.0, 0.0, 0.0);
    let (mut acc, mut n, mut k) = (0.0, 0usize, 0usize);
    for (count, sx, sy, sxy) in sub_periods {
        let m = count as f64;
        acc += sxy / m - (sx / m) * (sy / m);
        tx += sx;
        ty += sy;
        txy += sxy;
        n += count;
        k += 1;
    }
    if k == 0 || n == 0 {
        return f64::NAN;
    }
    let nf = n as f64;
    let whole = txy / nf - (tx / nf) * (ty / nf);
    let sub = acc / k as f64;
    if whole == 0.0 {
        return f64::INFINITY;
    }
    100.0 * ((sub - whole) / whole).abs()
}

/// Coriolis parameter, s-1.
pub fn coriolis(latitude_deg: f64) -> f64 {
    2.0 * 7.2921e-5 * latitude_deg.to_radians().sin()
}

/// Similarity value of sigma_w / u* (Foken et al. 2004; neutral range after Thomas & Foken 2002,
/// with z+ = 1 m). Stable conditions use the neutral form, the models have no stable branch.
pub fn model_sigma_w(zl: f64, f_coriolis: f64, ustar: f64) -> f64 {
    if zl < -0.2 {
        2.0 * (-zl).powf(0.125)
    } else {
        0.21 * (f_coriolis.abs() / ustar).ln() + 3.1
    }
}

/// Similarity value of sigma_u / u*, as [`model_sigma_w`].
pub fn model_sigma_u(zl: f64, f_coriolis: f64, ustar: f64) -> f64 {
    if zl < -0.2 {
        4.15 * (-zl).powf(0.125)
    } else {
        0.44 * (f_coriolis.abs() / ustar).ln() + 6.3
    }
}

/// Similarity value of sigma_T / |T*| (Foken et al. 2004); undefined near neutral (|z/L| < 0.02).
pub fn model_sigma_t(zl: f64) -> f64 {
    let a = zl.abs();
    if a < 0.02 {
        f64::NAN
    } else if zl > 0.0 {
        1.4 * a.powf(-0.25)
    } else if a < 0.062 {
        0.5 * a.powf(-0.5)
    } else if a < 1.0 {
        a.powf(-0.25)
    } else {
        a.powf(-1.0 / 3.0)
    }
}

/// ITC deviation in percent of a measured normalised standard deviation from its model.
pub fn itc_deviation(measured: f64, model: f64) -> f64 {
    if !(measured.is_finite() && model.is_finite()) || model == 0.0 {
        return f64::NAN;
    }
    100.0 * ((model - measured) / model).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_flags_follow_the_published_tables() {
        assert_eq!(class_of(0.0), 1);
        assert_eq!(class_of(15.0), 1);
        assert_eq!(class_of(15.1), 2);
        assert_eq!(class_of(99.0), 5);
        assert_eq!(class_of(2000.0), 9);
        assert_eq!(class_of(f64::NAN), 9);
        assert_eq!(mauder_foken_flag(1, 2), 0);
        assert_eq!(mauder_foken_flag(3, 1), 1);
        assert_eq!(mauder_foken_flag(2, 6), 2);
    }

    #[test]
    fn a_stationary_series_passes_and_a_changing_one_fails() {
        let n = 6000;
        let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 17) as f64 - 8.0).collect();
        assert!(steady_state_deviation(&x, &x, 6) < 5.0);
        // A shared slow ramp adds covariance to the whole period that no sub-period sees.
        let ramp = |i: usize| 10.0 * i as f64 / n as f64;
        let a: Vec<f64> = x.iter().enumerate().map(|(i, &v)| v + ramp(i)).collect();
        let b: Vec<f64> = (0..n)
            .map(|i| ((i * 53) % 13) as f64 - 6.0 + ramp(i))
            .collect();
        assert!(steady_state_deviation(&a, &b, 6) > 50.0);
    }
}
