//! Hours -> days: the 20-valid-hour rule at its boundary, prorating, flow weighting, local day
//! boundaries, Part 75 days and resumable state.

use carbonstream_core::cems::{
    CemsError, DayAggregator, DayHour, DayRecord, Hj75Rules, HourKind, HourStatus, Policy,
};

/// Unix hour of 2024-01-01 00:00 at +08:00 (2023-12-31T16:00Z).
const DAY_START: i64 = 1_704_038_400 / 3_600;
const CST: i32 = 480;

fn hour(i: i64, kind: HourKind) -> DayHour {
    DayHour {
        hour: DAY_START + i,
        conc: 10.0 + i as f64,
        flow_total: 1_000.0 * (1 + i % 2) as f64,
        mass: 0.5,
        kind,
    }
}

/// One local day from a list of 24 kinds; closed by the watermark.
fn day(policy: Policy, kinds: &[HourKind]) -> DayRecord {
    let mut agg = DayAggregator::new(policy, CST).unwrap();
    for (i, k) in kinds.iter().enumerate() {
        assert!(agg.push(&hour(i as i64, *k)).unwrap().is_empty());
    }
    agg.close_until(DAY_START + 24).expect("day closed")
}

fn kinds(measured: usize, rest: HourKind) -> Vec<HourKind> {
    (0..24)
        .map(|i| {
            if i < measured {
                HourKind::Measured
            } else {
                rest
            }
        })
        .collect()
}

#[test]
fn hj75_day_needs_20_valid_hours() {
    let d = day(Policy::hj75(), &kinds(20, HourKind::Substituted));
    assert_eq!(d.status, HourStatus::Valid);
    assert_eq!(
        (d.measured_hours, d.substituted_hours, d.missing_hours),
        (20, 4, 0)
    );
    let d = day(Policy::hj75(), &kinds(19, HourKind::Substituted));
    assert_eq!(d.status, HourStatus::Invalid);
    assert!(d.conc.is_nan());
    // Substituted hours still count in the day's emission.
    assert!((d.mass - 12.0).abs() < 1e-12);
    assert!((d.flow_total - 36_000.0).abs() < 1e-9);
}

#[test]
fn daily_concentration_is_flow_weighted_over_measured_hours() {
    let d = day(Policy::hj75(), &kinds(24, HourKind::Missing));
    // conc_i = 10 + i, flow 1000 (even i) or 2000 (odd i).
    let (cq, q): (f64, f64) = (0..24)
        .map(|i| {
            let q = 1_000.0 * (1 + i % 2) as f64;
            ((10.0 + i as f64) * q, q)
        })
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!((d.conc - cq / q).abs() < 1e-12);
    assert!((d.conc - 21.5).abs() > 0.1, "not the arithmetic mean");
}

#[test]
fn stopped_hours_prorate_the_threshold_and_a_stopped_day_is_not_operating() {
    // 12 hours stopped: needs ceil(20 x 12/24) = 10 measured hours.
    let mut k: Vec<HourKind> = (0..24)
        .map(|i| {
            if i < 12 {
                HourKind::NotOperating
            } else {
                HourKind::Missing
            }
        })
        .collect();
    for slot in k.iter_mut().skip(12).take(10) {
        *slot = HourKind::Measured;
    }
    assert_eq!(day(Policy::hj75(), &k).status, HourStatus::Valid);
    k[21] = HourKind::Missing;
    let d = day(Policy::hj75(), &k);
    assert_eq!(
        (
            d.status,
            d.measured_hours,
            d.not_operating_hours,
            d.missing_hours
        ),
        (HourStatus::Invalid, 9, 12, 3)
    );
    let literal = Policy::Hj75(Hj75Rules {
        prorate_partial_operation: false,
        ..Hj75Rules::default()
    });
    k[21] = HourKind::Measured;
    assert_eq!(day(literal, &k).status, HourStatus::Invalid);
    let d = day(Policy::hj75(), &[HourKind::NotOperating; 24]);
    assert_eq!((d.status, d.mass), (HourStatus::NotOperating, 0.0));
}

#[test]
fn part75_day_is_complete_when_no_hour_is_left_missing() {
    assert_eq!(
        day(Policy::part75(), &kinds(1, HourKind::Substituted)).status,
        HourStatus::Valid
    );
    assert_eq!(
        day(Policy::part75(), &kinds(23, HourKind::Missing)).status,
        HourStatus::Invalid
    );
}

#[test]
fn days_are_local_calendar_days_and_gaps_count_as_missing() {
    let mut agg = DayAggregator::new(Policy::hj75(), CST).unwrap();
    // 23:00 local on Dec 31, then 00:00 and 05:00 local on Jan 1.
    assert!(agg.push(&hour(-1, HourKind::Measured)).unwrap().is_empty());
    let closed = agg.push(&hour(0, HourKind::Measured)).unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].day, agg.day_of(DAY_START) - 1);
    assert_eq!(closed[0].missing_hours, 23);
    agg.push(&hour(5, HourKind::Measured)).unwrap();
    assert_eq!(
        agg.push(&hour(3, HourKind::Measured)).unwrap_err(),
        CemsError::LateHour {
            hour: DAY_START + 3,
            last: DAY_START + 5
        }
    );
    // 2024-01-01 is day 19723 since 1970-01-01.
    assert_eq!(agg.day_of(DAY_START), 19_723);
    let d = agg.close_until(DAY_START + 24).unwrap();
    assert_eq!((d.day, d.measured_hours, d.missing_hours), (19_723, 2, 22));
    assert!(DayAggregator::new(Policy::hj75(), 15 * 60).is_err());
}

#[test]
fn snapshot_resumes_the_open_day() {
    let k = kinds(21, HourKind::Substituted);
    let mut straight = DayAggregator::new(Policy::hj75(), CST).unwrap();
    for (i, kind) in k.iter().enumerate() {
        straight.push(&hour(i as i64, *kind)).unwrap();
    }
    let want = straight.close_until(DAY_START + 24);
    let mut first = DayAggregator::new(Policy::hj75(), CST).unwrap();
    for (i, kind) in k.iter().enumerate().take(11) {
        first.push(&hour(i as i64, *kind)).unwrap();
    }
    let bytes = first.snapshot();
    let mut resumed = DayAggregator::restore(Policy::hj75(), CST, &bytes).unwrap();
    assert_eq!(resumed.snapshot(), bytes);
    for (i, kind) in k.iter().enumerate().skip(11) {
        resumed.push(&hour(i as i64, *kind)).unwrap();
    }
    assert_eq!(resumed.close_until(DAY_START + 24), want);
    assert!(matches!(
        DayAggregator::restore(Policy::hj75(), 0, &bytes),
        Err(CemsError::IncompatibleSnapshot(_))
    ));
}
