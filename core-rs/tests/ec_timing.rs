//! Timing of one 30-min 20 Hz period (36,000 samples x 8 columns), full pipeline. Ignored by
//! default; run in release: `cargo test --release -p carbonstream-core --test ec_timing -- --ignored --nocapture`.

mod ec_common;

use carbonstream_core::ec::{
    EcConfig, RandomUncertainty, Workspace, process_period, process_period_with,
};
use ec_common::{de_hoh, toa5};
use std::time::Instant;

/// (median, minimum) wall time in ms. The minimum is reported too because the build machine is
/// shared: the median includes time the thread spent waiting for a core.
fn median_ms(mut f: impl FnMut(), runs: usize) -> (f64, f64) {
    f(); // warm caches and the allocator
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[runs / 2], t[0])
}

fn report(name: &str, raw: &carbonstream_core::ec::RawPeriod, cfg: &EcConfig, runs: usize) {
    let mut ws = Workspace::default();
    let reused = median_ms(
        || {
            std::hint::black_box(process_period_with(&mut ws, raw, cfg).unwrap());
        },
        runs,
    );
    let fresh = median_ms(
        || {
            std::hint::black_box(process_period(raw, cfg).unwrap());
        },
        runs,
    );
    println!(
        "{name}: median {:.2} ms (min {:.2}) with a reused workspace, {:.2} ms (min {:.2}) allocating",
        reused.0, reused.1, fresh.0, fresh.1
    );
}

/// EddyPro Express on 30 min: the two TOA5 quarter-hours back to back (u, v, w, Ts, CO2, H2O,
/// pressure, diagnostic).
#[test]
#[ignore = "timing; run in release with --ignored"]
fn express_open_path_median_time() {
    let a = toa5::columns(toa5::FILES[0]);
    let b = toa5::columns(toa5::FILES[1]);
    let cat = |x: &Vec<f32>, y: &Vec<f32>| [x.as_slice(), y.as_slice()].concat();
    let joined = toa5::Columns {
        u: cat(&a.u, &b.u),
        v: cat(&a.v, &b.v),
        w: cat(&a.w, &b.w),
        ts: cat(&a.ts, &b.ts),
        co2: cat(&a.co2, &b.co2),
        h2o: cat(&a.h2o, &b.h2o),
        p: cat(&a.p, &b.p),
        diag: cat(&a.diag, &b.diag),
    };
    let cfg = EcConfig {
        averaging_s: 1800.0,
        ..toa5::config()
    };
    report("express, open path, 30 min", &joined.raw(), &cfg, 101);
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn planar_fit_closed_path_median_time() {
    let cols = de_hoh::columns();
    let raw = cols.raw();
    let runs = 41;
    let cases: [(&str, EcConfig); 2] = [
        ("planar fit + in-situ + random error", de_hoh::config()),
        (
            "planar fit + in-situ, no random error",
            EcConfig {
                random_uncertainty: RandomUncertainty::None,
                ..de_hoh::config()
            },
        ),
    ];
    for (name, cfg) in cases {
        report(name, &raw, &cfg, runs);
    }
}
