//! Substitution of invalid hours: every HJ 75 capture-rate tier and every Part 75 PMA tier at
//! its boundary (capture exactly 90 % / 75 %, gap exactly 24 h / 8 h, PMA exactly 95/90/80 %,
//! 720 QA hours), not-operating hours, provisional values, totals and resumable state.

use carbonstream_core::cems::substitution::MAX_OPEN_GAP_HOURS;
use carbonstream_core::cems::{CemsError, HourStatus, Policy, ResolvedHour, Rule, Substitutor};
use proptest::prelude::*;

const H0: i64 = 400_000;
const MPV: f64 = 999.0;
use HourStatus::{Invalid as I, NotOperating as F, Valid as V};

struct Feed {
    s: Substitutor,
    next: i64,
    out: Vec<ResolvedHour>,
}

impl Feed {
    fn new(policy: Policy) -> Self {
        Self {
            s: Substitutor::new(policy, MPV, 10_000).unwrap(),
            next: H0,
            out: Vec::new(),
        }
    }
    fn push(&mut self, value: f64, status: HourStatus) -> &mut Self {
        let r = self.s.push(self.next, value, status).unwrap();
        self.out.extend(r);
        self.next += 1;
        self
    }
    fn many(&mut self, n: usize, value: f64, status: HourStatus) -> &mut Self {
        for _ in 0..n {
            self.push(value, status);
        }
        self
    }
    fn values(&mut self, values: impl IntoIterator<Item = f64>) -> &mut Self {
        for v in values {
            self.push(v, V);
        }
        self
    }
    /// Opens a gap of `n` invalid hours, closes it with `after`, returns the gap's hours.
    fn gap(&mut self, n: usize, after: f64) -> Vec<ResolvedHour> {
        let start = self.out.len();
        self.many(n, f64::NAN, I);
        assert_eq!(self.out.len(), start, "a gap is held until it ends");
        self.push(after, V);
        let got = self.out[start..self.out.len() - 1].to_vec();
        assert_eq!(got.len(), n);
        got
    }
}

fn only(hours: &[ResolvedHour]) -> (f64, Rule, u32) {
    let h = hours[0];
    assert!(
        hours
            .iter()
            .all(|x| x.value.to_bits() == h.value.to_bits() && x.rule == h.rule)
    );
    (h.value, h.rule, h.gap_hours)
}

/// HJ 75 history with capture exactly `valid/(valid+invalid)`: `invalid` hours first (a gap with
/// no history), then `peak` followed by `valid - 1` hours of 1.0 (so the lookback length decides
/// whether `peak` is seen).
fn hj75_history(invalid: usize, valid: usize, peak: f64) -> Feed {
    let mut f = Feed::new(Policy::hj75());
    f.many(invalid, f64::NAN, I)
        .push(peak, V)
        .many(valid - 1, 1.0, V);
    f
}

#[test]
fn hj75_capture_90_short_gap_uses_the_180_hour_max() {
    // 270 valid of 300: exactly 90 %. The peak (100) is 270 valid hours back.
    let mut f = hj75_history(30, 270, 100.0);
    let g = f.gap(24, 2.0);
    assert_eq!(only(&g), (1.0, Rule::Hj75ShortGap, 24));
    assert_eq!(g[0].availability_pct, 90.0);
    assert_eq!(g[0].status, HourStatus::Invalid);
}

#[test]
fn hj75_capture_90_gap_of_25_uses_the_720_hour_max() {
    let mut f = hj75_history(30, 270, 100.0);
    assert_eq!(only(&f.gap(25, 2.0)), (100.0, Rule::Hj75LongGap, 25));
}

#[test]
fn hj75_capture_just_below_90_uses_the_2160_hour_max_even_for_short_gaps() {
    let mut f = hj75_history(31, 269, 100.0);
    let g = f.gap(1, 2.0);
    assert_eq!(only(&g), (100.0, Rule::Hj75LowCapture, 1));
    assert!((g[0].availability_pct - 269.0 / 3.0).abs() < 1e-9);
}

#[test]
fn hj75_capture_exactly_75_and_below() {
    // 750 of 1000 valid: 75 %. The peak is 750 valid hours back: beyond 720, within 2160.
    let mut f = hj75_history(250, 750, 500.0);
    assert_eq!(only(&f.gap(3, 2.0)), (500.0, Rule::Hj75LowCapture, 3));
    let mut f = hj75_history(251, 749, 500.0);
    let g = f.gap(3, 2.0);
    assert_eq!(only(&g), (500.0, Rule::Hj75BelowMinimumCapture, 3));
    assert!(g[0].availability_pct < 75.0);
}

#[test]
fn hj75_without_history_uses_the_maximum_potential_value() {
    let mut f = Feed::new(Policy::hj75());
    assert_eq!(only(&f.gap(5, 3.0)), (MPV, Rule::NoHistory, 5));
    let mut s = Substitutor::new(Policy::hj75(), f64::NAN, 10).unwrap();
    s.push(H0, f64::NAN, I).unwrap();
    let out = s.push(H0 + 1, 1.0, V).unwrap();
    assert!(out[0].value.is_nan() && out[0].rule == Rule::NoHistory);
}

#[test]
fn not_operating_hours_neither_count_against_capture_nor_lengthen_a_gap() {
    let mut f = Feed::new(Policy::hj75());
    f.many(1, f64::NAN, I)
        .values((1..=9).map(f64::from))
        .many(100, 0.0, F);
    assert_eq!(
        f.s.availability_pct(),
        90.0,
        "stopped hours are not in the denominator"
    );
    let start = f.out.len();
    f.many(12, f64::NAN, I)
        .many(5, 0.0, F)
        .many(12, f64::NAN, I)
        .push(4.0, V);
    let g = &f.out[start..];
    assert_eq!(g.len(), 30);
    assert_eq!(
        g.iter().map(|h| h.hour).collect::<Vec<_>>(),
        (0..30).map(|i| f.next - 30 + i).collect::<Vec<_>>()
    );
    for h in &g[..29] {
        if h.status == F {
            assert_eq!((h.rule, h.value), (Rule::NotOperating, 0.0));
        } else {
            assert_eq!(
                (h.value, h.rule, h.gap_hours),
                (9.0, Rule::Hj75ShortGap, 24)
            );
        }
    }
    assert_eq!(g[29].rule, Rule::Measured);
}

/// Part 75 history: `invalid` hours, then `valid` QA hours with values `v(i)`.
fn p75_history(invalid: usize, valid: usize, v: impl Fn(usize) -> f64) -> Feed {
    let mut f = Feed::new(Policy::part75());
    f.many(invalid, f64::NAN, I).values((0..valid).map(v));
    f
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((p / 100.0) * v.len() as f64).ceil() as usize - 1]
}

fn cyc(i: usize) -> f64 {
    (i % 100) as f64
}

#[test]
fn part75_before_720_qa_hours_uses_hour_before_and_after() {
    let mut f = p75_history(0, 719, |_| 5.0);
    assert_eq!(only(&f.gap(30, 7.0)), (6.0, Rule::Part75Startup, 30));
    // The initial gap of a new monitor has no hour before: the hour after alone.
    let mut f = Feed::new(Policy::part75());
    assert_eq!(only(&f.gap(3, 8.0)), (8.0, Rule::Part75Startup, 3));
    // With 720 QA hours the tiers apply (PMA 100 %, gap > 24: 90th percentile or HB/HA).
    let mut f = p75_history(0, 720, cyc);
    let hb = cyc(719);
    let p90 = percentile((0..720).map(cyc).collect(), 90.0);
    let g = f.gap(30, 7.0);
    assert_eq!(
        only(&g),
        (p90.max((hb + 7.0) / 2.0), Rule::Part75Percentile90, 30)
    );
    assert_eq!(g[0].availability_pct, 100.0);
}

#[test]
fn part75_pma_exactly_95_gap_24_and_25() {
    // 760 QA hours of 800 operating: exactly 95 %.
    let mut f = p75_history(40, 760, cyc);
    let hb = cyc(759);
    let g = f.gap(24, 11.0);
    assert_eq!(
        only(&g),
        ((hb + 11.0) / 2.0, Rule::Part75HourBeforeAfter, 24)
    );
    assert_eq!(g[0].availability_pct, 95.0);
    let mut f = p75_history(40, 760, cyc);
    let lookback: Vec<f64> = (40..760).map(cyc).collect();
    let p90 = percentile(lookback, 90.0);
    assert_eq!(
        only(&f.gap(25, 11.0)),
        (p90.max((hb + 11.0) / 2.0), Rule::Part75Percentile90, 25)
    );
}

#[test]
fn part75_the_greater_of_percentile_and_hb_ha() {
    let mut f = p75_history(0, 800, |i| if i == 799 { 1_000.0 } else { cyc(i) });
    assert_eq!(
        only(&f.gap(25, 1_000.0)),
        (1_000.0, Rule::Part75Percentile90, 25)
    );
}

#[test]
fn part75_pma_between_90_and_95_gap_8_and_9() {
    // 759 of 800: 94.875 %.
    let mut f = p75_history(41, 759, cyc);
    let hb = cyc(758);
    assert_eq!(
        only(&f.gap(8, 3.0)),
        ((hb + 3.0) / 2.0, Rule::Part75HourBeforeAfter, 8)
    );
    let mut f = p75_history(41, 759, cyc);
    let p95 = percentile((39..759).map(cyc).collect(), 95.0);
    assert_eq!(
        only(&f.gap(9, 3.0)),
        (p95.max((hb + 3.0) / 2.0), Rule::Part75Percentile95, 9)
    );
    // Exactly 90 %: still this tier.
    let mut f = p75_history(80, 720, cyc);
    let g = f.gap(9, 3.0);
    assert_eq!(
        (g[0].rule, g[0].availability_pct),
        (Rule::Part75Percentile95, 90.0)
    );
}

#[test]
fn part75_pma_below_90_uses_the_lookback_maximum_and_below_80_the_maximum_potential() {
    // 720 of 801: 89.9 %. The 720-hour lookback holds the maximum 99.
    let mut f = p75_history(81, 720, cyc);
    assert_eq!(only(&f.gap(1, 3.0)), (99.0, Rule::Part75LookbackMax, 1));
    // Exactly 80 %.
    let mut f = p75_history(180, 720, |i| if i == 0 { 500.0 } else { 1.0 });
    let g = f.gap(2, 3.0);
    assert_eq!(
        (only(&g), g[0].availability_pct),
        ((500.0, Rule::Part75LookbackMax, 2), 80.0)
    );
    // 79.9 %.
    let mut f = p75_history(181, 720, cyc);
    assert_eq!(only(&f.gap(2, 3.0)), (MPV, Rule::Part75MaxPotential, 2));
}

#[test]
fn provisional_values_for_an_open_gap_and_final_ones_when_it_ends() {
    let mut f = p75_history(0, 720, |_| 4.0);
    f.many(3, f64::NAN, I);
    assert_eq!(f.s.open_gap_hours(), 3);
    let prov = f.s.provisional();
    assert_eq!(prov.len(), 3);
    assert!(
        prov.iter()
            .all(|h| h.provisional && h.rule == Rule::Part75HourBeforeAfter && h.value == 4.0)
    );
    f.push(8.0, V);
    let done = &f.out[f.out.len() - 4..f.out.len() - 1];
    assert!(done.iter().all(|h| !h.provisional && h.value == 6.0));
    assert!(f.s.provisional().is_empty());
}

#[test]
fn skipped_hours_are_invalid_and_order_is_enforced() {
    let mut s = Substitutor::new(Policy::hj75(), MPV, 100).unwrap();
    s.push(H0, 5.0, V).unwrap();
    let out = s.push(H0 + 4, 6.0, V).unwrap();
    assert_eq!(
        out.iter().map(|h| (h.hour, h.rule)).collect::<Vec<_>>(),
        vec![
            (H0 + 1, Rule::Hj75ShortGap),
            (H0 + 2, Rule::Hj75ShortGap),
            (H0 + 3, Rule::Hj75ShortGap),
            (H0 + 4, Rule::Measured),
        ]
    );
    assert_eq!(
        s.push(H0 + 4, 1.0, V).unwrap_err(),
        CemsError::LateHour {
            hour: H0 + 4,
            last: H0 + 4
        }
    );
    assert!(matches!(
        s.push(H0 + 1_000, 1.0, V),
        Err(CemsError::TimeJump { .. })
    ));
    // A "valid" hour without a finite value is invalid.
    s.push(H0 + 5, f64::NAN, V).unwrap();
    assert_eq!(s.open_gap_hours(), 1);
}

#[test]
fn a_gap_that_never_ends_is_resolved_at_the_memory_bound() {
    let mut f = hj75_history(0, 10, 5.0);
    let start = f.out.len();
    f.many(MAX_OPEN_GAP_HOURS - 1, f64::NAN, I).many(1, 0.0, F);
    assert_eq!(f.out.len(), start, "still held");
    assert_eq!(f.s.open_gap_hours() as usize, MAX_OPEN_GAP_HOURS - 1);
    f.many(1, f64::NAN, I);
    let g = &f.out[start..];
    assert_eq!(g.len(), MAX_OPEN_GAP_HOURS + 1);
    assert_eq!(f.s.open_gap_hours(), 0);
    // No hour after: valued from the history alone (a >= 90 %, long gap: max of 720).
    assert!(
        g.iter()
            .filter(|h| h.status == I)
            .all(|h| h.value == 5.0 && h.rule == Rule::Hj75LongGap)
    );
    assert_eq!(g[MAX_OPEN_GAP_HOURS - 1].rule, Rule::NotOperating);
    assert_eq!(
        g.iter().map(|h| h.hour).collect::<Vec<_>>(),
        (g[0].hour..g[0].hour + g.len() as i64).collect::<Vec<_>>()
    );
}

#[test]
fn totals_accumulate_measured_and_substituted() {
    let mut f = Feed::new(Policy::hj75());
    f.values([2.0, 3.0]).many(2, 0.0, F);
    f.gap(2, 1.0);
    let t = f.s.totals();
    assert_eq!(
        (t.measured_hours, t.substituted_hours, t.not_operating_hours),
        (3, 2, 2)
    );
    assert_eq!(
        (t.measured_sum, t.substituted_sum, t.total()),
        (6.0, 6.0, 12.0)
    );
}

#[test]
fn snapshot_is_rejected_under_other_rules() {
    let f = hj75_history(3, 20, 5.0);
    let bytes = f.s.snapshot();
    assert!(matches!(
        Substitutor::restore(Policy::part75(), MPV, 10_000, &bytes),
        Err(CemsError::IncompatibleSnapshot(_))
    ));
    assert!(matches!(
        Substitutor::restore(Policy::hj75(), 1.0, 10_000, &bytes),
        Err(CemsError::IncompatibleSnapshot(_))
    ));
    assert!(matches!(
        Substitutor::restore(Policy::hj75(), MPV, 10_000, &bytes[..40]),
        Err(CemsError::CorruptSnapshot(_))
    ));
}

fn arb_hours() -> impl Strategy<Value = Vec<(u8, f64, u8)>> {
    // (status 0 valid / 1 invalid / 2 not operating, value, hours skipped before)
    prop::collection::vec(
        (
            0u8..3,
            0.0f64..100.0,
            prop::sample::select(vec![0u8, 0, 0, 0, 1, 3]),
        ),
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every hour comes out exactly once, in order; measured values are untouched; a snapshot at
    /// any point resumes to the identical output and state.
    #[test]
    fn every_hour_once_in_order_and_resumable(hours in arb_hours(), cut in 0usize..400, part75 in any::<bool>()) {
        let policy = if part75 { Policy::part75() } else { Policy::hj75() };
        let mut inputs = Vec::new();
        let mut h = H0;
        for (st, v, skip) in &hours {
            h += i64::from(*skip);
            let status = [V, I, F][*st as usize];
            inputs.push((h, *v, status));
            h += 1;
        }
        let run = |s: &mut Substitutor, xs: &[(i64, f64, HourStatus)]| {
            xs.iter().flat_map(|&(h, v, st)| s.push(h, v, st).unwrap()).collect::<Vec<_>>()
        };
        let mut a = Substitutor::new(policy, MPV, 10_000).unwrap();
        let all = run(&mut a, &inputs);
        let cut = cut.min(inputs.len());
        let mut b = Substitutor::new(policy, MPV, 10_000).unwrap();
        let mut got = run(&mut b, &inputs[..cut]);
        let bytes = b.snapshot();
        let mut c = Substitutor::restore(policy, MPV, 10_000, &bytes).unwrap();
        prop_assert_eq!(c.snapshot(), bytes);
        got.extend(run(&mut c, &inputs[cut..]));
        prop_assert_eq!(format!("{all:?}"), format!("{got:?}"));
        prop_assert_eq!(a.snapshot(), c.snapshot());

        // Resolved hours: consecutive, each once, up to the last valid hour (later ones held).
        let pending = a.provisional();
        let seen: Vec<i64> = all.iter().chain(&pending).map(|r| r.hour).collect();
        if let (Some(first), Some(last)) = (inputs.first(), inputs.last()) {
            prop_assert_eq!(seen, (first.0..=last.0).collect::<Vec<_>>());
        }
        for r in &all {
            if let Some(&(_, v, st)) = inputs.iter().find(|x| x.0 == r.hour) {
                match st {
                    V => prop_assert!(r.rule == Rule::Measured && r.value == v),
                    F => prop_assert_eq!(r.rule, Rule::NotOperating),
                    I => prop_assert!(r.rule.is_substituted()),
                }
            } else {
                prop_assert!(r.rule.is_substituted(), "a skipped hour is substituted");
            }
        }
        let measured: f64 = all.iter().filter(|r| r.rule == Rule::Measured).map(|r| r.value).sum();
        prop_assert_eq!(a.totals().measured_sum, measured);
    }
}
