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
/// Three short passes that each vectorise, rather than one branchy loop.
pub fn load_screened(
    dst: &mut Vec<f64>,
    src: &[f32],
    scale: f64,
    (lo, hi): (f64, f64),
    bad: Option<&[u8]>,
) -> usize {
    dst.clear();
    dst.extend(src.iter().map(move |&x| {
        let v = x as f64 * scale;
        if v >= lo && v <= hi { v } else { f64::NAN }
    }));
    if let Some(bad) = bad {
        for (x, &b) in dst.iter_mut().zip(bad) {
            if b != 0 {
                *x = f64::NAN;
            }
        }
    }
    count_missing(dst)
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
pub fn finite_mean(x: &[f64]) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for &v in x {
        if v.is_finite() {
            s += v;
            n += 1;
        }
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Mean of the finite samples of an f32 column, NaN when there is none.
pub fn finite_mean_f32(x: &[f32]) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for &v in x {
        if v.is_finite() {
            s += v as f64;
            n += 1;
        }
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
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
