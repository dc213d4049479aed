//! Every result field of many configurations compared with a stored snapshot, so that speed work
//! on the kernels (summation order, vector paths, fused passes) cannot change results beyond
//! rounding. The EddyPro agreement tests cover the Express and planar-fit settings at their
//! reference tolerances; this covers the other detrending, rotation, despiking and uncertainty
//! options, odd lengths and gaps, and compares every field at a tolerance of 1e-9.
//!
//! The snapshot was written by the kernel as it was before the speed work (commit 78d7499), with
//! `EC_SNAPSHOT_WRITE=<path> cargo test --release --test ec_results_snapshot`. Structure, flags,
//! counts and `None`/`Some` must match exactly; numbers to a relative 1e-9.

mod ec_common;

use carbonstream_core::ec::{
    Detrend, EcConfig, RandomUncertainty, RawPeriod, Rotation, Workspace, process_period_with,
};
use ec_common::{de_hoh, synth, toa5};

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/ec_results_snapshot.txt"
);

/// Relative tolerance for floating-point fields: far above rounding differences (about 1e-12
/// seen between the scalar and AVX2 summation orders), far below any change of method.
const REL: f64 = 1e-9;
/// Absolute floor, for quantities that are zero up to rounding (the rotated mean w, v).
const ABS: f64 = 1e-13;

fn variants(base: EcConfig) -> Vec<(&'static str, EcConfig)> {
    vec![
        ("base", base.clone()),
        (
            "triple",
            EcConfig {
                rotation: Rotation::Triple,
                ..base.clone()
            },
        ),
        (
            "linear",
            EcConfig {
                detrend: Detrend::Linear,
                ..base.clone()
            },
        ),
        (
            "running",
            EcConfig {
                detrend: Detrend::RunningMean { tau_s: 100.0 },
                ..base.clone()
            },
        ),
        (
            "exp",
            EcConfig {
                detrend: Detrend::ExpRunningMean { tau_s: 250.0 },
                ..base.clone()
            },
        ),
        (
            "ru",
            EcConfig {
                random_uncertainty: RandomUncertainty::FinkelsteinSims2001 {
                    max_correlation_s: 10.0,
                },
                ..base.clone()
            },
        ),
        (
            "nodespike",
            EcConfig {
                despike: None,
                ..base
            },
        ),
    ]
}

/// Synthetic period with spikes (single and runs of up to five samples) and, for odd seeds, gaps.
fn spiky(n: usize, seed: u64) -> synth::Synthetic {
    let mut s = synth::period(n, seed, (seed as i64 % 5) - 2);
    let mut rng = synth::Rng::new(seed + 100);
    for k in 0..(n / 300) {
        let i = (rng.uniform() * n as f64) as usize % n;
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        for j in i..(i + 1 + k % 5).min(n) {
            s.w[j] += 8.0 * sign;
            s.co2[j] += 3.0;
            s.h2o[j] -= 300.0;
            s.ts[j] += 5.0;
            s.u[j] -= 6.0;
        }
    }
    if seed % 2 == 1 {
        for j in 50..70 {
            s.u[j] = f32::NAN;
            s.ts[j + 100] = f32::NAN;
        }
    }
    s
}

/// One line per case: `name<TAB>result`, the result's `Debug` text without whitespace.
fn results() -> Vec<String> {
    let mut ws = Workspace::default();
    let mut lines = Vec::new();
    let mut run = |name: String, raw: &RawPeriod, cfg: &EcConfig| {
        let r = process_period_with(&mut ws, raw, cfg);
        let text: String = format!("{r:?}")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        lines.push(format!("{name}\t{text}"));
    };
    for f in toa5::FILES {
        let c = toa5::columns(f);
        for (v, cfg) in variants(toa5::config()) {
            run(format!("toa5 {f} {v}"), &c.raw(), &cfg);
        }
    }
    let d = de_hoh::columns();
    for (v, cfg) in variants(de_hoh::config()) {
        run(format!("de-hoh {v}"), &d.raw(), &cfg);
    }
    for (seed, n) in [
        (0u64, 36000usize),
        (1, 6000),
        (2, 35990),
        (3, 1000),
        (5, 36000),
    ] {
        let s = spiky(n, seed);
        for (v, cfg) in variants(synth::config(n)) {
            run(format!("synth {seed} n{n} {v}"), &s.raw(), &cfg);
        }
    }
    lines
}

/// Splits `text` into numbers and the text between them.
fn tokens(text: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut numbers, mut rest) = (Vec::new(), Vec::new());
    let b = text.as_bytes();
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        let starts_number =
            b[i].is_ascii_digit() || (b[i] == b'-' && i + 1 < b.len() && b[i + 1].is_ascii_digit());
        // Digits inside identifiers (`fh2o`, `co2`) are part of the name.
        let in_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts_number && !in_word {
            let start = i;
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == b'.'
                    || b[i] == b'e'
                    || (b[i] == b'-' && b[i - 1] == b'e'))
            {
                i += 1;
            }
            rest.push(&text[last..start]);
            numbers.push(&text[start..i]);
            last = i;
        } else {
            i += 1;
        }
    }
    rest.push(&text[last..]);
    (numbers, rest)
}

fn close(ours: &str, stored: &str) -> bool {
    let float = |s: &str| s.contains(['.', 'e']);
    if !float(ours) && !float(stored) {
        return ours == stored;
    }
    match (ours.parse::<f64>(), stored.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= ABS + REL * a.abs().max(b.abs()),
        _ => false,
    }
}

#[test]
fn results_match_the_snapshot_taken_before_the_speed_work() {
    let ours = results();
    if let Ok(path) = std::env::var("EC_SNAPSHOT_WRITE") {
        std::fs::write(&path, ours.join("\n") + "\n").unwrap();
        return;
    }
    let stored = std::fs::read_to_string(SNAPSHOT).unwrap();
    let stored: Vec<&str> = stored.lines().collect();
    assert_eq!(ours.len(), stored.len(), "number of cases");
    let mut compared = 0;
    for (line, old) in ours.iter().zip(&stored) {
        let (name, text) = line.split_once('\t').unwrap();
        let (old_name, old_text) = old.split_once('\t').unwrap();
        assert_eq!(name, old_name);
        let (n_ours, rest_ours) = tokens(text);
        let (n_old, rest_old) = tokens(old_text);
        assert_eq!(
            rest_ours, rest_old,
            "{name}: structure, flags or options differ"
        );
        for (k, (a, b)) in n_ours.iter().zip(&n_old).enumerate() {
            assert!(
                close(a, b),
                "{name}: number {k}: {a} now, {b} in the snapshot"
            );
            compared += 1;
        }
    }
    // The comparison did not pass vacuously.
    assert!(compared > 8_000, "only {compared} numbers compared");
}

#[test]
fn the_comparison_catches_changes() {
    let (n, rest) = tokens("Fluxes{fh2o:Some(1.5e-3),n:-12,x:NaN,co2:[0.25,-3.0]}");
    assert_eq!(n, ["1.5e-3", "-12", "0.25", "-3.0"]);
    assert_eq!(rest.concat(), "Fluxes{fh2o:Some(),n:,x:NaN,co2:[,]}");
    assert!(close("0.1", "0.10000000000000002"));
    assert!(close("1.2e-16", "-3e-17"));
    assert!(!close("1.0000001", "1.0"));
    assert!(!close("17997", "17996"));
    assert!(!close("1", "1.5"));
}
