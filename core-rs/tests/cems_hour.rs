//! Samples -> minutes -> hours: the validity rules of both policies at their boundaries, flow
//! weighting, mass, flags, late/duplicate data, gaps, and resumable state.

use carbonstream_core::cems::{
    CemsError, ChannelConfig, Hj75Rules, HourAggregator, HourStatus, MinuteAggregator, Policy,
    Reading, StackConfig, StackHour, StackMinute, StackSample,
};
use carbonstream_core::hj212::DataFlag;
use proptest::prelude::*;

const H: i64 = 473_000; // an arbitrary Unix hour (2023-12-17)

type Minute = (Option<Reading>, Option<Reading>);

fn n(v: f64) -> Option<Reading> {
    Some(Reading::normal(v))
}

fn f(v: f64, flag: DataFlag) -> Option<Reading> {
    Some(Reading::new(v, flag))
}

fn config(policy: Policy) -> StackConfig {
    StackConfig::new(
        policy,
        vec![ChannelConfig::mg_per_m3().with_upper_limit(100.0)],
    )
}

/// Feeds one hour of minutes (index = minute of hour; `None` entries are not sent at all).
fn run_hour(policy: Policy, minutes: &[Option<Minute>]) -> StackHour {
    let mut agg = HourAggregator::new(config(policy)).unwrap();
    for (m, spec) in minutes.iter().enumerate() {
        if let Some((flow, conc)) = spec {
            let ch = [*conc];
            let out = agg
                .push(&StackMinute {
                    minute: H * 60 + m as i64,
                    flow: *flow,
                    channels: &ch,
                })
                .unwrap();
            assert!(out.is_empty());
        }
    }
    let mut out = agg.close_until((H + 1) * 60).unwrap();
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

/// `valid` minutes N (flow 3600 m3/h, 10 mg/m3), the rest flagged `other`.
fn hour_with(valid: usize, other: DataFlag) -> Vec<Option<Minute>> {
    (0..60)
        .map(|m| {
            Some(if m < valid {
                (n(3_600.0), n(10.0))
            } else {
                (n(3_600.0), f(10.0, other))
            })
        })
        .collect()
}

#[test]
fn hj75_hour_needs_45_valid_minutes() {
    let h = run_hour(Policy::hj75(), &hour_with(45, DataFlag::Fault));
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    assert_eq!(h.channels[0].conc.valid_minutes, 45);
    assert_eq!(h.channels[0].conc.flags.get(DataFlag::Fault), 15);
    let h = run_hour(Policy::hj75(), &hour_with(44, DataFlag::Fault));
    assert_eq!(h.channels[0].conc.status, HourStatus::Invalid);
    assert!(h.channels[0].conc.value.is_nan());
    assert_eq!(h.channels[0].mass_status, HourStatus::Invalid);
    assert!(h.channels[0].mass.is_nan());
    // The flow stays valid: validity is per variable.
    assert_eq!(h.flow.status, HourStatus::Valid);
}

#[test]
fn hj75_minutes_never_received_count_as_missing() {
    let mut mins = hour_with(60, DataFlag::Normal);
    for m in mins.iter_mut().skip(45) {
        *m = None;
    }
    let h = run_hour(Policy::hj75(), &mins);
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    assert_eq!(h.channels[0].conc.flags.missing, 15);
    assert_eq!(
        h.operating_minutes, 60,
        "missing minutes count as operating"
    );
    mins[44] = None;
    let h = run_hour(Policy::hj75(), &mins);
    assert_eq!(h.channels[0].conc.status, HourStatus::Invalid);
}

#[test]
fn every_invalid_flag_counts_against_validity_and_t_counts_for_it() {
    for flag in [
        DataFlag::Maintenance,
        DataFlag::Manual,
        DataFlag::Fault,
        DataFlag::Calibration,
        DataFlag::CommFault,
    ] {
        let h = run_hour(Policy::hj75(), &hour_with(44, flag));
        assert_eq!(h.channels[0].conc.status, HourStatus::Invalid, "{flag:?}");
        assert_eq!(h.operating_minutes, 60, "{flag:?} is an operating minute");
    }
    // T is valid data, capped at the analyser's upper limit (100 mg/m3 here).
    let mins: Vec<Option<Minute>> = (0..60)
        .map(|_| Some((n(3_600.0), f(150.0, DataFlag::OverRange))))
        .collect();
    let h = run_hour(Policy::hj75(), &mins);
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    assert_eq!(h.channels[0].conc.value, 100.0);
}

#[test]
fn hj75_concentration_is_flow_weighted_and_mass_is_the_sum_of_minute_masses() {
    // 30 minutes at 10 mg/m3 with 1000 m3/h, 30 minutes at 40 mg/m3 with 2000 m3/h.
    let mins: Vec<Option<Minute>> = (0..60)
        .map(|m| {
            Some(if m < 30 {
                (n(1_000.0), n(10.0))
            } else {
                (n(2_000.0), n(40.0))
            })
        })
        .collect();
    let h = run_hour(Policy::hj75(), &mins);
    let ch = h.channels[0];
    // (10x1000 + 40x2000)/(1000 + 2000) = 30 (the arithmetic mean would be 25).
    assert!((ch.conc.value - 30.0).abs() < 1e-12);
    assert!((h.flow.value - 1_500.0).abs() < 1e-12);
    assert!((h.flow_total - 1_500.0).abs() < 1e-9);
    // Sum over minutes of C x Q x (1/60 h) x 1e-6 = 0.045 kg.
    let minute_sum: f64 = (0..60)
        .map(|m| if m < 30 { 10.0 * 1_000.0 } else { 40.0 * 2_000.0 } / 60.0 * 1e-6)
        .sum();
    assert!((ch.mass - 0.045).abs() < 1e-12 && (ch.mass - minute_sum).abs() < 1e-12);
    assert_eq!(ch.mass_status, HourStatus::Valid);
}

#[test]
fn hourly_reference_packet_values_reproduce_its_totals() {
    // 60 minutes at the hourly packet's averages: 5.331 m3/s and 0.933 mg/m3.
    let mins: Vec<Option<Minute>> = (0..60)
        .map(|_| Some((n(5.331 * 3_600.0), n(0.933))))
        .collect();
    let h = run_hour(Policy::hj75(), &mins);
    assert_eq!(h.flow_total.round(), 19_192.0);
    assert_eq!((h.channels[0].mass * 1_000.0).round() / 1_000.0, 0.018);
}

#[test]
fn stopped_unit_is_not_operating_and_partial_operation_is_prorated() {
    let all_f: Vec<Option<Minute>> = (0..60)
        .map(|_| Some((f(0.0, DataFlag::Stopped), f(0.0, DataFlag::Stopped))))
        .collect();
    let h = run_hour(Policy::hj75(), &all_f);
    assert_eq!(
        (h.operating_minutes, h.flow.status),
        (0, HourStatus::NotOperating)
    );
    assert_eq!(h.channels[0].conc.status, HourStatus::NotOperating);
    assert_eq!(
        (h.channels[0].mass, h.channels[0].mass_status),
        (0.0, HourStatus::NotOperating)
    );
    assert_eq!(h.flow_total, 0.0);
    // Ran 30 minutes: needs ceil(45 x 30/60) = 23 valid minutes.
    let partial = |valid: usize| -> Vec<Option<Minute>> {
        (0..60)
            .map(|m| {
                Some(if m >= 30 {
                    (f(0.0, DataFlag::Stopped), f(0.0, DataFlag::Stopped))
                } else if m < valid {
                    (n(3_600.0), n(10.0))
                } else {
                    (n(3_600.0), f(0.0, DataFlag::Fault))
                })
            })
            .collect()
    };
    let h = run_hour(Policy::hj75(), &partial(23));
    assert_eq!(h.operating_minutes, 30);
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    // Half an hour at 3600 m3/h and 10 mg/m3: 1800 m3, 0.018 kg.
    assert!((h.flow_total - 1_800.0).abs() < 1e-9);
    assert!((h.channels[0].mass - 0.018).abs() < 1e-12);
    let h = run_hour(Policy::hj75(), &partial(22));
    assert_eq!(h.channels[0].conc.status, HourStatus::Invalid);
    // Literal HJ 75 (no prorating): 30 valid minutes are not 45.
    let literal = Policy::Hj75(Hj75Rules {
        prorate_partial_operation: false,
        ..Hj75Rules::default()
    });
    let h = run_hour(literal, &partial(30));
    assert_eq!(h.channels[0].conc.status, HourStatus::Invalid);
}

/// Part 75 hour with valid readings only at `valid` minutes (D elsewhere), `stopped` minutes F,
/// and `qa` minutes C.
fn p75(valid: &[usize], stopped: &[usize], qa: &[usize]) -> StackHour {
    let mins: Vec<Option<Minute>> = (0..60)
        .map(|m| {
            Some(if stopped.contains(&m) {
                (f(0.0, DataFlag::Stopped), f(0.0, DataFlag::Stopped))
            } else if qa.contains(&m) {
                (n(1.0e6), f(50.0, DataFlag::Calibration))
            } else if valid.contains(&m) {
                (n(1.0e6), n(10.0))
            } else {
                (n(1.0e6), f(0.0, DataFlag::Fault))
            })
        })
        .collect();
    let cfg = StackConfig::new(Policy::part75(), vec![ChannelConfig::part75_co2_wet()]);
    let mut agg = HourAggregator::new(cfg).unwrap();
    for (m, spec) in mins.iter().enumerate() {
        let (flow, conc) = spec.unwrap();
        agg.push(&StackMinute {
            minute: H * 60 + m as i64,
            flow,
            channels: &[conc],
        })
        .unwrap();
    }
    agg.close_until((H + 1) * 60).unwrap().pop().unwrap()
}

#[test]
fn part75_one_valid_reading_in_each_operated_quadrant() {
    let h = p75(&[0, 15, 30, 45], &[], &[]);
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    assert_eq!(h.channels[0].conc.value, 10.0);
    for missing in [0usize, 15, 30, 45] {
        let valid: Vec<usize> = [14, 29, 44, 59]
            .into_iter()
            .filter(|&m| m != missing + 14)
            .collect();
        let h = p75(&valid, &[], &[]);
        assert_eq!(
            h.channels[0].conc.status,
            HourStatus::Invalid,
            "quadrant of {missing} empty"
        );
    }
    // Unit ran only in the first half: two quadrants to cover; t_h = 0.5.
    let stopped: Vec<usize> = (30..60).collect();
    let h = p75(&[7, 20], &stopped, &[]);
    assert_eq!(h.channels[0].conc.status, HourStatus::Valid);
    assert_eq!(h.operating_fraction(), 0.5);
    // F-12 term: E_h x t_h = 5.7e-7 x 10 % x 1e6 scfh x 0.5 = 2.85 short tons.
    assert!((h.channels[0].mass - 2.85).abs() < 1e-12);
    assert_eq!(
        p75(&[7], &stopped, &[]).channels[0].conc.status,
        HourStatus::Invalid
    );
}

#[test]
fn part75_qa_hour_needs_two_readings_15_minutes_apart() {
    let cal: Vec<usize> = (20..40).collect();
    assert_eq!(
        p75(&[0, 15], &[], &cal).channels[0].conc.status,
        HourStatus::Valid
    );
    assert_eq!(
        p75(&[0, 14], &[], &cal).channels[0].conc.status,
        HourStatus::Invalid
    );
    assert_eq!(
        p75(&[59], &[], &cal).channels[0].conc.status,
        HourStatus::Invalid
    );
    // Calibration gas readings are not flue-gas data: the average is of the valid minutes only.
    assert_eq!(p75(&[0, 15], &[], &cal).channels[0].conc.value, 10.0);
    // Unit ran in one quadrant only: one valid reading suffices.
    let stopped: Vec<usize> = (15..60).collect();
    assert_eq!(
        p75(&[3], &stopped, &[5]).channels[0].conc.status,
        HourStatus::Valid
    );
}

#[test]
fn silent_hours_are_emitted_as_missing_and_big_jumps_refused() {
    let mut agg = HourAggregator::new(config(Policy::hj75())).unwrap();
    let m = |minute: i64| StackMinute {
        minute,
        flow: n(1.0),
        channels: &[None],
    };
    assert!(agg.push(&m(H * 60 + 5)).unwrap().is_empty());
    let out = agg.push(&m((H + 3) * 60)).unwrap();
    assert_eq!(
        out.iter().map(|h| h.hour).collect::<Vec<_>>(),
        vec![H, H + 1, H + 2]
    );
    assert_eq!(out[1].flow.flags.missing, 60);
    assert_eq!(out[1].flow.status, HourStatus::Invalid);
    // Late and duplicate minutes are refused without changing state.
    assert_eq!(
        agg.push(&m(H * 60 + 7)).unwrap_err(),
        CemsError::LateMinute {
            minute: H * 60 + 7,
            open_hour: H + 3
        }
    );
    assert_eq!(
        agg.push(&m((H + 3) * 60)).unwrap_err(),
        CemsError::DuplicateMinute {
            minute: (H + 3) * 60
        }
    );
    assert!(matches!(
        agg.push(&StackMinute {
            minute: (H + 3) * 60 + 1,
            flow: None,
            channels: &[]
        }),
        Err(CemsError::ChannelCount {
            expected: 1,
            got: 0,
            ..
        })
    ));
    let far = (H + 3 + 10_000) * 60;
    assert!(matches!(agg.push(&m(far)), Err(CemsError::TimeJump { .. })));
    // The watermark closes the open hour and silent hours up to it.
    let out = agg.close_until((H + 6) * 60 + 30).unwrap();
    assert_eq!(
        out.iter().map(|h| h.hour).collect::<Vec<_>>(),
        vec![H + 3, H + 4, H + 5]
    );
}

#[test]
fn samples_become_minutes() {
    let cfg = config(Policy::hj75());
    let mut agg = MinuteAggregator::new(cfg.clone(), 1).unwrap();
    let t0 = H * 3_600_000;
    let s = |t: i64, flow: Option<Reading>, c: Option<Reading>| (t, flow, c);
    let samples = [
        s(t0, n(100.0), n(10.0)),
        s(t0 + 20_000, n(200.0), n(20.0)),
        s(
            t0 + 40_000,
            f(999.0, DataFlag::Calibration),
            f(150.0, DataFlag::OverRange),
        ),
        // Minute 1: only calibration and fault samples.
        s(t0 + 60_000, n(50.0), f(1.0, DataFlag::Calibration)),
        s(t0 + 80_000, n(70.0), f(3.0, DataFlag::Calibration)),
        s(t0 + 100_000, n(60.0), f(9.0, DataFlag::Fault)),
    ];
    let mut out = Vec::new();
    for (t, flow, c) in samples {
        out.extend(
            agg.push(&StackSample {
                t_ms: t,
                flow,
                channels: &[c],
            })
            .unwrap(),
        );
    }
    assert_eq!(
        out.len(),
        1,
        "minute 0 closed by the first sample of minute 1"
    );
    let m0 = &out[0];
    assert_eq!(m0.minute, H * 60);
    assert_eq!(m0.flow, Some(Reading::normal(150.0)));
    // 10, 20 and 150 capped to 100: mean 43.33, flagged T because a capped sample contributed.
    let c = m0.channels[0].unwrap();
    assert!((c.value - 130.0 / 3.0).abs() < 1e-12 && c.flag == DataFlag::OverRange);
    let m1 = agg.close_until(t0 + 120_000).unwrap();
    assert_eq!(m1.flow, Some(Reading::normal(60.0)));
    assert_eq!(
        m1.channels[0],
        Some(Reading::new(2.0, DataFlag::Calibration)),
        "dominant flag, its mean"
    );
    // Minutes already closed (by data or by the watermark) refuse late samples.
    for t in [t0 + 119_999, t0] {
        assert_eq!(
            agg.push(&StackSample {
                t_ms: t,
                flow: None,
                channels: &[None]
            }),
            Err(CemsError::LateSample {
                t_ms: t,
                open_minute: H * 60 + 2
            })
        );
    }
    // State survives a snapshot, including which minutes are closed.
    let bytes = agg.snapshot();
    let mut back = MinuteAggregator::restore(config(Policy::hj75()), 1, &bytes).unwrap();
    assert_eq!(back.snapshot(), bytes);
    assert!(
        back.push(&StackSample {
            t_ms: t0,
            flow: None,
            channels: &[None]
        })
        .is_err()
    );
    assert!(
        back.push(&StackSample {
            t_ms: t0 + 120_000,
            flow: n(1.0),
            channels: &[n(2.0)]
        })
        .is_ok()
    );
    // Minutes feed the hour aggregator directly.
    let mut hours = HourAggregator::new(cfg).unwrap();
    hours.push(&m0.as_stack_minute()).unwrap();
}

#[test]
fn snapshot_mid_hour_resumes_identically_and_refuses_other_configs() {
    let mins = hour_with(50, DataFlag::Maintenance);
    let feed = |agg: &mut HourAggregator, range: std::ops::Range<usize>| {
        for m in range {
            let (flow, conc) = mins[m].unwrap();
            agg.push(&StackMinute {
                minute: H * 60 + m as i64,
                flow,
                channels: &[conc],
            })
            .unwrap();
        }
    };
    let mut straight = HourAggregator::new(config(Policy::hj75())).unwrap();
    feed(&mut straight, 0..60);
    let want = straight.close_until((H + 1) * 60).unwrap();

    let mut first = HourAggregator::new(config(Policy::hj75())).unwrap();
    feed(&mut first, 0..37);
    let bytes = first.snapshot();
    assert_eq!(bytes, first.clone().snapshot());
    let mut resumed = HourAggregator::restore(config(Policy::hj75()), &bytes).unwrap();
    assert_eq!(
        resumed.snapshot(),
        bytes,
        "restore -> snapshot is the identity"
    );
    feed(&mut resumed, 37..60);
    assert_eq!(resumed.close_until((H + 1) * 60).unwrap(), want);

    assert!(matches!(
        HourAggregator::restore(config(Policy::part75()), &bytes),
        Err(CemsError::IncompatibleSnapshot(_))
    ));
    assert!(matches!(
        HourAggregator::restore(config(Policy::hj75()), &bytes[..bytes.len() - 3]),
        Err(CemsError::CorruptSnapshot(_))
    ));
}

proptest! {
    /// Minutes of an hour in any order give the same hour, bit for bit, under both policies.
    #[test]
    fn minute_order_does_not_matter(
        specs in prop::collection::vec(
            (0.0f64..5_000.0, 0.0f64..200.0, prop::sample::select(DataFlag::ALL.to_vec()), any::<bool>()),
            60,
        ),
        order in Just((0..60usize).collect::<Vec<_>>()).prop_shuffle(),
        part75 in any::<bool>(),
    ) {
        let policy = if part75 { Policy::part75() } else { Policy::hj75() };
        let run = |idx: &[usize]| {
            let mut agg = HourAggregator::new(config(policy)).unwrap();
            for &m in idx {
                let (q, c, flag, send) = specs[m];
                if send {
                    agg.push(&StackMinute {
                        minute: H * 60 + m as i64,
                        flow: n(q),
                        channels: &[f(c, flag)],
                    }).unwrap();
                }
            }
            agg.close_until((H + 1) * 60).unwrap()
        };
        let sorted: Vec<usize> = (0..60).collect();
        let a = run(&sorted);
        let b = run(&order);
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
