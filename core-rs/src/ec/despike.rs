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

/// Removes spikes from `x` in place and returns how many samples were replaced.
/// `scratch` holds per-sample outlier signs; it is resized as needed (reuse it across calls).
/// `x` must not contain NaN (fill gaps first).
pub fn despike(x: &mut [f64], p: &DespikeParams, scratch: &mut Vec<i8>) -> usize {
    let n = x.len();
    if n < 3 || p.step == 0 || p.max_consecutive == 0 {
        return 0;
    }
    let window = p.window.clamp(2, n);
    scratch.clear();
    scratch.resize(n, 0);
    let mut total = 0;
    let mut k = p.sigma;
    for _ in 0..p.max_passes {
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

/// Sets `sign[i]` to +1/-1 for samples above/below mean +/- k sd of their step's window, else 0.
fn mark_outliers(x: &[f64], window: usize, step: usize, k: f64, sign: &mut [i8]) {
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
        // Windows only move forward, so the sums are updated incrementally.
        while hi < whi {
            let d = x[hi] - reference;
            s1 += d;
            s2 += d * d;
            hi += 1;
        }
        while lo < wlo {
            let d = x[lo] - reference;
            s1 -= d;
            s2 -= d * d;
            lo += 1;
        }
        let m = s1 / window as f64;
        let var = (s2 / window as f64 - m * m).max(0.0);
        let limit = k * var.sqrt();
        let centre_value = reference + m;
        for i in start..end {
            let d = x[i] - centre_value;
            sign[i] = if d > limit {
                1
            } else if d < -limit {
                -1
            } else {
                0
            };
        }
        start = end;
    }
}

/// Replaces runs of same-sign outliers no longer than `max_run` by linear interpolation.
fn replace_short_runs(x: &mut [f64], sign: &[i8], max_run: usize) -> usize {
    let n = x.len();
    let mut replaced = 0;
    let mut i = 0;
    while i < n {
        let s = sign[i];
        if s == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && sign[i] == s {
            i += 1;
        }
        let len = i - start;
        if len > max_run {
            continue;
        }
        // Neighbours: the samples just outside the run (they are not part of it).
        let (a, b) = match (start.checked_sub(1), (i < n).then_some(i)) {
            (Some(l), Some(r)) => (x[l], x[r]),
            (Some(l), None) => (x[l], x[l]),
            (None, Some(r)) => (x[r], x[r]),
            (None, None) => continue,
        };
        let span = (len + 1) as f64;
        for (k, v) in x[start..i].iter_mut().enumerate() {
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
