//! Sums, means and dot products over contiguous f64 buffers.
//!
//! Everything in a period is a sum over tens of thousands of samples, many of them (the lag search,
//! the random-error correlation functions) repeated for dozens of offsets. The loops here keep
//! eight independent accumulators so the compiler can use SIMD lanes without being allowed to
//! reorder a single floating-point sum, and they take slices so bounds checks are hoisted.

/// Sum of `a[i] * b[i]`. Lengths must match.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let ra = ca.remainder();
    let rb = cb.remainder();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Sum of the elements.
#[inline]
pub fn sum(a: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let c = a.chunks_exact(8);
    let r = c.remainder();
    for x in c {
        for k in 0..8 {
            acc[k] += x[k];
        }
    }
    let tail: f64 = r.iter().sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Arithmetic mean; NaN for an empty slice.
#[inline]
pub fn mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        f64::NAN
    } else {
        sum(a) / a.len() as f64
    }
}

/// Covariance of two already-centred series (divides by N, as EddyPro does).
#[inline]
pub fn cov_centred(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() {
        f64::NAN
    } else {
        dot(a, b) / a.len() as f64
    }
}

/// Third and fourth standardised moments of a centred series.
pub fn skewness_kurtosis(a: &[f64]) -> (f64, f64) {
    let n = a.len() as f64;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in a {
        let x2 = x * x;
        m2 += x2;
        m3 += x2 * x;
        m4 += x2 * x2;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    if m2 > 0.0 {
        (m3 / m2.powf(1.5), m4 / (m2 * m2))
    } else {
        (f64::NAN, f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_sum_match_naive_loops_for_every_remainder() {
        for n in 0..40 {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-12);
            let s: f64 = a.iter().sum();
            assert!((sum(&a) - s).abs() < 1e-12);
        }
        assert!(mean(&[]).is_nan());
    }
}
