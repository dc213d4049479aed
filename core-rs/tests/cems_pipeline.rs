//! The whole chain for one stack, as the dataflow will run it: samples -> minutes -> hours ->
//! substitution of the hourly mass -> days and period totals. Checks that a crash at any point,
//! resumed from the snapshots of every stage, gives exactly the same results, and that the
//! emission is conserved from hours to days to totals.

use std::collections::BTreeMap;

use carbonstream_core::cems::{
    ChannelConfig, ConcentrationUnit, DayAggregator, DayHour, DayRecord, HourAggregator, HourKind,
    HourStatus, MinuteAggregator, PeriodTotals, Policy, Reading, ResolvedHour, Rule, StackConfig,
    StackHour, StackSample, Substitutor,
};
use carbonstream_core::hj212::DataFlag;

const CST: i32 = 480;
const T0_MS: i64 = 1_704_038_400_000; // 2024-01-01 00:00 +08:00
const HOURS: i64 = 72;
const STEP_MS: i64 = 20_000;

fn config() -> StackConfig {
    StackConfig::new(
        Policy::hj75(),
        vec![
            ChannelConfig::mg_per_m3().with_upper_limit(500.0), // SO2
            ChannelConfig::from_unit(ConcentrationUnit::CO2_PERCENT),
        ],
    )
}

/// A stack at ~50,000 m3/h with a diurnal swing; SO2 analyser fault in hours 30-33; unit
/// stopped in hours 50-51; a comms blackout (no samples) in hour 60.
fn sample(i: i64) -> Option<(i64, [Option<Reading>; 3])> {
    let t = T0_MS + i * STEP_MS;
    let hour = (t - T0_MS) / 3_600_000;
    if hour == 60 {
        return None;
    }
    let phase = (i as f64 / 180.0 * std::f64::consts::PI / 12.0).sin();
    let flow = 50_000.0 + 5_000.0 * phase;
    let so2 = 30.0 + 10.0 * phase;
    let co2 = 11.0 + 0.5 * phase;
    let r = |v: f64, flag| Some(Reading::new(v, flag));
    Some(if (50..52).contains(&hour) {
        (
            t,
            [
                r(0.0, DataFlag::Stopped),
                r(0.0, DataFlag::Stopped),
                r(0.0, DataFlag::Stopped),
            ],
        )
    } else if (30..34).contains(&hour) {
        (
            t,
            [
                r(flow, DataFlag::Normal),
                r(0.0, DataFlag::Fault),
                r(co2, DataFlag::Normal),
            ],
        )
    } else {
        (
            t,
            [
                r(flow, DataFlag::Normal),
                r(so2, DataFlag::Normal),
                r(co2, DataFlag::Normal),
            ],
        )
    })
}

#[derive(Clone)]
struct Pipeline {
    minutes: MinuteAggregator,
    hours: HourAggregator,
    subst: Vec<Substitutor>,
    days: Vec<DayAggregator>,
    totals: Vec<PeriodTotals>,
    /// Closed hours waiting for their substituted mass (the dataflow keeps these in its own
    /// state; here they are part of what a snapshot must carry).
    held: BTreeMap<i64, StackHour>,
}

#[derive(Default, Debug)]
struct Outputs {
    hours: Vec<StackHour>,
    resolved: Vec<Vec<ResolvedHour>>,
    days: Vec<Vec<DayRecord>>,
}

impl Pipeline {
    fn new() -> Self {
        let n = config().channels.len();
        Self {
            minutes: MinuteAggregator::new(config(), 1).unwrap(),
            hours: HourAggregator::new(config()).unwrap(),
            subst: (0..n)
                .map(|_| Substitutor::new(Policy::hj75(), f64::NAN, 8_784).unwrap())
                .collect(),
            days: (0..n)
                .map(|_| DayAggregator::new(Policy::hj75(), CST).unwrap())
                .collect(),
            totals: (0..n).map(|_| PeriodTotals::new(CST)).collect(),
            held: BTreeMap::new(),
        }
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        let mut v = vec![self.minutes.snapshot(), self.hours.snapshot()];
        v.extend(self.subst.iter().map(Substitutor::snapshot));
        v.extend(self.days.iter().map(DayAggregator::snapshot));
        v.extend(self.totals.iter().map(PeriodTotals::snapshot));
        v
    }

    fn restore(snap: &[Vec<u8>], held: BTreeMap<i64, StackHour>) -> Self {
        let n = config().channels.len();
        Self {
            minutes: MinuteAggregator::restore(config(), 1, &snap[0]).unwrap(),
            hours: HourAggregator::restore(config(), &snap[1]).unwrap(),
            subst: (0..n)
                .map(|c| {
                    Substitutor::restore(Policy::hj75(), f64::NAN, 8_784, &snap[2 + c]).unwrap()
                })
                .collect(),
            days: (0..n)
                .map(|c| DayAggregator::restore(Policy::hj75(), CST, &snap[2 + n + c]).unwrap())
                .collect(),
            totals: (0..n)
                .map(|c| PeriodTotals::restore(CST, &snap[2 + 2 * n + c]).unwrap())
                .collect(),
            held,
        }
    }

    fn on_hours(&mut self, hours: Vec<StackHour>, out: &mut Outputs) {
        for h in hours {
            self.held.insert(h.hour, h.clone());
            out.hours.push(h.clone());
            for (c, ch) in h.channels.iter().enumerate() {
                let resolved = self.subst[c].push(h.hour, ch.mass, ch.mass_status).unwrap();
                for r in resolved {
                    let src = &self.held[&r.hour];
                    let kind = match r.rule {
                        Rule::Measured => HourKind::Measured,
                        Rule::NotOperating => HourKind::NotOperating,
                        _ if r.value.is_finite() => HourKind::Substituted,
                        _ => HourKind::Missing,
                    };
                    let day_hour = DayHour {
                        hour: r.hour,
                        conc: src.channels[c].conc.value,
                        flow_total: src.flow_total,
                        mass: r.value,
                        kind,
                    };
                    out.days[c].extend(self.days[c].push(&day_hour).unwrap());
                    self.totals[c]
                        .push(r.hour, r.value, r.rule.is_substituted())
                        .unwrap();
                    out.resolved[c].push(r);
                }
            }
        }
        // Hours resolved by every channel are no longer needed.
        let done = self
            .subst
            .iter()
            .map(|s| s.open_gap_hours())
            .max()
            .unwrap_or(0);
        if done == 0 {
            self.held.clear();
        }
    }

    fn feed(&mut self, range: std::ops::Range<i64>, out: &mut Outputs) {
        for i in range {
            let Some((t, [flow, so2, co2])) = sample(i) else {
                continue;
            };
            let minute = self
                .minutes
                .push(&StackSample {
                    t_ms: t,
                    flow,
                    channels: &[so2, co2],
                })
                .unwrap();
            if let Some(m) = minute {
                let hours = self.hours.push(&m.as_stack_minute()).unwrap();
                self.on_hours(hours, out);
            }
        }
    }

    fn finish(&mut self, out: &mut Outputs) {
        let end_ms = T0_MS + HOURS * 3_600_000;
        if let Some(m) = self.minutes.close_until(end_ms) {
            let hours = self.hours.push(&m.as_stack_minute()).unwrap();
            self.on_hours(hours, out);
        }
        let hours = self.hours.close_until(end_ms / 60_000).unwrap();
        self.on_hours(hours, out);
        for (c, d) in self.days.iter_mut().enumerate() {
            out.days[c].extend(d.close_until(end_ms / 3_600_000));
        }
    }
}

fn outputs() -> Outputs {
    Outputs {
        hours: vec![],
        resolved: vec![vec![], vec![]],
        days: vec![vec![], vec![]],
    }
}

const N: i64 = HOURS * 3_600_000 / STEP_MS;

/// Asserts equality, reporting only the first differing record (the full dump is unreadable).
fn first_difference(got: &Outputs, want: &Outputs, crash: i64) {
    // Compared through Debug text: bit-exact for floats, and NaN equals NaN.
    let pairs = |a: &[StackHour], b: &[StackHour]| {
        a.iter()
            .zip(b)
            .position(|(x, y)| format!("{x:?}") != format!("{y:?}"))
    };
    if let Some(i) = pairs(&got.hours, &want.hours) {
        panic!(
            "crash {crash}: hour {i}: {:?} vs {:?}",
            got.hours[i], want.hours[i]
        );
    }
    assert_eq!(
        got.hours.len(),
        want.hours.len(),
        "crash {crash}: hour count"
    );
    for c in 0..2 {
        let r = got.resolved[c]
            .iter()
            .zip(&want.resolved[c])
            .position(|(x, y)| format!("{x:?}") != format!("{y:?}"));
        if let Some(i) = r {
            panic!(
                "crash {crash}: channel {c} resolved {i}: {:?} vs {:?}",
                got.resolved[c][i], want.resolved[c][i]
            );
        }
        assert_eq!(
            got.resolved[c].len(),
            want.resolved[c].len(),
            "crash {crash}: resolved count"
        );
        let d = got.days[c]
            .iter()
            .zip(&want.days[c])
            .position(|(x, y)| format!("{x:?}") != format!("{y:?}"));
        if let Some(i) = d {
            panic!(
                "crash {crash}: channel {c} day {i}: {:?} vs {:?}",
                got.days[c][i], want.days[c][i]
            );
        }
        assert_eq!(
            got.days[c].len(),
            want.days[c].len(),
            "crash {crash}: day count"
        );
    }
}

#[test]
fn the_chain_conserves_mass_and_applies_the_rules() {
    let mut p = Pipeline::new();
    let mut out = outputs();
    p.feed(0..N, &mut out);
    p.finish(&mut out);
    assert_eq!(out.hours.len(), HOURS as usize);
    let so2 = &out.resolved[0];
    assert_eq!(so2.len(), HOURS as usize);
    // The fault (hours 30-33) and the blackout (hour 60) are substituted (capture >= 90 %,
    // short gaps: max of the last 180 valid hours); the stop (50-51) is not.
    for r in so2 {
        let h = r.hour - T0_MS / 3_600_000;
        let want = match h {
            30..=33 | 60 => Rule::Hj75ShortGap,
            50 | 51 => Rule::NotOperating,
            _ => Rule::Measured,
        };
        assert_eq!(r.rule, want, "hour {h}");
    }
    let max_before: f64 = so2[..30].iter().map(|r| r.value).fold(f64::MIN, f64::max);
    assert_eq!(so2[30].value, max_before);
    // CO2 is unaffected by the SO2 fault.
    assert!(
        out.resolved[1][30..34]
            .iter()
            .all(|r| r.rule == Rule::Measured)
    );
    // Days: 3 local days, all valid for CO2; mass conserved hours -> days -> totals.
    for c in 0..2 {
        let days = &out.days[c];
        assert_eq!(days.len(), 3);
        let day_sum: f64 = days.iter().map(|d| d.mass).sum();
        let hour_sum: f64 = out.resolved[c]
            .iter()
            .map(|r| if r.value.is_finite() { r.value } else { 0.0 })
            .sum();
        assert!((day_sum - hour_sum).abs() < 1e-9 * hour_sum);
        assert!((p.totals[c].cumulative() - hour_sum).abs() < 1e-9 * hour_sum);
        assert!((p.subst[c].totals().total() - hour_sum).abs() < 1e-9 * hour_sum);
    }
    assert!(out.days[1].iter().all(|d| d.status == HourStatus::Valid));
    assert_eq!(out.days[0][1].substituted_hours, 4);
    // CO2 of an ordinary hour: ~11 % x ~50,000 m3/h x 1.9635 kg/m3 ~ 10.8 t.
    let co2_h = out.resolved[1][5].value;
    assert!((9_000.0..13_000.0).contains(&co2_h), "{co2_h}");
}

#[test]
fn a_crash_anywhere_resumes_to_identical_results() {
    let mut straight = Pipeline::new();
    let mut want = outputs();
    straight.feed(0..N, &mut want);
    straight.finish(&mut want);
    let want_snap = straight.snapshot();

    for crash in [1, 179, 180, 181, 5_000, 5_401, 6_000, 9_001, 10_800, N - 1] {
        let mut first = Pipeline::new();
        let mut got = outputs();
        first.feed(0..crash, &mut got);
        let snap = first.snapshot();
        let mut resumed = Pipeline::restore(&snap, first.held.clone());
        assert_eq!(resumed.snapshot(), snap);
        resumed.feed(crash..N, &mut got);
        resumed.finish(&mut got);
        first_difference(&got, &want, crash);
        assert_eq!(resumed.snapshot(), want_snap);
    }
}
