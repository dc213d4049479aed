//! `StackPipeline`: the stages composed for one stack. It must give what the stages give when
//! composed by hand, resume identically from a snapshot taken anywhere, derive the flow by the
//! Appendix D formulas, and flag quality signals exactly where the batch functions do.

use carbonstream_core::cems::conditions::STANDARD_PRESSURE_PA;
use carbonstream_core::cems::flow::dry_standard_flow_m3_h;
use carbonstream_core::cems::pipeline::{Q_CALIBRATION, Q_FLATLINE, Q_JUMP, Q_REPEATED};
use carbonstream_core::cems::quality::{flatline_runs, implausible_jumps};
use carbonstream_core::cems::{
    ChannelConfig, ChannelSpec, ConcentrationUnit, ConditionChannels, FlowSource, HourStatus,
    PipelineConfig, PipelineOutput, Policy, QualityLimits, Reading, Rule, StackPipeline,
};
use carbonstream_core::hj212::DataFlag;
use proptest::prelude::*;

const T0_MS: i64 = 1_704_038_400_000; // 2024-01-01 00:00 +08:00
const STEP_MS: i64 = 20_000;
const HOURS: i64 = 72;
const N: i64 = HOURS * 3_600_000 / STEP_MS;

fn config() -> PipelineConfig {
    let mut c = PipelineConfig::new(
        Policy::hj75(),
        FlowSource::DryStandard { scale: 1.0 },
        vec![
            ChannelSpec::mass(ChannelConfig::mg_per_m3().with_upper_limit(500.0)), // SO2
            ChannelSpec::mass(ChannelConfig::from_unit(ConcentrationUnit::CO2_PERCENT)),
            ChannelSpec::auxiliary(), // O2
        ],
    );
    c.flatline_minutes = 0;
    c.repeat_packets = 0;
    c
}

/// The scenario of cems_pipeline.rs (SO2 fault in hours 30-33, stop in 50-51, blackout in 60),
/// plus an O2 channel.
fn sample(i: i64) -> Option<(i64, [Option<Reading>; 4])> {
    let t = T0_MS + i * STEP_MS;
    let hour = (t - T0_MS) / 3_600_000;
    if hour == 60 {
        return None;
    }
    let phase = (i as f64 / 180.0 * std::f64::consts::PI / 12.0).sin();
    let r = |v: f64, flag| Some(Reading::new(v, flag));
    let (flow, so2, co2, o2) = (
        50_000.0 + 5_000.0 * phase,
        30.0 + 10.0 * phase,
        11.0 + 0.5 * phase,
        6.0 + phase,
    );
    let n = DataFlag::Normal;
    Some(if (50..52).contains(&hour) {
        let f = DataFlag::Stopped;
        (t, [r(0.0, f), r(0.0, f), r(0.0, f), r(20.9, f)])
    } else if (30..34).contains(&hour) {
        (
            t,
            [r(flow, n), r(0.0, DataFlag::Fault), r(co2, n), r(o2, n)],
        )
    } else {
        (t, [r(flow, n), r(so2, n), r(co2, n), r(o2, n)])
    })
}

fn feed(p: &mut StackPipeline, range: std::ops::Range<i64>, out: &mut PipelineOutput) {
    for i in range {
        if let Some((t, [flow, rest @ ..])) = sample(i) {
            p.push_sample(t, flow, &rest, None, out).unwrap();
        }
    }
}

fn finish(p: &mut StackPipeline, out: &mut PipelineOutput) {
    p.close_until(T0_MS + HOURS * 3_600_000, out).unwrap();
}

#[test]
fn the_pipeline_applies_the_rules_and_conserves_mass() {
    let mut p = StackPipeline::new(config()).unwrap();
    let mut out = PipelineOutput::default();
    feed(&mut p, 0..N, &mut out);
    finish(&mut p, &mut out);
    // Every hour of every variable (flow, SO2, CO2, O2) closes.
    assert_eq!(out.hours.len(), 4 * HOURS as usize);
    assert_eq!(out.minutes.len(), 4 * (HOURS as usize * 60 - 60));
    let so2: Vec<_> = out.resolved.iter().filter(|r| r.var == 1).collect();
    assert_eq!(so2.len(), HOURS as usize);
    for r in &so2 {
        let h = r.hour - T0_MS / 3_600_000;
        let want = match h {
            30..=33 | 60 => Rule::Hj75ShortGap,
            50 | 51 => Rule::NotOperating,
            _ => Rule::Measured,
        };
        assert_eq!(r.rule, want, "hour {h}");
    }
    // Auxiliary channels are never substituted and carry no mass.
    assert!(out.resolved.iter().all(|r| r.var != 3));
    assert!(
        out.hours
            .iter()
            .filter(|h| h.var == 3 || h.var == 0)
            .all(|h| h.measured_mass.is_nan())
    );
    // Mass: hours -> days -> totals, per mass channel.
    for var in [1u16, 2] {
        let hour_sum: f64 = out
            .resolved
            .iter()
            .filter(|r| r.var == var && r.mass.is_finite())
            .map(|r| r.mass)
            .sum();
        let days: Vec<_> = out.days.iter().filter(|d| d.var == var).collect();
        assert_eq!(days.len(), 3);
        let day_sum: f64 = days.iter().map(|d| d.mass()).sum();
        assert!((day_sum - hour_sum).abs() < 1e-9 * hour_sum);
        let t = p.totals().into_iter().find(|t| t.var == var).unwrap();
        assert!((t.cumulative - hour_sum).abs() < 1e-9 * hour_sum);
    }
    // The flow's day holds its volume; minutes' masses add up to valid hours' masses.
    let flow_days: f64 = out
        .days
        .iter()
        .filter(|d| d.var == 0)
        .map(|d| d.flow_total())
        .sum();
    let flow_hours: f64 = out
        .hours
        .iter()
        .filter(|h| h.var == 0 && h.flow_total.is_finite())
        .map(|h| h.flow_total)
        .sum();
    assert!((flow_days - flow_hours).abs() < 1e-9 * flow_hours);
    let h5 = T0_MS / 3_600_000 + 5;
    let co2_minutes: f64 = out
        .minutes
        .iter()
        .filter(|m| m.var == 2 && m.minute.div_euclid(60) == h5)
        .map(|m| m.mass)
        .sum();
    let co2_hour = out
        .hours
        .iter()
        .find(|h| h.var == 2 && h.hour == h5)
        .unwrap();
    assert!((co2_minutes - co2_hour.measured_mass).abs() < 1e-9 * co2_minutes);
    assert_eq!(p.held_hours(), 0);
}

#[test]
fn a_crash_anywhere_resumes_to_identical_results() {
    let mut straight = StackPipeline::new(config()).unwrap();
    let mut want = PipelineOutput::default();
    feed(&mut straight, 0..N, &mut want);
    finish(&mut straight, &mut want);
    let want_snap = straight.snapshot();
    for crash in [1, 180, 181, 5_401, 6_000, 9_001, 10_800, N - 1] {
        let mut first = StackPipeline::new(config()).unwrap();
        let mut got = PipelineOutput::default();
        feed(&mut first, 0..crash, &mut got);
        let snap = first.snapshot();
        let mut resumed = StackPipeline::restore(config(), &snap).unwrap();
        assert_eq!(resumed.snapshot(), snap, "crash {crash}");
        feed(&mut resumed, crash..N, &mut got);
        finish(&mut resumed, &mut got);
        // Debug text compares floats bit for bit, NaN equal to NaN.
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "crash {crash}");
        assert_eq!(resumed.snapshot(), want_snap);
    }
}

#[test]
fn a_snapshot_is_refused_under_another_configuration() {
    let p = StackPipeline::new(config()).unwrap();
    let mut other = config();
    other.channels[2].emits_mass = true;
    assert!(StackPipeline::restore(other, &p.snapshot()).is_err());
    let mut bytes = p.snapshot();
    bytes.truncate(bytes.len() - 3);
    assert!(StackPipeline::restore(config(), &bytes).is_err());
}

#[test]
fn minute_values_give_the_same_hours_as_one_sample_per_minute() {
    let mut a = StackPipeline::new(config()).unwrap();
    let mut b = StackPipeline::new(config()).unwrap();
    let (mut oa, mut ob) = (PipelineOutput::default(), PipelineOutput::default());
    for i in (0..N).step_by(3) {
        if let Some((t, [flow, rest @ ..])) = sample(i) {
            a.push_sample(t, flow, &rest, None, &mut oa).unwrap();
            b.push_minute(t / 60_000, flow, &rest, &mut ob).unwrap();
        }
    }
    finish(&mut a, &mut oa);
    finish(&mut b, &mut ob);
    assert_eq!(format!("{:?}", oa.hours), format!("{:?}", ob.hours));
    assert_eq!(format!("{:?}", oa.days), format!("{:?}", ob.days));
}

#[test]
fn watermarks_close_hours_and_later_data_is_late() {
    let mut p = StackPipeline::new(config()).unwrap();
    let mut out = PipelineOutput::default();
    feed(&mut p, 0..180, &mut out); // the first hour
    assert!(out.hours.is_empty());
    p.close_until(T0_MS + 3_600_000, &mut out).unwrap();
    assert_eq!(out.hours.len(), 4);
    assert!(
        out.hours
            .iter()
            .all(|h| h.value.status == HourStatus::Valid)
    );
    let (t, [flow, rest @ ..]) = sample(179).unwrap();
    assert!(p.push_sample(t, flow, &rest, None, &mut out).is_err());
    let (t, [flow, rest @ ..]) = sample(180).unwrap();
    p.push_sample(t, flow, &rest, None, &mut out).unwrap();
}

fn conditions_config(source: FlowSource) -> PipelineConfig {
    let mut c = PipelineConfig::new(
        Policy::hj75(),
        source,
        vec![
            ChannelSpec::mass(ChannelConfig::mg_per_m3()),
            ChannelSpec::auxiliary(), // temperature
            ChannelSpec::auxiliary(), // static pressure
            ChannelSpec::auxiliary(), // moisture
            ChannelSpec::auxiliary(), // velocity
        ],
    );
    c.conditions = ConditionChannels {
        temperature: Some(1),
        pressure: Some(2),
        moisture: Some(3),
        velocity: Some(4),
    };
    c
}

#[test]
fn flow_is_derived_with_appendix_d_formulas() {
    let n = |v| Some(Reading::normal(v));
    // 120 degC, -0.5 kPa static, 8 % moisture, 15 m/s at a 2.5 m2 duct, K_v 1.05.
    let ch = [n(30.0), n(120.0), n(-0.5), n(8.0), n(15.0)];
    // Hand computation of [29], [30], [31]:
    // Q_sh = 3600 * 2.5 * (1.05 * 15) = 141,750 m3/h;
    // Q_snh = 141,750 * 273/393 * (101,325 - 500)/101,325 * 0.92 = 90,143.125 m3/h.
    let hand = 141_750.0 * 273.0 / 393.0 * (100_825.0 / 101_325.0) * 0.92;
    let vel = StackPipeline::new(conditions_config(FlowSource::Velocity {
        k_v: 1.05,
        area_m2: 2.5,
        atmospheric_pa: STANDARD_PRESSURE_PA,
    }))
    .unwrap();
    let q = vel.derive_flow(None, &ch).unwrap();
    assert_eq!(q.flag, DataFlag::Normal);
    assert!((q.value - hand).abs() < 1e-6, "{} vs {hand}", q.value);
    assert!((q.value - 90_143.125).abs() < 1e-3);
    // Actual flow in m3/s: the same conversion with scale 3600.
    let act = StackPipeline::new(conditions_config(FlowSource::Actual {
        scale: 3_600.0,
        atmospheric_pa: STANDARD_PRESSURE_PA,
    }))
    .unwrap();
    let q = act.derive_flow(n(141_750.0 / 3_600.0), &ch).unwrap();
    assert!((q.value - hand).abs() < 1e-6);
    let direct = dry_standard_flow_m3_h(141_750.0, 120.0, STANDARD_PRESSURE_PA, -500.0, 0.08);
    assert!((q.value - direct.unwrap()).abs() < 1e-9);
    // A missing or invalid condition invalidates the flow with its flag.
    let mut bad = ch;
    bad[3] = None;
    assert_eq!(
        act.derive_flow(n(10.0), &bad).unwrap().flag,
        DataFlag::Fault
    );
    bad[3] = Some(Reading::new(8.0, DataFlag::Calibration));
    let q = act.derive_flow(n(10.0), &bad).unwrap();
    assert_eq!(q.flag, DataFlag::Calibration);
    assert!(q.value.is_nan());
    // A stopped flow stays stopped.
    let q = act
        .derive_flow(Some(Reading::new(0.0, DataFlag::Stopped)), &ch)
        .unwrap();
    assert_eq!(q.flag, DataFlag::Stopped);
    // Dry standard flow in m3/s is only scaled.
    let dry = StackPipeline::new(conditions_config(FlowSource::DryStandard {
        scale: 3_600.0,
    }))
    .unwrap();
    assert_eq!(
        dry.derive_flow(n(5.331), &ch).unwrap().value,
        5.331 * 3_600.0
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = conditions_config(FlowSource::Velocity {
        k_v: 1.0,
        area_m2: 1.0,
        atmospheric_pa: STANDARD_PRESSURE_PA,
    });
    c.conditions.velocity = None;
    assert!(StackPipeline::new(c).is_err());
    let mut c = conditions_config(FlowSource::DryStandard { scale: 0.0 });
    assert!(StackPipeline::new(c.clone()).is_err());
    c.flow_source = FlowSource::DryStandard { scale: 1.0 };
    c.conditions.temperature = Some(0); // a mass channel
    assert!(StackPipeline::new(c).is_err());
}

/// One channel, one sample per minute with the given values and flags.
fn quality_run(values: &[f64], flags: &[DataFlag], limits: QualityLimits, flat: u32) -> Vec<u8> {
    let mut c = PipelineConfig::new(
        Policy::hj75(),
        FlowSource::DryStandard { scale: 1.0 },
        vec![ChannelSpec {
            quality: limits,
            ..ChannelSpec::mass(ChannelConfig::mg_per_m3())
        }],
    );
    c.flatline_minutes = flat;
    c.flow_quality = QualityLimits {
        flatline_tolerance: None,
        ..QualityLimits::default()
    };
    let mut p = StackPipeline::new(c).unwrap();
    let mut out = PipelineOutput::default();
    for (i, (&v, &f)) in values.iter().zip(flags).enumerate() {
        let t = T0_MS + i as i64 * 60_000;
        let ch = [Some(Reading::new(v, f))];
        p.push_sample(
            t,
            Some(Reading::normal(1_000.0 + i as f64)),
            &ch,
            None,
            &mut out,
        )
        .unwrap();
    }
    p.close_until(T0_MS + values.len() as i64 * 60_000, &mut out)
        .unwrap();
    out.minutes
        .iter()
        .filter(|m| m.var == 1)
        .map(|m| m.quality)
        .collect()
}

proptest! {
    /// Online flags equal the batch functions: a flat minute is one at or after the
    /// `min_len`-th of a batch run; a jump is an index of `implausible_jumps`.
    #[test]
    fn online_quality_signals_match_the_batch_functions(
        raw in prop::collection::vec((0u8..4, prop::bool::weighted(0.1)), 2..200),
        flat in 2u32..6,
    ) {
        let values: Vec<f64> = raw.iter().map(|(v, _)| f64::from(*v) * 10.0).collect();
        let flags: Vec<DataFlag> = raw
            .iter()
            .map(|(_, bad)| if *bad { DataFlag::Fault } else { DataFlag::Normal })
            .collect();
        let limits = QualityLimits {
            flatline_tolerance: Some(0.0),
            max_step_abs: Some(15.0),
            max_step_rel: 0.5,
        };
        let got = quality_run(&values, &flags, limits, flat);
        let series: Vec<f64> = values
            .iter()
            .zip(&flags)
            .map(|(v, f)| if *f == DataFlag::Normal { *v } else { f64::NAN })
            .collect();
        let mut want = vec![0u8; values.len()];
        for r in flatline_runs(&series, flat as usize, 0.0) {
            for w in &mut want[r.start + flat as usize - 1..r.start + r.len] {
                *w |= Q_FLATLINE;
            }
        }
        for i in implausible_jumps(&series, 15.0, 0.5) {
            want[i] |= Q_JUMP;
        }
        prop_assert_eq!(got, want);
    }
}

#[test]
fn calibration_minutes_and_hours_are_marked() {
    let values = vec![5.0; 60];
    let mut flags = vec![DataFlag::Normal; 60];
    flags[10] = DataFlag::Calibration;
    let limits = QualityLimits {
        flatline_tolerance: None,
        ..QualityLimits::default()
    };
    let q = quality_run(&values, &flags, limits, 0);
    assert_eq!(q[10], Q_CALIBRATION);
    assert_eq!(q.iter().filter(|b| **b != 0).count(), 1);
}

#[test]
fn repeated_packets_are_marked_unless_the_unit_is_stopped() {
    let mut c = config();
    c.repeat_packets = 3;
    let mut p = StackPipeline::new(c).unwrap();
    let mut out = PipelineOutput::default();
    let n = DataFlag::Normal;
    let s = DataFlag::Stopped;
    // Minute 0: fingerprints 1, 1 (run 2). Minute 1: 1 (run 3: repeated). Minutes 2-3: the
    // unit stops and sends the same packet four times: not a repeat. Minute 4: 2, 2, 2.
    let script = [
        (0, 1, n),
        (0, 1, n),
        (1, 1, n),
        (2, 7, s),
        (2, 7, s),
        (3, 7, s),
        (3, 7, s),
        (4, 2, n),
        (4, 2, n),
        (4, 2, n),
    ];
    for (k, (minute, fp, flag)) in script.into_iter().enumerate() {
        let t = T0_MS + minute * 60_000 + k as i64 * 100;
        let [flow, rest @ ..] = [Some(Reading::new(1.0, flag)); 4];
        p.push_sample(t, flow, &rest, Some(fp), &mut out).unwrap();
    }
    p.close_until(T0_MS + 5 * 60_000, &mut out).unwrap();
    let by_minute: Vec<u8> = out
        .minutes
        .iter()
        .filter(|m| m.var == 0)
        .map(|m| m.quality & Q_REPEATED)
        .collect();
    assert_eq!(by_minute, vec![0, Q_REPEATED, 0, 0, Q_REPEATED]);
    // Every variable of the minute is marked; the hour carries it too.
    assert!(
        out.minutes
            .iter()
            .filter(|m| m.minute == T0_MS / 60_000 + 1)
            .all(|m| m.quality & Q_REPEATED != 0)
    );
}
