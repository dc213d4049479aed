//! Sums, means and dot products over contiguous f64 buffers.
//!
//! Everything in a period is a sum over tens of thousands of samples, many of them (the lag search,
//! the random-error correlation functions) repeated for dozens of offsets. The loops here keep
//! eight independent accumulators so the compiler can use SIMD lanes without being allowed to
//! reorder a single floating-point sum, and they take slices so bounds checks are hoisted.

/// Sum of `a[i] * b[i]` over the common length.
///
/// Dispatches at run time to an AVX2+FMA build of the same loop when the CPU has it (the crate
/// is compiled for baseline x86-64, which only has SSE2): the lag search and the random-error
/// correlation functions are hundreds of these per period.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `dot_avx2_fma` is compiled with.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2_fma(a: &[f64], b: &[f64]) -> f64 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd,
        _mm256_storeu_pd,
    };
    let n = a.len().min(b.len());
    let blocks = n / 16;
    let mut acc: [__m256d; 4] = [_mm256_setzero_pd(); 4];
    for blk in 0..blocks {
        for (k, acc_k) in acc.iter_mut().enumerate() {
            let i = blk * 16 + 4 * k;
            // SAFETY: i + 3 < 16 * blocks <= n, inside both slices; unaligned loads are allowed.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_pd(a.as_ptr().add(i)),
                    _mm256_loadu_pd(b.as_ptr().add(i)),
                )
            };
            *acc_k = _mm256_fmadd_pd(x, y, *acc_k);
        }
    }
    let s = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds exactly four f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), s) };
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for i in 16 * blocks..n {
        total += a[i] * b[i];
    }
    total
}

/// Portable version: four independent accumulators, vectorisable without reassociating any
/// single sum.
#[inline(always)]
fn dot_portable(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let ra = ca.remainder();
    let rb = cb.remainder();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// `out[k] = sum_i a[i] * b[i + lag]` over the overlap of the two series, for every
/// `lag = lo + k` (`out.len()` lags). Negative lags pair `a[i - lag]` with `b[i]`.
///
/// Evaluating lag after lag would stream both series from memory once per lag; here the series
/// are walked in blocks that stay in the L1/L2 cache while every lag takes its share of the
/// block, so memory is read about once whatever the number of lags.
pub fn lagged_dots(a: &[f64], b: &[f64], lo: i64, out: &mut [f64]) {
    const BLOCK: usize = 2048;
    let n = a.len().min(b.len()) as i64;
    out.fill(0.0);
    let mut start = 0i64;
    while start < n {
        let end = (start + BLOCK as i64).min(n);
        for (k, acc) in out.iter_mut().enumerate() {
            let lag = lo + k as i64;
            // Indices i of `a` in this block whose partner i + lag lies inside `b`.
            let i0 = start.max(-lag);
            let i1 = end.min(n - lag);
            if i1 > i0 {
                let (i0, i1) = (i0 as usize, i1 as usize);
                let j0 = (i0 as i64 + lag) as usize;
                *acc += dot(&a[i0..i1], &b[j0..j0 + (i1 - i0)]);
            }
        }
        start = end;
    }
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
    fn lagged_dots_match_one_dot_per_lag() {
        let a: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut out = vec![0.0; 21];
        lagged_dots(&a, &b, -10, &mut out);
        for (k, got) in out.iter().enumerate() {
            let lag = k as i64 - 10;
            let l = lag.unsigned_abs() as usize;
            let want = if lag >= 0 {
                dot(&a[..5000 - l], &b[l..])
            } else {
                dot(&a[l..], &b[..5000 - l])
            };
            assert!((got - want).abs() < 1e-9, "lag {lag}");
        }
    }

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
