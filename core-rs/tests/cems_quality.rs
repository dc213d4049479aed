//! Data-quality signals, Part 75 calibration error and RATA statistics, and period totals.

use carbonstream_core::cems::quality::{
    Run, calibration_error, calibration_hours, diluent_calibration_error, flatline_runs,
    implausible_jumps, rata, repeated_runs,
};
use carbonstream_core::cems::{CemsError, FlagCounts, PeriodTotals};
use carbonstream_core::hj212::{DataFlag, Packet, fingerprint};
use proptest::prelude::*;

#[test]
fn flat_lined_signals_are_found() {
    let v = [1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, f64::NAN, 3.0, 3.0, 3.0];
    assert_eq!(flatline_runs(&v, 4, 0.0), vec![Run { start: 1, len: 4 }]);
    // NaN breaks a run: 3,3 | NaN | 3,3,3.
    assert_eq!(
        flatline_runs(&v, 3, 0.0),
        vec![Run { start: 1, len: 4 }, Run { start: 8, len: 3 }]
    );
    // With a tolerance, jitter within it is "flat".
    let jitter = [5.0, 5.01, 4.99, 5.0, 7.0];
    assert_eq!(
        flatline_runs(&jitter, 4, 0.02),
        vec![Run { start: 0, len: 4 }]
    );
    assert!(flatline_runs(&jitter, 4, 0.0).is_empty());
}

#[test]
fn repeated_packets_are_found_by_fingerprint() {
    let seg = |t: &str, so2: &str| {
        format!("ST=31;CN=2051;PW=1;MN=M;CP=&&DataTime={t};a21026-Avg={so2},a21026-Flag=N&&")
    };
    let segs = [
        seg("20240101000100", "12.5"),
        seg("20240101000200", "12.5"),
        seg("20240101000300", "12.5"),
        seg("20240101000400", "12.6"),
    ];
    let fps: Vec<u64> = segs
        .iter()
        .map(|s| fingerprint(&Packet::parse(s).unwrap().fields))
        .collect();
    // Same values under new time stamps: same fingerprint.
    assert_eq!(repeated_runs(&fps, 3), vec![Run { start: 0, len: 3 }]);
    assert_ne!(fps[2], fps[3]);
}

#[test]
fn implausible_jumps_need_both_absolute_and_relative_steps() {
    let flow = [100.0, 102.0, 160.0, f64::NAN, 161.0, 0.5, 0.9];
    // > 20 m3/s and > 30 %: 102 -> 160 and 161 -> 0.5; 0.5 -> 0.9 is 80 % but tiny.
    assert_eq!(implausible_jumps(&flow, 20.0, 0.3), vec![2, 5]);
}

#[test]
fn calibration_hours_are_marked() {
    let mut c = FlagCounts::default();
    c.by_flag[DataFlag::Calibration.index()] = 10;
    assert_eq!(
        calibration_hours(&[FlagCounts::default(), c]),
        vec![false, true]
    );
}

#[test]
fn daily_calibration_error() {
    // SO2 span 500: 12.5 off is exactly 2.5 % (passes), 13 is not.
    let ok = calibration_error(250.0, 262.5, 500.0).unwrap();
    assert!((ok.error_pct_of_span - 2.5).abs() < 1e-12 && ok.passes);
    assert!(!calibration_error(250.0, 263.0, 500.0).unwrap().passes);
    // CO2: 0.5 % absolute, whatever the span.
    assert!(diluent_calibration_error(12.0, 12.5, 20.0).unwrap().passes);
    assert!(!diluent_calibration_error(12.0, 12.6, 20.0).unwrap().passes);
    assert!(calibration_error(1.0, 1.0, 0.0).is_err());
}

#[test]
fn rata_relative_accuracy_and_bias_adjustment() {
    // CEMS reads 0.5 low on every run: no scatter, biased low, BAF = 1 + 0.5/13.5.
    let reference: Vec<f64> = (10..19).map(f64::from).collect();
    let cems: Vec<f64> = reference.iter().map(|r| r - 0.5).collect();
    let r = rata(&reference, &cems).unwrap();
    assert!((r.mean_difference - 0.5).abs() < 1e-12 && r.confidence_coefficient.abs() < 1e-12);
    assert!((r.relative_accuracy_pct - 0.5 / 14.0 * 100.0).abs() < 1e-9);
    assert!(r.biased_low);
    assert!((r.bias_adjustment_factor - (1.0 + 0.5 / 13.5)).abs() < 1e-12);
    // Alternating +/-1 over 10 runs: no bias; cc = 2.262 x 1.05409/sqrt(10) = 0.754.
    let reference: Vec<f64> = (100..110).map(f64::from).collect();
    let cems: Vec<f64> = reference
        .iter()
        .enumerate()
        .map(|(i, r)| if i % 2 == 0 { r - 1.0 } else { r + 1.0 })
        .collect();
    let r = rata(&reference, &cems).unwrap();
    assert!((r.confidence_coefficient - 0.754).abs() < 1e-9);
    assert!((r.relative_accuracy_pct - 0.721_531_100_478).abs() < 1e-9);
    assert!(!r.biased_low && r.bias_adjustment_factor == 1.0);
    assert!(matches!(
        rata(&[1.0], &[1.0]),
        Err(CemsError::OutOfRange { .. })
    ));
}

/// 2024-04-01 00:00 at +08:00 is 2024-03-31T16:00Z.
const Q2_START: i64 = 1_711_900_800 / 3_600;

#[test]
fn quarter_totals_close_at_local_quarter_boundaries() {
    let mut t = PeriodTotals::new(480);
    assert_eq!(t.quarter_of(Q2_START - 1), (2024, 1));
    assert_eq!(t.quarter_of(Q2_START), (2024, 2));
    assert!(t.push(Q2_START - 2, 1.5, false).unwrap().is_none());
    assert!(t.push(Q2_START - 1, 2.0, true).unwrap().is_none());
    assert!(
        t.push(Q2_START - 1, 2.0, true).is_err(),
        "hours must increase"
    );
    let q1 = t.push(Q2_START, 4.0, false).unwrap().expect("Q1 closed");
    assert_eq!(
        (q1.year, q1.quarter, q1.total, q1.substituted, q1.hours),
        (2024, 1, 3.5, 2.0, 2)
    );
    // A missing (NaN) hour adds nothing.
    t.push(Q2_START + 1, f64::NAN, false).unwrap();
    assert_eq!(t.current_quarter().unwrap().total, 4.0);
    assert_eq!((t.year_to_date(), t.cumulative()), (7.5, 7.5));
    // Snapshot round trip.
    let bytes = t.snapshot();
    let mut back = PeriodTotals::restore(480, &bytes).unwrap();
    assert_eq!(back.snapshot(), bytes);
    // A new year resets year-to-date, not the cumulative total.
    let next_year = Q2_START + 24 * 366;
    back.push(next_year, 1.0, false).unwrap();
    assert_eq!((back.year_to_date(), back.cumulative()), (1.0, 8.5));
    assert!(PeriodTotals::restore(0, &bytes).is_err());
}

proptest! {
    /// Runs found are maximal and really flat; nothing is found in strictly increasing data.
    #[test]
    fn flatline_runs_are_flat_and_maximal(v in prop::collection::vec(prop::sample::select(vec![1.0, 2.0, 3.0]), 0..200), k in 2usize..6) {
        for r in flatline_runs(&v, k, 0.0) {
            prop_assert!(r.len >= k);
            prop_assert!(v[r.start..r.start + r.len].iter().all(|x| *x == v[r.start]));
            prop_assert!(r.start + r.len == v.len() || v[r.start + r.len] != v[r.start]);
            prop_assert!(r.start == 0 || v[r.start - 1] != v[r.start]);
        }
        let inc: Vec<f64> = (0..v.len()).map(|i| i as f64).collect();
        prop_assert!(flatline_runs(&inc, k, 0.0).is_empty());
    }
}
