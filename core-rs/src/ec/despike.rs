//! Spike removal after Vickers & Mahrt (1997), with EddyPro's windowing.
//!
//! A spike is a short burst (at most `max_consecutive` samples) beyond `k` standard deviations of
//! a moving window around it. Longer excursions are kept: a plume or a ramp is real signal and
//! removing it would bias the flux. The window advances in steps; each step's samples are judged
//! against the statistics of the window centred on that step (clamped inside the period), so a
//! sample is tested once per pass. Spikes are replaced by linear interpolation between their
//! neighbours and the pass is repeated with `k` raised by `threshold_increment`, because removing
//! the largest spikes shrinks the standard deviation and would otherwise let the next pass eat
//! into the ordinary tails of the distribution. Passes stop when one finds nothing.
//!
//! Cost: only the first pass reads the series (window sums sliding with the steps, and each
//! step's range); later passes work from a per-step table that the replaced samples update, see
//! [`despike_with`].

/// Settings of one variable's despiking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DespikeParams {
    pub window: usize,
    pub step: usize,
    pub max_consecutive: usize,
    pub max_passes: usize,
    pub sigma: f64,
    pub threshold_increment: f64,
}

/// An outlier found by a pass: sample index and side (+1 above, -1 below the window mean).
pub type Outlier = (u32, i8);

/// Reusable buffers of [`despike_with`]; keep one per worker (the [`super::Workspace`] does) so
/// that despiking allocates nothing per period.
#[derive(Debug, Default)]
pub struct DespikeScratch {
    /// Outliers found by the current pass, in index order.
    outliers: Vec<Outlier>,
    /// One entry per step of the moving window.
    steps: Vec<StepStats>,
    /// Samples the last pass replaced, with their previous values, in index order.
    changed: Vec<(u32, f64)>,
}

/// What a pass needs to know about one step: its window's sums and its own samples' range.
#[derive(Clone, Copy, Debug, Default)]
struct StepStats {
    /// First sample of the step's window (it is `window` samples long).
    wlo: usize,
    /// Sums of `x - reference` and `(x - reference)^2` over the window.
    s1: f64,
    s2: f64,
    /// Smallest and largest sample of the step's own block.
    min: f64,
    max: f64,
}

/// Removes spikes from `x` in place and returns how many samples were replaced.
/// `scratch` collects the (rare) outliers of a pass. Convenience form of [`despike_with`], which
/// also reuses the per-step table: this one allocates it on every call.
/// `x` must not contain NaN (fill gaps first).
pub fn despike(x: &mut [f64], p: &DespikeParams, scratch: &mut Vec<Outlier>) -> usize {
    let mut s = DespikeScratch {
        outliers: std::mem::take(scratch),
        ..DespikeScratch::default()
    };
    let count = despike_with(x, p, &mut s);
    *scratch = s.outliers;
    count
}

/// Removes spikes from `x` in place and returns how many samples were replaced, reusing
/// `scratch`'s buffers. `x` must not contain NaN (fill gaps first).
///
/// Only the first pass reads the whole series. It stores, per step, the window sums and the
/// range of the step's block. A pass changes only the few samples it replaces, so the next
/// pass updates the sums of the windows that contain them (about `window / step` windows per
/// sample) and the ranges of their blocks, then judges every step from the table: a block is
/// read again only when its range reaches beyond the step's limit, which it does for the blocks
/// holding outliers. The outliers found are the same as when every pass recomputes every window:
/// the statistics agree to rounding (see [`update_steps`]).
pub fn despike_with(x: &mut [f64], p: &DespikeParams, scratch: &mut DespikeScratch) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `despike_avx2` is compiled with.
            return unsafe { despike_avx2(x, p, scratch) };
        }
    }
    despike_impl(x, p, scratch, Portable)
}

/// The same code with the AVX2 kernels (the crate's baseline is SSE2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn despike_avx2(x: &mut [f64], p: &DespikeParams, scratch: &mut DespikeScratch) -> usize {
    despike_impl(x, p, scratch, Avx2(()))
}

/// The two loops that read every sample of the first pass.
trait Kernels: Copy {
    /// Sums of `x - r` and `(x - r)^2`.
    fn centred_sums(self, x: &[f64], r: f64) -> (f64, f64);
    /// Smallest and largest element (`(inf, -inf)` when empty).
    fn min_max(self, x: &[f64]) -> (f64, f64);
}

/// Plain Rust, any target.
#[derive(Clone, Copy)]
struct Portable;

impl Kernels for Portable {
    #[inline(always)]
    fn centred_sums(self, x: &[f64], r: f64) -> (f64, f64) {
        centred_sums(x, r)
    }

    #[inline(always)]
    fn min_max(self, x: &[f64]) -> (f64, f64) {
        min_max(x)
    }
}

/// AVX2 intrinsics. Only [`despike_avx2`] (entered after run-time detection) constructs it, so
/// holding one proves the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx2 {
    #[inline(always)]
    fn centred_sums(self, x: &[f64], r: f64) -> (f64, f64) {
        // SAFETY: an `Avx2` value exists only after AVX2 was detected (see the type).
        unsafe { avx2::centred_sums(x, r) }
    }

    #[inline(always)]
    fn min_max(self, x: &[f64]) -> (f64, f64) {
        // SAFETY: as above.
        unsafe { avx2::min_max(x) }
    }
}

#[inline(always)]
fn despike_impl<K: Kernels>(
    x: &mut [f64],
    p: &DespikeParams,
    s: &mut DespikeScratch,
    k: K,
) -> usize {
    let n = x.len();
    if n < 3 || p.step == 0 || p.max_consecutive == 0 || p.max_passes == 0 {
        return 0;
    }
    let window = p.window.clamp(2, n);
    // Sums relative to a reference value keep the variance free of cancellation for signals with a
    // large mean (CO2 in ppm, temperature in K).
    let reference = x[0];
    first_pass_steps(x, window, p.step, reference, &mut s.steps, k);
    let mut total = 0;
    let mut sigma = p.sigma;
    for pass in 0..p.max_passes {
        s.outliers.clear();
        mark_outliers(
            x,
            &s.steps,
            window,
            p.step,
            sigma,
            reference,
            &mut s.outliers,
        );
        s.changed.clear();
        let replaced = replace_short_runs(x, &s.outliers, p.max_consecutive, &mut s.changed);
        if replaced == 0 {
            break;
        }
        total += replaced;
        sigma += p.threshold_increment;
        if pass + 1 < p.max_passes {
            update_steps(x, &mut s.steps, &s.changed, window, p.step, reference, k);
        }
    }
    total
}

/// Fills `steps` with every step's window and block statistics.
#[inline(always)]
fn first_pass_steps<K: Kernels>(
    x: &[f64],
    window: usize,
    step: usize,
    reference: f64,
    steps: &mut Vec<StepStats>,
    k: K,
) {
    let n = x.len();
    steps.clear();
    let (mut lo, mut hi) = (0usize, 0usize);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let centre = (start + end) / 2;
        let wlo = centre.saturating_sub(window / 2).min(n - window);
        let whi = wlo + window;
        // Windows only move forward, so the sums are updated incrementally (or restarted when a
        // window shorter than the step leaves no overlap). Each sample enters and leaves once; the
        // rounding this accumulates is a few ulps of the largest partial sum.
        if wlo >= hi {
            (s1, s2, lo, hi) = (0.0, 0.0, wlo, wlo);
        }
        let (a1, a2) = k.centred_sums(&x[hi..whi], reference);
        let (r1, r2) = k.centred_sums(&x[lo..wlo], reference);
        s1 += a1 - r1;
        s2 += a2 - r2;
        (lo, hi) = (wlo, whi);
        let (min, max) = k.min_max(&x[start..end]);
        steps.push(StepStats {
            wlo,
            s1,
            s2,
            min,
            max,
        });
        start = end;
    }
}

/// Brings the table up to date after a pass replaced the samples in `changed` (index, old value).
///
/// Every window holding a replaced sample gets the difference of its terms added to its sums.
/// Why that is as good as summing the window again: the update adds the same kind of rounding the
/// first pass's sliding sums already carry (each of their samples entered and left once), a few
/// ulps of the terms involved. The decisions compare `|x - mean|` with `k` standard deviations and
/// would only differ for a sample within ~1e-15 (relative) of its limit.
/// The ranges of the blocks holding replaced samples are recomputed exactly.
#[inline(always)]
fn update_steps<K: Kernels>(
    x: &[f64],
    steps: &mut [StepStats],
    changed: &[(u32, f64)],
    window: usize,
    step: usize,
    reference: f64,
    k: K,
) {
    for &(i, old) in changed {
        let i = i as usize;
        let (d_old, d_new) = (old - reference, x[i] - reference);
        let (e1, e2) = (d_new - d_old, d_new * d_new - d_old * d_old);
        // Window starts and ends both grow with the step, so the windows holding `i` are a
        // contiguous run of steps.
        let j0 = steps.partition_point(|s| s.wlo + window <= i);
        let j1 = steps.partition_point(|s| s.wlo <= i);
        for st in &mut steps[j0..j1] {
            st.s1 += e1;
            st.s2 += e2;
        }
    }
    let n = x.len();
    let mut last = usize::MAX;
    for &(i, _) in changed {
        let j = i as usize / step;
        if j != last {
            let start = j * step;
            (steps[j].min, steps[j].max) = k.min_max(&x[start..(start + step).min(n)]);
            last = j;
        }
    }
}

/// Collects the samples beyond mean +/- k sd of their step's window, in index order.
#[inline(always)]
fn mark_outliers(
    x: &[f64],
    steps: &[StepStats],
    window: usize,
    step: usize,
    k: f64,
    reference: f64,
    out: &mut Vec<Outlier>,
) {
    let n = x.len();
    for (j, st) in steps.iter().enumerate() {
        let start = j * step;
        let end = (start + step).min(n);
        let m = st.s1 / window as f64;
        let var = (st.s2 / window as f64 - m * m).max(0.0);
        let limit = k * var.sqrt();
        let centre_value = reference + m;
        // Most steps hold no outlier: the block's range decides whether to look closer.
        if st.max - centre_value > limit || centre_value - st.min > limit {
            for (i, &v) in x[start..end].iter().enumerate() {
                let d = v - centre_value;
                if d.abs() > limit {
                    out.push(((start + i) as u32, if d > 0.0 { 1 } else { -1 }));
                }
            }
        }
    }
}

/// Lanes of the centred sums: two AVX2 registers. The portable code keeps the same eight partial
/// sums and combines them in the same order, so both paths give bit-identical results.
const LANES: usize = 8;

/// Sums of `x - r` and `(x - r)^2` with eight independent partial sums (fixed order).
#[inline(always)]
fn centred_sums(x: &[f64], r: f64) -> (f64, f64) {
    let mut s1 = [0.0f64; LANES];
    let mut s2 = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let d = c[k] - r;
            s1[k] += d;
            s2[k] += d * d;
        }
    }
    let (mut t1, mut t2) = (reduce_lanes(&s1), reduce_lanes(&s2));
    for &v in rest {
        let d = v - r;
        t1 += d;
        t2 += d * d;
    }
    (t1, t2)
}

/// `((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))`: the order of the AVX2 reduction.
#[inline(always)]
fn reduce_lanes(s: &[f64; LANES]) -> f64 {
    let q = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// Smallest and largest element. Plain comparisons: the series holds no NaN.
#[inline(always)]
fn min_max(x: &[f64]) -> (f64, f64) {
    x.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (if v < a { v } else { a }, if v > b { v } else { b })
        })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::{
        __m256d, _mm_add_pd, _mm_add_sd, _mm_cvtsd_f64, _mm_unpackhi_pd, _mm256_add_pd,
        _mm256_castpd256_pd128, _mm256_extractf128_pd, _mm256_loadu_pd, _mm256_max_pd,
        _mm256_min_pd, _mm256_mul_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_sub_pd,
    };

    /// `(l0 + l2) + (l1 + l3)` of one register.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum(q: __m256d) -> f64 {
        let h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd::<1>(q));
        _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)))
    }

    /// [`super::centred_sums`] with lanes 0-3 in one register and 4-7 in another; no FMA, so
    /// every operation rounds as in the portable code.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn centred_sums(x: &[f64], r: f64) -> (f64, f64) {
        let body = x.len() / LANES * LANES;
        let rv = _mm256_set1_pd(r);
        let (mut a1, mut b1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut a2, mut b2) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let p = x.as_ptr();
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= x.len(); unaligned loads are allowed.
            let (u, v) = unsafe { (_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(p.add(i + 4))) };
            let (du, dv) = (_mm256_sub_pd(u, rv), _mm256_sub_pd(v, rv));
            a1 = _mm256_add_pd(a1, du);
            b1 = _mm256_add_pd(b1, dv);
            a2 = _mm256_add_pd(a2, _mm256_mul_pd(du, du));
            b2 = _mm256_add_pd(b2, _mm256_mul_pd(dv, dv));
            i += LANES;
        }
        let mut t1 = hsum(_mm256_add_pd(a1, b1));
        let mut t2 = hsum(_mm256_add_pd(a2, b2));
        for &v in &x[body..] {
            let d = v - r;
            t1 += d;
            t2 += d * d;
        }
        (t1, t2)
    }

    /// [`super::min_max`]: min and max are exact, so the order does not matter.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn min_max(x: &[f64]) -> (f64, f64) {
        let body = x.len() / 8 * 8;
        let p = x.as_ptr();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        if body > 0 {
            let (mut lo_a, mut lo_b) = (_mm256_set1_pd(lo), _mm256_set1_pd(lo));
            let (mut hi_a, mut hi_b) = (_mm256_set1_pd(hi), _mm256_set1_pd(hi));
            let mut i = 0;
            while i < body {
                // SAFETY: i + 8 <= body <= x.len().
                let (u, v) = unsafe { (_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(p.add(i + 4))) };
                lo_a = _mm256_min_pd(lo_a, u);
                lo_b = _mm256_min_pd(lo_b, v);
                hi_a = _mm256_max_pd(hi_a, u);
                hi_b = _mm256_max_pd(hi_b, v);
                i += 8;
            }
            let (mut l, mut h) = ([0.0f64; 4], [0.0f64; 4]);
            // SAFETY: both arrays hold four f64.
            unsafe {
                use std::arch::x86_64::_mm256_storeu_pd;
                _mm256_storeu_pd(l.as_mut_ptr(), _mm256_min_pd(lo_a, lo_b));
                _mm256_storeu_pd(h.as_mut_ptr(), _mm256_max_pd(hi_a, hi_b));
            }
            lo = l[0].min(l[1]).min(l[2].min(l[3]));
            hi = h[0].max(h[1]).max(h[2].max(h[3]));
        }
        for &v in &x[body..] {
            lo = if v < lo { v } else { lo };
            hi = if v > hi { v } else { hi };
        }
        (lo, hi)
    }
}

/// Replaces runs of consecutive same-side outliers no longer than `max_run` by linear
/// interpolation between the samples just outside the run. Appends each replaced sample with its
/// previous value to `changed`.
fn replace_short_runs(
    x: &mut [f64],
    outliers: &[Outlier],
    max_run: usize,
    changed: &mut Vec<(u32, f64)>,
) -> usize {
    let n = x.len();
    let mut replaced = 0;
    let mut r = 0;
    while r < outliers.len() {
        let (first, side) = outliers[r];
        let mut end = r + 1;
        while end < outliers.len()
            && outliers[end].1 == side
            && outliers[end].0 == outliers[end - 1].0 + 1
        {
            end += 1;
        }
        let len = end - r;
        r = end;
        if len > max_run {
            continue;
        }
        let (start, stop) = (first as usize, first as usize + len);
        let (a, b) = match (start.checked_sub(1), (stop < n).then_some(stop)) {
            (Some(l), Some(rr)) => (x[l], x[rr]),
            (Some(l), None) => (x[l], x[l]),
            (None, Some(rr)) => (x[rr], x[rr]),
            (None, None) => continue,
        };
        let span = (len + 1) as f64;
        for (k, v) in x[start..stop].iter_mut().enumerate() {
            changed.push(((start + k) as u32, *v));
            *v = a + (b - a) * (k + 1) as f64 / span;
        }
        replaced += len;
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DespikeParams {
        DespikeParams {
            window: 600,
            step: 100,
            max_consecutive: 3,
            max_passes: 10,
            sigma: 3.5,
            threshold_increment: 0.1,
        }
    }

    /// The algorithm as first written: every pass recomputes every window's sums (sliding, four
    /// partial sums) and judges every sample. The optimised passes must find the same outliers.
    fn recomputing_despike(x: &mut [f64], p: &DespikeParams) -> usize {
        fn sums4(x: &[f64], r: f64) -> (f64, f64) {
            let (mut s1, mut s2) = ([0.0f64; 4], [0.0f64; 4]);
            let chunks = x.chunks_exact(4);
            let rest = chunks.remainder();
            for c in chunks {
                for k in 0..4 {
                    let d = c[k] - r;
                    s1[k] += d;
                    s2[k] += d * d;
                }
            }
            let (mut t1, mut t2) = (
                (s1[0] + s1[2]) + (s1[1] + s1[3]),
                (s2[0] + s2[2]) + (s2[1] + s2[3]),
            );
            for &v in rest {
                t1 += v - r;
                t2 += (v - r) * (v - r);
            }
            (t1, t2)
        }
        let n = x.len();
        if n < 3 || p.step == 0 || p.max_consecutive == 0 {
            return 0;
        }
        let window = p.window.clamp(2, n);
        let (mut total, mut k) = (0, p.sigma);
        for _ in 0..p.max_passes {
            let mut out = Vec::new();
            let reference = x[0];
            let (mut lo, mut hi, mut s1, mut s2, mut start) = (0, 0, 0.0, 0.0, 0);
            while start < n {
                let end = (start + p.step).min(n);
                let wlo = ((start + end) / 2)
                    .saturating_sub(window / 2)
                    .min(n - window);
                let whi = wlo + window;
                if wlo >= hi {
                    (s1, s2, lo, hi) = (0.0, 0.0, wlo, wlo);
                }
                let (a1, a2) = sums4(&x[hi..whi], reference);
                let (r1, r2) = sums4(&x[lo..wlo], reference);
                s1 += a1 - r1;
                s2 += a2 - r2;
                (lo, hi) = (wlo, whi);
                let m = s1 / window as f64;
                let limit = k * (s2 / window as f64 - m * m).max(0.0).sqrt();
                for (i, &v) in x[start..end].iter().enumerate() {
                    let d = v - (reference + m);
                    if d.abs() > limit {
                        out.push(((start + i) as u32, if d > 0.0 { 1 } else { -1 }));
                    }
                }
                start = end;
            }
            let replaced = replace_short_runs(x, &out, p.max_consecutive, &mut Vec::new());
            if replaced == 0 {
                break;
            }
            total += replaced;
            k += p.threshold_increment;
        }
        total
    }

    /// Red noise around a large mean with spikes of every size, runs of 1-6 samples (some longer
    /// than allowed), both signs, some adjacent, some at the ends.
    fn spiky_series(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut prev = 0.0;
        let mut x: Vec<f64> = (0..n)
            .map(|_| {
                prev = 0.9 * prev + (next() - 0.5);
                400.0 + prev
            })
            .collect();
        for _ in 0..n / 150 {
            let i = (next() * n as f64) as usize % n;
            let len = 1 + (next() * 6.0) as usize;
            let size = (2.0 + 30.0 * next() * next()) * if next() < 0.5 { 1.0 } else { -1.0 };
            for v in x.iter_mut().skip(i).take(len) {
                *v += size;
            }
        }
        x[0] += 25.0;
        x[n - 1] -= 25.0;
        x
    }

    #[test]
    fn passes_find_the_same_outliers_as_recomputing_every_window() {
        let mut scratch = DespikeScratch::default();
        let mut cases = 0;
        for seed in 0..60u64 {
            let n = [36_000, 6_000, 35_990, 1_234, 250, 97][seed as usize % 6];
            for (window, step) in [(n / 6, 100), (n / 6, 37), (50, 100), (n, 100), (n / 3, 1)] {
                if step == 1 && n > 6_000 {
                    continue;
                }
                let p = DespikeParams {
                    window,
                    step,
                    max_consecutive: 3,
                    max_passes: 10,
                    sigma: 2.5 + (seed % 4) as f64 * 0.5,
                    threshold_increment: 0.1,
                };
                let mut want = spiky_series(n, seed);
                let mut got = want.clone();
                let count_want = recomputing_despike(&mut want, &p);
                let count_got = despike_with(&mut got, &p, &mut scratch);
                assert_eq!(count_got, count_want, "seed {seed} n {n} window {window}");
                assert!(got == want, "seed {seed} n {n} window {window} step {step}");
                // The portable path gives bit-identical results.
                let mut portable = spiky_series(n, seed);
                let count_portable = despike_impl(&mut portable, &p, &mut scratch, Portable);
                assert_eq!(count_portable, count_want);
                assert!(portable == want);
                cases += usize::from(count_want > 0);
            }
        }
        assert!(cases > 100, "only {cases} cases had spikes");
    }

    #[test]
    fn vector_kernels_agree_bit_for_bit_with_the_portable_ones() {
        let x = spiky_series(300, 7);
        for len in 0..70 {
            for off in [0, 1, 3] {
                let s = &x[off..off + len];
                let r = x[0];
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let (a, b) = (Avx2(()).centred_sums(s, r), Portable.centred_sums(s, r));
                    assert_eq!(a.0.to_bits(), b.0.to_bits(), "len {len}");
                    assert_eq!(a.1.to_bits(), b.1.to_bits(), "len {len}");
                    assert_eq!(Avx2(()).min_max(s), Portable.min_max(s), "len {len}");
                }
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &v in s {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                assert_eq!(Portable.min_max(s), (lo, hi));
                let naive: f64 = s.iter().map(|v| (v - r) * (v - r)).sum();
                assert!((Portable.centred_sums(s, r).1 - naive).abs() <= 1e-12 * naive.max(1.0));
            }
        }
    }

    #[test]
    fn isolated_spike_is_interpolated_but_a_long_excursion_is_kept() {
        let mut x: Vec<f64> = (0..3000).map(|i| (i as f64 * 0.7).sin()).collect();
        let before = x.clone();
        x[1000] = 40.0;
        for v in &mut x[2000..2010] {
            *v = 40.0;
        }
        let mut scratch = Vec::new();
        let n = despike(&mut x, &params(), &mut scratch);
        assert_eq!(n, 1);
        let expected = 0.5 * (before[999] + before[1001]);
        assert!((x[1000] - expected).abs() < 1e-12);
        assert!(x[2000..2010].iter().all(|&v| v == 40.0));
    }
}
