//! Substitution of invalid hours, per series (one variable of one stack: a concentration, the
//! flow, or an hourly mass).
//!
//! Hours go in in order with their status; resolved hours come out in the same order, each
//! marked with the [`Rule`] that produced its value. An invalid hour cannot always be resolved
//! when it arrives: the length of its gap and the hour after it (Part 75 HB/HA) are only known
//! when the gap ends. So invalid hours are held until the next valid hour and then resolved
//! together; [`Substitutor::provisional`] gives the values they would get if the gap ended now.
//!
//! **HJ 75-2017** (by valid-data capture rate `a` = valid / (hours - not-operating hours) over the
//! rolling capture window before the gap):
//! - a >= 90 %, gap <= 24 h: maximum of the last 180 valid hourly values;
//! - a >= 90 %, gap > 24 h: maximum of the last 720;
//! - 75 % <= a < 90 %: maximum of the last 2160;
//! - a < 75 %: the standard gives no rule; the maximum of the last 2160 is used (the most
//!   conservative value that is still measured data) and marked [`Rule::Hj75BelowMinimumCapture`]
//!   so the period can be reported for review;
//! - no valid history at all: the configured maximum potential value ([`Rule::NoHistory`]).
//!
//! **Part 75** (§75.33, by percent monitor data availability, PMA, over the last 8760 operating
//! hours before the gap):
//! - fewer than 720 quality-assured hours ever: HB/HA mean (§75.31);
//! - PMA >= 95 %: gap <= 24 h HB/HA mean, else the greater of HB/HA and the 90th percentile of
//!   the 720-hour lookback;
//! - 90 % <= PMA < 95 %: gap <= 8 h HB/HA mean, else the greater of HB/HA and the 95th percentile;
//! - 80 % <= PMA < 90 %: maximum of the lookback;
//! - PMA < 80 %: the maximum potential value.
//!
//! Boundaries are compared in integers (`valid * 100 >= 95 * hours`), so "exactly 95 %" is 95 %.
//! Gap length counts invalid operating hours; not-operating hours inside a gap neither lengthen
//! nor end it. Lookbacks count valid hours (quality-assured monitor operating hours), not clock
//! hours.

use super::error::CemsError;
use super::history::{BitRing, ValueRing};
use super::hour::HourStatus;
use super::policy::{MAX_LOOKBACK_HOURS, Policy};
use super::snapshot::{Reader, Writer};

/// Why a resolved hour has its value. Values are stable codes (`as u8`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A valid measured hour, unchanged.
    Measured = 0,
    /// The unit did not operate: the input value is passed through, nothing substituted.
    NotOperating = 1,
    /// HJ 75, a >= 90 %, short gap: max of the short lookback (180 h).
    Hj75ShortGap = 10,
    /// HJ 75, a >= 90 %, long gap: max of the long lookback (720 h).
    Hj75LongGap = 11,
    /// HJ 75, 75 % <= a < 90 %: max of the 2160 h lookback.
    Hj75LowCapture = 12,
    /// HJ 75, a < 75 % (no rule in the standard): max of the 2160 h lookback, for review.
    Hj75BelowMinimumCapture = 13,
    /// No valid value in the lookback: the maximum potential value.
    NoHistory = 14,
    /// Part 75, fewer than 720 QA hours: HB/HA mean.
    Part75Startup = 20,
    /// Part 75, PMA >= 90 % and a short gap: HB/HA mean.
    Part75HourBeforeAfter = 21,
    /// Part 75, PMA >= 95 %, gap > 24 h: greater of HB/HA and the 90th percentile.
    Part75Percentile90 = 22,
    /// Part 75, 90 <= PMA < 95 %, gap > 8 h: greater of HB/HA and the 95th percentile.
    Part75Percentile95 = 23,
    /// Part 75, 80 <= PMA < 90 %: maximum of the lookback.
    Part75LookbackMax = 24,
    /// Part 75, PMA < 80 %: maximum potential value.
    Part75MaxPotential = 25,
}

impl Rule {
    pub fn is_substituted(self) -> bool {
        !matches!(self, Rule::Measured | Rule::NotOperating)
    }
}

/// One hour out of the substitutor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedHour {
    pub hour: i64,
    pub value: f64,
    pub status: HourStatus,
    pub rule: Rule,
    /// The capture rate (HJ 75) or PMA (Part 75) that chose the tier, %; NaN when not substituted.
    pub availability_pct: f64,
    /// Invalid operating hours in the gap this hour belongs to (0 when not substituted).
    pub gap_hours: u32,
    /// A value for an open gap that may still change when the gap ends.
    pub provisional: bool,
}

/// Running totals of a series since the substitutor was created.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SubstitutionTotals {
    pub measured_hours: u64,
    pub substituted_hours: u64,
    pub not_operating_hours: u64,
    pub measured_sum: f64,
    pub substituted_sum: f64,
}

impl SubstitutionTotals {
    /// Measured plus substituted (for a mass series: the cumulative emission).
    pub fn total(&self) -> f64 {
        self.measured_sum + self.substituted_sum
    }
}

/// Longest gap held open; a gap still open after this many hours is resolved without an hour
/// after (bounds memory when a monitor never comes back).
pub const MAX_OPEN_GAP_HOURS: usize = 8_784;

/// What the history said when a gap began.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Availability {
    /// HJ 75: valid / operating hours of the capture window. Part 75: QA / operating of the PMA
    /// window.
    valid: u64,
    hours: u64,
    qa_total: u64,
    hour_before: Option<f64>,
}

impl Availability {
    fn pct(&self) -> f64 {
        if self.hours == 0 {
            100.0
        } else {
            self.valid as f64 * 100.0 / self.hours as f64
        }
    }

    /// `pct >= threshold`, exactly, in integers. With no history the stream counts as fully
    /// available (a brand-new monitor has not failed yet).
    fn at_least(&self, threshold: u64) -> bool {
        self.hours == 0 || self.valid * 100 >= threshold * self.hours
    }
}

/// An open gap. Its hours are consecutive (skipped hours are filled), so one flag per hour is
/// enough; only not-operating hours carry a value to pass through.
#[derive(Clone, Debug, PartialEq)]
struct Gap {
    at_start: Availability,
    first_hour: i64,
    not_operating: Vec<bool>,
    not_operating_values: Vec<f64>,
    invalid: u32,
}

impl Gap {
    fn len(&self) -> usize {
        self.not_operating.len()
    }
}

/// Substitution state of one series.
#[derive(Clone, Debug)]
pub struct Substitutor {
    policy: Policy,
    max_potential: f64,
    max_fill_hours: u32,
    next_hour: Option<i64>,
    values: ValueRing,
    /// HJ 75: per clock hour, operating? and valid?  Part 75: per operating hour, QA'd?
    operating: BitRing,
    valid: BitRing,
    qa_total: u64,
    last_valid: Option<f64>,
    gap: Option<Gap>,
    totals: SubstitutionTotals,
}

impl Substitutor {
    /// `max_potential`: the value used when nothing better exists (Part 75 MPC/MPF; for HJ 75 the
    /// analyser span or the permit's maximum). NaN leaves such hours missing.
    pub fn new(policy: Policy, max_potential: f64, max_fill_hours: u32) -> Result<Self, CemsError> {
        policy.validate()?;
        if max_potential.is_infinite() {
            return Err(CemsError::BadConfig("max_potential must be finite or NaN"));
        }
        let window = match policy {
            Policy::Hj75(r) => r.capture_window_hours,
            Policy::Part75(r) => r.pma_window_hours,
        } as usize;
        Ok(Self {
            policy,
            max_potential,
            max_fill_hours,
            next_hour: None,
            values: ValueRing::new(MAX_LOOKBACK_HOURS as usize),
            operating: BitRing::new(window),
            valid: BitRing::new(window),
            qa_total: 0,
            last_valid: None,
            gap: None,
            totals: SubstitutionTotals::default(),
        })
    }

    pub fn totals(&self) -> SubstitutionTotals {
        self.totals
    }

    /// Invalid hours currently held in an open gap.
    pub fn open_gap_hours(&self) -> u32 {
        self.gap.as_ref().map_or(0, |g| g.invalid)
    }

    /// The current capture rate (HJ 75) or PMA (Part 75), %.
    pub fn availability_pct(&self) -> f64 {
        self.availability().pct()
    }

    /// Adds the next hour. Hours must increase; skipped hours are treated as invalid (no data).
    /// Returns every hour resolved by this one, in hour order.
    pub fn push(
        &mut self,
        hour: i64,
        value: f64,
        status: HourStatus,
    ) -> Result<Vec<ResolvedHour>, CemsError> {
        if let Some(next) = self.next_hour {
            if hour < next {
                return Err(CemsError::LateHour {
                    hour,
                    last: next - 1,
                });
            }
            let max = i64::from(self.max_fill_hours);
            if hour - next > max {
                return Err(CemsError::TimeJump {
                    from: next,
                    to: hour,
                    hours: hour - next,
                    max,
                });
            }
        }
        let mut out = Vec::new();
        for h in self.next_hour.unwrap_or(hour)..hour {
            self.step(h, f64::NAN, HourStatus::Invalid, &mut out);
        }
        self.step(hour, value, status, &mut out);
        self.next_hour = Some(hour + 1);
        Ok(out)
    }

    fn step(&mut self, hour: i64, value: f64, status: HourStatus, out: &mut Vec<ResolvedHour>) {
        let status = if status == HourStatus::Valid && !value.is_finite() {
            HourStatus::Invalid
        } else {
            status
        };
        match status {
            HourStatus::Valid => {
                if self.gap.is_some() {
                    self.resolve_gap(Some(value), out);
                }
                self.emit(
                    out,
                    ResolvedHour {
                        hour,
                        value,
                        status,
                        rule: Rule::Measured,
                        availability_pct: f64::NAN,
                        gap_hours: 0,
                        provisional: false,
                    },
                );
                self.values.push(value);
                self.last_valid = Some(value);
                self.qa_total += 1;
                self.record(true, true);
            }
            HourStatus::NotOperating => {
                match &mut self.gap {
                    Some(g) => {
                        g.not_operating.push(true);
                        g.not_operating_values.push(value);
                    }
                    None => self.emit(
                        out,
                        ResolvedHour {
                            hour,
                            value,
                            status,
                            rule: Rule::NotOperating,
                            availability_pct: f64::NAN,
                            gap_hours: 0,
                            provisional: false,
                        },
                    ),
                }
                self.record(false, false);
            }
            HourStatus::Invalid => {
                let at_start = self.availability();
                let g = self.gap.get_or_insert_with(|| Gap {
                    at_start,
                    first_hour: hour,
                    not_operating: Vec::new(),
                    not_operating_values: Vec::new(),
                    invalid: 0,
                });
                g.not_operating.push(false);
                g.invalid += 1;
                self.record(true, false);
                if self
                    .gap
                    .as_ref()
                    .is_some_and(|g| g.len() >= MAX_OPEN_GAP_HOURS)
                {
                    self.resolve_gap(None, out);
                }
            }
        }
    }

    /// Updates the status histories with one hour.
    fn record(&mut self, operating: bool, valid: bool) {
        match self.policy {
            Policy::Hj75(_) => {
                self.operating.push(operating);
                self.valid.push(valid);
            }
            Policy::Part75(_) => {
                if operating {
                    self.valid.push(valid);
                }
            }
        }
    }

    fn availability(&self) -> Availability {
        let (valid, hours) = match self.policy {
            Policy::Hj75(_) => (self.valid.ones(), self.operating.ones()),
            Policy::Part75(_) => (self.valid.ones(), self.valid.len()),
        };
        Availability {
            valid: valid as u64,
            hours: hours as u64,
            qa_total: self.qa_total,
            hour_before: self.last_valid,
        }
    }

    /// The value and rule for the invalid hours of a gap of `n` invalid hours.
    fn substitute(&self, a: &Availability, n: u32, hour_after: Option<f64>) -> (f64, Rule) {
        let mpv = self.max_potential;
        match self.policy {
            Policy::Hj75(r) => {
                let (rule, lookback) = if a.at_least(90) {
                    if n <= r.short_gap_hours {
                        (Rule::Hj75ShortGap, r.lookback_short)
                    } else {
                        (Rule::Hj75LongGap, r.lookback_long)
                    }
                } else if a.at_least(75) {
                    (Rule::Hj75LowCapture, r.lookback_low_capture)
                } else {
                    (Rule::Hj75BelowMinimumCapture, r.lookback_low_capture)
                };
                match self.values.max_recent(lookback as usize) {
                    Some(v) => (v, rule),
                    None => (mpv, Rule::NoHistory),
                }
            }
            Policy::Part75(r) => {
                let hbha = match (a.hour_before, hour_after) {
                    (Some(b), Some(f)) => Some((b + f) / 2.0),
                    (b, f) => b.or(f),
                };
                let lookback = r.lookback_hours as usize;
                let greater = |p: f64| -> Option<f64> {
                    match (self.values.percentile_recent(lookback, p), hbha) {
                        (Some(x), Some(y)) => Some(x.max(y)),
                        (x, y) => x.or(y),
                    }
                };
                let (v, rule) = if a.qa_total < u64::from(r.startup_qa_hours) {
                    (hbha, Rule::Part75Startup)
                } else if a.at_least(95) {
                    if n <= r.short_gap_tier1_hours {
                        (hbha, Rule::Part75HourBeforeAfter)
                    } else {
                        (greater(90.0), Rule::Part75Percentile90)
                    }
                } else if a.at_least(90) {
                    if n <= r.short_gap_tier2_hours {
                        (hbha, Rule::Part75HourBeforeAfter)
                    } else {
                        (greater(95.0), Rule::Part75Percentile95)
                    }
                } else if a.at_least(80) {
                    (self.values.max_recent(lookback), Rule::Part75LookbackMax)
                } else {
                    (Some(mpv), Rule::Part75MaxPotential)
                };
                match v {
                    Some(v) => (v, rule),
                    None => (mpv, Rule::NoHistory),
                }
            }
        }
    }

    fn resolved_gap(
        &self,
        g: &Gap,
        hour_after: Option<f64>,
        provisional: bool,
    ) -> Vec<ResolvedHour> {
        let (value, rule) = self.substitute(&g.at_start, g.invalid, hour_after);
        let mut stopped_values = g.not_operating_values.iter();
        (g.first_hour..)
            .zip(&g.not_operating)
            .map(|(hour, &stopped)| {
                if stopped {
                    ResolvedHour {
                        hour,
                        value: *stopped_values.next().expect("one value per stopped hour"),
                        status: HourStatus::NotOperating,
                        rule: Rule::NotOperating,
                        availability_pct: f64::NAN,
                        gap_hours: 0,
                        provisional,
                    }
                } else {
                    ResolvedHour {
                        hour,
                        value,
                        status: HourStatus::Invalid,
                        rule,
                        availability_pct: g.at_start.pct(),
                        gap_hours: g.invalid,
                        provisional,
                    }
                }
            })
            .collect()
    }

    fn resolve_gap(&mut self, hour_after: Option<f64>, out: &mut Vec<ResolvedHour>) {
        if let Some(g) = self.gap.take() {
            for h in self.resolved_gap(&g, hour_after, false) {
                self.emit(out, h);
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<ResolvedHour>, h: ResolvedHour) {
        let t = &mut self.totals;
        match h.rule {
            Rule::Measured => {
                t.measured_hours += 1;
                t.measured_sum += h.value;
            }
            Rule::NotOperating => t.not_operating_hours += 1,
            _ => {
                t.substituted_hours += 1;
                if h.value.is_finite() {
                    t.substituted_sum += h.value;
                }
            }
        }
        out.push(h);
    }

    /// The held hours of the open gap, valued as if the gap ended now (no hour after: HB only).
    /// Nothing changes; the final values come from `push` when the gap ends.
    pub fn provisional(&self) -> Vec<ResolvedHour> {
        self.gap
            .as_ref()
            .map(|g| self.resolved_gap(g, None, true))
            .unwrap_or_default()
    }

    fn fingerprint(&self) -> Vec<u8> {
        let mut fp = Vec::new();
        self.policy.fingerprint(&mut fp);
        fp.extend_from_slice(&self.max_potential.to_le_bytes());
        fp.extend_from_slice(&self.max_fill_hours.to_le_bytes());
        fp
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(SUBST_MAGIC);
        w.bytes(&self.fingerprint());
        w.u8(u8::from(self.next_hour.is_some()));
        w.i64(self.next_hour.unwrap_or(0));
        self.values.write(&mut w);
        self.operating.write(&mut w);
        self.valid.write(&mut w);
        w.u64(self.qa_total);
        w.u8(u8::from(self.last_valid.is_some()));
        w.f64(self.last_valid.unwrap_or(0.0));
        match &self.gap {
            None => w.u8(0),
            Some(g) => {
                w.u8(1);
                let a = &g.at_start;
                w.u64(a.valid);
                w.u64(a.hours);
                w.u64(a.qa_total);
                w.u8(u8::from(a.hour_before.is_some()));
                w.f64(a.hour_before.unwrap_or(0.0));
                w.u32(g.invalid);
                w.i64(g.first_hour);
                w.u64(g.len() as u64);
                for &stopped in &g.not_operating {
                    w.u8(u8::from(stopped));
                }
                for &v in &g.not_operating_values {
                    w.f64(v);
                }
            }
        }
        let t = &self.totals;
        w.u64(t.measured_hours);
        w.u64(t.substituted_hours);
        w.u64(t.not_operating_hours);
        w.f64(t.measured_sum);
        w.f64(t.substituted_sum);
        w.finish()
    }

    pub fn restore(
        policy: Policy,
        max_potential: f64,
        max_fill_hours: u32,
        bytes: &[u8],
    ) -> Result<Self, CemsError> {
        let mut me = Self::new(policy, max_potential, max_fill_hours)?;
        let mut r = Reader::new(bytes, SUBST_MAGIC)?;
        r.fingerprint(&me.fingerprint(), "policy or substitution settings")?;
        let has_next = r.u8()? != 0;
        let next = r.i64()?;
        me.next_hour = has_next.then_some(next);
        me.values = ValueRing::read(MAX_LOOKBACK_HOURS as usize, &mut r)?;
        let window = match policy {
            Policy::Hj75(r) => r.capture_window_hours,
            Policy::Part75(r) => r.pma_window_hours,
        } as usize;
        me.operating = BitRing::read(window, &mut r)?;
        me.valid = BitRing::read(window, &mut r)?;
        me.qa_total = r.u64()?;
        let has_last = r.u8()? != 0;
        let last = r.f64()?;
        me.last_valid = has_last.then_some(last);
        me.gap = match r.u8()? {
            0 => None,
            1 => {
                let mut at_start = Availability {
                    valid: r.u64()?,
                    hours: r.u64()?,
                    qa_total: r.u64()?,
                    hour_before: None,
                };
                let has_before = r.u8()? != 0;
                let before = r.f64()?;
                at_start.hour_before = has_before.then_some(before);
                let invalid = r.u32()?;
                let first_hour = r.i64()?;
                let n = r.len(1)?;
                let mut not_operating = Vec::with_capacity(n);
                for _ in 0..n {
                    not_operating.push(match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(CemsError::CorruptSnapshot("status of a held hour")),
                    });
                }
                let stopped = not_operating.iter().filter(|s| **s).count();
                if n - stopped != invalid as usize || n > MAX_OPEN_GAP_HOURS {
                    return Err(CemsError::CorruptSnapshot("gap counts disagree"));
                }
                let not_operating_values =
                    (0..stopped).map(|_| r.f64()).collect::<Result<_, _>>()?;
                Some(Gap {
                    at_start,
                    first_hour,
                    not_operating,
                    not_operating_values,
                    invalid,
                })
            }
            _ => return Err(CemsError::CorruptSnapshot("gap tag")),
        };
        me.totals = SubstitutionTotals {
            measured_hours: r.u64()?,
            substituted_hours: r.u64()?,
            not_operating_hours: r.u64()?,
            measured_sum: r.f64()?,
            substituted_sum: r.f64()?,
        };
        r.end()?;
        Ok(me)
    }
}

const SUBST_MAGIC: &[u8; 8] = b"CSSUBv01";
