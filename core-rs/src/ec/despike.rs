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

/// Removes spikes from `x` in place and returns how many samples were replaced.
/// `scratch` collects the (rare) outliers of a pass; reuse it across calls to avoid allocating.
/// `x` must not contain NaN (fill gaps first).
pub fn despike(x: &mut [f64], p: &DespikeParams, scratch: &mut Vec<Outlier>) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `despike_avx2` is compiled with.
            return unsafe { despike_avx2(x, p, scratch) };
        }
    }
    despike_impl(x, p, scratch)
}

/// The same code compiled for AVX2 (the crate's baseline is SSE2): the window sums and the
/// outlier pre-check run over every sample of every pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn despike_avx2(x: &mut [f64], p: &DespikeParams, scratch: &mut Vec<Outlier>) -> usize {
    despike_impl(x, p, scratch)
}

#[inline(always)]
fn despike_impl(x: &mut [f64], p: &DespikeParams, scratch: &mut Vec<Outlier>) -> usize {
    let n = x.len();
    if n < 3 || p.step == 0 || p.max_consecutive == 0 {
        return 0;
    }
    let window = p.window.clamp(2, n);
    let mut total = 0;
    let mut k = p.sigma;
    for _ in 0..p.max_passes {
        scratch.clear();
        mark_outliers(x, window, p.step, k, scratch);
        let replaced = replace_short_runs(x, scratch, p.max_consecutive);
        if replaced == 0 {
            break;
        }
        total += replaced;
        k += p.threshold_increment;
    }
    total
}

/// Collects the samples beyond mean +/- k sd of their step's window, in index order.
#[inline(always)]
fn mark_outliers(x: &[f64], window: usize, step: usize, k: f64, out: &mut Vec<Outlier>) {
    let n = x.len();
    // Sums relative to a reference value keep the variance free of cancellation for signals with a
    // large mean (CO2 in ppm, temperature in K).
    let reference = x[0];
    let (mut lo, mut hi) = (0usize, 0usize);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let centre = (start + end) / 2;
        let wlo = centre.saturating_sub(window / 2).min(n - window);
        let whi = wlo + window;
        // Windows only move forward, so the sums are updated incrementally (or restarted when a
        // window shorter than the step leaves no overlap).
        if wlo >= hi {
            (s1, s2, lo, hi) = (0.0, 0.0, wlo, wlo);
        }
        let (a1, a2) = centred_sums(&x[hi..whi], reference);
        let (r1, r2) = centred_sums(&x[lo..wlo], reference);
        s1 += a1 - r1;
        s2 += a2 - r2;
        (lo, hi) = (wlo, whi);
        let m = s1 / window as f64;
        let var = (s2 / window as f64 - m * m).max(0.0);
        let limit = k * var.sqrt();
        let centre_value = reference + m;
        let block = &x[start..end];
        // Most steps hold no outlier: a vectorisable range check decides whether to look closer.
        let (bmin, bmax) = block
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                // Plain comparisons (the series holds no NaN) compile to packed min/max.
                (if v < a { v } else { a }, if v > b { v } else { b })
            });
        if bmax - centre_value > limit || centre_value - bmin > limit {
            for (i, &v) in block.iter().enumerate() {
                let d = v - centre_value;
                if d.abs() > limit {
                    out.push(((start + i) as u32, if d > 0.0 { 1 } else { -1 }));
                }
            }
        }
        start = end;
    }
}

/// Sums of `x - r` and `(x - r)^2` with four independent accumulators (vectorisable).
#[inline(always)]
fn centred_sums(x: &[f64], r: f64) -> (f64, f64) {
    let mut s1 = [0.0f64; 4];
    let mut s2 = [0.0f64; 4];
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
        let d = v - r;
        t1 += d;
        t2 += d * d;
    }
    (t1, t2)
}

/// Replaces runs of consecutive same-side outliers no longer than `max_run` by linear
/// interpolation between the samples just outside the run.
fn replace_short_runs(x: &mut [f64], outliers: &[Outlier], max_run: usize) -> usize {
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
