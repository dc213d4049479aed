//! Sample screening before any statistics: diagnostics, absolute limits, missing samples.
//!
//! A rejected sample becomes NaN, the same as a sample the logger never delivered, so the 10 %
//! rule counts both. Once a variable passes that rule its gaps are bridged by linear interpolation:
//! every later step (despiking windows, rotation, lag search, detrending, spectra) then works on
//! contiguous buffers without per-sample branches. With at most 10 % bridged the covariances change
//! by far less than their random error; the number of bridged samples is reported.

use super::config::DiagRule;

/// Copies an f32 column into `dst` as f64 applying `value * scale + offset`; NaN stays NaN.
/// `dst` keeps its capacity between periods, so a reused workspace does not allocate.
pub fn load(dst: &mut Vec<f64>, src: &[f32], scale: f64, offset: f64) {
    dst.clear();
    dst.extend(src.iter().map(|&x| x as f64 * scale + offset));
}

/// Bad-sample mask of a diagnostic column (1 = bad), computed once and shared by the variables
/// the diagnostic covers. `mask` keeps its capacity between periods.
pub fn diag_mask(mask: &mut Vec<u8>, diag: &[f32], rule: DiagRule) {
    mask.clear();
    mask.extend(diag.iter().map(move |&f| u8::from(rule.is_bad(f))));
}

/// [`load`], limits and a diagnostic mask: `dst[i] = src[i] * scale`, or NaN when the value is
/// missing, outside `lo..=hi`, or flagged in `bad`. Returns the number of missing samples.
/// One pass without branches (a select and a counter), so that it vectorises: the conversion is
/// bound by writing `dst`, and separate passes for the mask and the count re-read it. Inlined so
/// that the pipeline's AVX2 build handles four samples per instruction.
#[inline(always)]
pub fn load_screened(
    dst: &mut Vec<f64>,
    src: &[f32],
    scale: f64,
    (lo, hi): (f64, f64),
    bad: Option<&[u8]>,
) -> usize {
    dst.clear();
    let mut missing = 0usize;
    let mut screen = |x: f32, flagged: bool| {
        let v = x as f64 * scale;
        // NaN fails both comparisons.
        let ok = (v >= lo) & (v <= hi) & !flagged;
        missing += usize::from(!ok);
        if ok { v } else { f64::NAN }
    };
    match bad {
        None => dst.extend(src.iter().map(|&x| screen(x, false))),
        Some(bad) if bad.len() == src.len() => {
            dst.extend(src.iter().zip(bad).map(|(&x, &b)| screen(x, b != 0)));
        }
        Some(bad) => {
            // Mismatched lengths (not produced by the pipeline): flag what the mask covers.
            dst.extend(src.iter().map(|&x| screen(x, false)));
            for (x, &b) in dst.iter_mut().zip(bad) {
                if b != 0 {
                    *x = f64::NAN;
                }
            }
            return count_missing(dst);
        }
    }
    missing
}

/// Marks samples whose diagnostic word is bad as missing. Returns how many valid samples it removed.
pub fn apply_diag(dst: &mut [f64], diag: &[f32], rule: DiagRule) -> usize {
    if rule == DiagRule::Ignore {
        return 0;
    }
    let mut removed = 0;
    for (x, &d) in dst.iter_mut().zip(diag) {
        if rule.is_bad(d) && !x.is_nan() {
            *x = f64::NAN;
            removed += 1;
        }
    }
    removed
}

/// Marks samples outside `lo..=hi` (and infinities) as missing. Returns how many valid samples it removed.
pub fn apply_limits(dst: &mut [f64], lo: f64, hi: f64) -> usize {
    let mut removed = 0;
    for x in dst.iter_mut() {
        if !(x.is_nan() || (lo..=hi).contains(x)) {
            *x = f64::NAN;
            removed += 1;
        }
    }
    removed
}

pub fn count_missing(x: &[f64]) -> usize {
    x.iter().map(|v| usize::from(v.is_nan())).sum()
}

/// Mean of the finite samples, NaN when there is none.
///
/// Eight partial sums (see [`finite_sum`]) instead of one dependent chain of additions. For
/// columns that arrived as float32 the order does not even matter: the samples are float32 values
/// of similar magnitude, whose sum an f64 holds exactly.
pub fn finite_mean(x: &[f64]) -> f64 {
    let (s, n) = finite_sum(x);
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Mean of the finite samples of an f32 column, NaN when there is none. As [`finite_mean`].
pub fn finite_mean_f32(x: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `avx2::finite_sum_f32` is compiled with.
            let (s, n) = unsafe { avx2::finite_sum_f32(x) };
            return if n == 0 { f64::NAN } else { s / n as f64 };
        }
    }
    let (s, n) = finite_sum_portable(x.iter().map(|&v| v as f64), x.len());
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Sum and count of the finite values of `x`.
#[inline]
fn finite_sum(x: &[f64]) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `avx2::finite_sum` is compiled with.
            return unsafe { avx2::finite_sum(x) };
        }
    }
    finite_sum_portable(x.iter().copied(), x.len())
}

/// Eight partial sums (lane `i % 8`) combined as `((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 +
/// s7))`, the values after the last full group of eight summed in order and added last. The AVX2
/// code keeps the same lanes and order, so both give bit-identical results.
#[inline(always)]
fn finite_sum_portable(values: impl Iterator<Item = f64>, len: usize) -> (f64, usize) {
    let body = len / 8 * 8;
    let (mut lanes, mut tail, mut n) = ([0.0f64; 8], 0.0f64, 0usize);
    for (i, v) in values.enumerate() {
        if v.is_finite() {
            if i < body {
                lanes[i % 8] += v;
            } else {
                tail += v;
            }
            n += 1;
        }
    }
    let s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    (s + tail, n)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256d, _CMP_LT_OQ, _mm_add_sd, _mm_cvtsd_f64, _mm_loadu_ps, _mm256_add_pd, _mm256_and_pd,
        _mm256_andnot_pd, _mm256_castpd256_pd128, _mm256_cmp_pd, _mm256_cvtps_pd,
        _mm256_extractf128_pd, _mm256_hadd_pd, _mm256_loadu_pd, _mm256_movemask_pd, _mm256_set1_pd,
        _mm256_setzero_pd,
    };

    /// Adds the finite lanes of `v` to `acc`; returns how many there were.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn add_finite(acc: &mut __m256d, v: __m256d) -> usize {
        let magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
        // NaN and infinity fail the comparison.
        let finite = _mm256_cmp_pd::<_CMP_LT_OQ>(magnitude, _mm256_set1_pd(f64::INFINITY));
        // Masked lanes add +0.0, which leaves a partial sum (never -0.0) unchanged.
        *acc = _mm256_add_pd(*acc, _mm256_and_pd(finite, v));
        _mm256_movemask_pd(finite).count_ones() as usize
    }

    /// `((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))` of the lanes of `lo` and `hi`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn reduce(lo: __m256d, hi: __m256d) -> f64 {
        let h = _mm256_hadd_pd(_mm256_add_pd(lo, hi), _mm256_setzero_pd());
        _mm_cvtsd_f64(_mm_add_sd(
            _mm256_castpd256_pd128(h),
            _mm256_extractf128_pd::<1>(h),
        ))
    }

    /// [`super::finite_sum_portable`] of an f64 series.
    #[target_feature(enable = "avx2")]
    pub(super) fn finite_sum(x: &[f64]) -> (f64, usize) {
        let body = x.len() / 8 * 8;
        let (mut lo, mut hi, mut n) = (_mm256_setzero_pd(), _mm256_setzero_pd(), 0usize);
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= x.len().
            let (a, b) = unsafe {
                (
                    _mm256_loadu_pd(x.as_ptr().add(i)),
                    _mm256_loadu_pd(x.as_ptr().add(i + 4)),
                )
            };
            n += add_finite(&mut lo, a) + add_finite(&mut hi, b);
            i += 8;
        }
        let mut tail = 0.0;
        for &v in &x[body..] {
            if v.is_finite() {
                tail += v;
                n += 1;
            }
        }
        (reduce(lo, hi) + tail, n)
    }

    /// [`super::finite_sum_portable`] of an f32 column.
    #[target_feature(enable = "avx2")]
    pub(super) fn finite_sum_f32(x: &[f32]) -> (f64, usize) {
        let body = x.len() / 8 * 8;
        let (mut lo, mut hi, mut n) = (_mm256_setzero_pd(), _mm256_setzero_pd(), 0usize);
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= x.len().
            let (a, b) = unsafe {
                (
                    _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i))),
                    _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i + 4))),
                )
            };
            n += add_finite(&mut lo, a) + add_finite(&mut hi, b);
            i += 8;
        }
        let mut tail = 0.0;
        for &v in &x[body..] {
            if v.is_finite() {
                tail += v as f64;
                n += 1;
            }
        }
        (reduce(lo, hi) + tail, n)
    }
}

/// Bridges NaN runs by linear interpolation between their valid neighbours; leading and trailing
/// runs take the nearest valid value. Returns false (and leaves `x` untouched) if no sample is valid.
pub fn fill_gaps(x: &mut [f64]) -> bool {
    let Some(first) = x.iter().position(|v| !v.is_nan()) else {
        return false;
    };
    let v0 = x[first];
    x[..first].fill(v0);
    let mut last_valid = first;
    let mut i = first + 1;
    while i < x.len() {
        if x[i].is_nan() {
            let start = i;
            while i < x.len() && x[i].is_nan() {
                i += 1;
            }
            let a = x[last_valid];
            if i == x.len() {
                x[start..].fill(a);
                break;
            }
            let b = x[i];
            let span = (i - last_valid) as f64;
            for (k, v) in x[start..i].iter_mut().enumerate() {
                let t = (start + k - last_valid) as f64 / span;
                *v = a + (b - a) * t;
            }
        }
        last_valid = i;
        i += 1;
    }
    true
}

/// True when every sample has the same value: a frozen sensor, no turbulence information.
pub fn is_constant(x: &[f64]) -> bool {
    match x.first() {
        None => true,
        Some(&a) => x.iter().all(|&v| v == a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screening_counts_and_finite_means_agree_with_plain_loops_in_both_paths() {
        for n in 0..40usize {
            let raw: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    3 => f32::NAN,
                    5 => 1e6,
                    6 => f32::INFINITY,
                    _ => 300.0 + (i as f32 * 0.37).sin(),
                })
                .collect();
            let bad: Vec<u8> = (0..n).map(|i| u8::from(i % 11 == 4)).collect();
            for mask in [None, Some(bad.as_slice())] {
                let mut x = Vec::new();
                let missing = load_screened(&mut x, &raw, 1.0, (200.0, 400.0), mask);
                assert_eq!(missing, count_missing(&x), "n {n}");
                for (i, (&v, &r)) in x.iter().zip(&raw).enumerate() {
                    let ok = (200.0..=400.0).contains(&r) && mask.is_none_or(|b| b[i] == 0);
                    assert_eq!(v.to_bits(), if ok { r as f64 } else { f64::NAN }.to_bits());
                }
            }
            let with_inf: Vec<f64> = raw.iter().map(|&v| v as f64).collect();
            let (plain, k) = with_inf
                .iter()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, k), v| (s + v, k + 1));
            let portable = finite_sum_portable(with_inf.iter().copied(), n);
            assert_eq!(portable.1, k);
            assert!((portable.0 - plain).abs() <= 1e-9 * plain.abs());
            // Vector paths: bit-identical to the portable code.
            assert_eq!(finite_sum(&with_inf), portable);
            let mean32 = finite_mean_f32(&raw);
            let expected = if k == 0 {
                f64::NAN
            } else {
                portable.0 / k as f64
            };
            assert_eq!(mean32.to_bits(), expected.to_bits(), "n {n}");
        }
    }

    #[test]
    fn gaps_are_bridged_linearly_and_edges_held() {
        let n = f64::NAN;
        let mut x = [n, 1.0, n, n, 4.0, n];
        assert!(fill_gaps(&mut x));
        assert_eq!(x, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        let mut all = [n, n];
        assert!(!fill_gaps(&mut all));
    }

    #[test]
    fn limits_and_diagnostics_count_only_newly_removed_samples() {
        let mut x = [1.0, f64::NAN, 50.0, -3.0];
        assert_eq!(apply_limits(&mut x, -2.0, 10.0), 2);
        assert_eq!(count_missing(&x), 3);
        let mut y = [1.0, 2.0, 3.0];
        let diag = [0.0, 4096.0, f32::NAN];
        assert_eq!(apply_diag(&mut y, &diag, DiagRule::CSAT3), 1);
        assert!(y[1].is_nan() && y[2] == 3.0);
        let mut z = [1.0, 2.0];
        assert_eq!(apply_diag(&mut z, &[8191.0, 8175.0], DiagRule::LI7200), 1);
        assert!(z[0] == 1.0 && z[1].is_nan());
    }
}
