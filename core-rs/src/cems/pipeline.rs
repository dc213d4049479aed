//! One stack end to end, as the dataflow runs it: the stages of this module composed, with the
//! state between them (hours held until their substitution resolves) in one deterministic
//! snapshot.
//!
//! ```text
//! real-time samples --MinuteAggregator--+
//! minute values (HJ 212 2051) -----------+--> minutes (+ quality signals)
//!   --HourAggregator--> hours
//!        flow, auxiliary channels ------------------------------> DayAggregator
//!        mass channels --Substitutor--> resolved hours ----------> DayAggregator, PeriodTotals
//! ```
//!
//! Variables are numbered: 0 is the stack's dry standard flow (per hour), 1..=N the configured
//! channels. Channels either make mass (pollutants, CO2: mass = k x C x Q, substituted when
//! invalid) or are auxiliary (O2, temperature, pressure, moisture, velocity: hourly and daily
//! averages only).
//!
//! **Flow.** Loggers send flow in several forms, so the flow is derived per sample (or minute)
//! before aggregation ([`FlowSource`]): a dry standard flow rate in any per-time unit, an actual
//! (duct-condition, wet) flow converted with Appendix D \[31\], or a point velocity converted with
//! \[29\], \[30\] and \[31\]. The conditions come from auxiliary channels of the same sample
//! (temperature degC, static gauge pressure kPa, moisture % as HJ 212 sends them). A sample whose
//! conditions are missing or not valid gives a flow that is not valid either, flagged with the
//! condition's flag (D when the reading is absent): the mass of that minute is then missing and
//! substituted like any other missing data, never computed from made-up conditions.
//!
//! **Watermarks.** An hour closes when a minute of a later hour arrives, or at
//! [`StackPipeline::close_until`] (the dataflow calls it when the logger's own minute or hourly
//! packet says the period is over). After a watermark, data older than it is refused as late.
//!
//! **Quality signals** are tracked online, one minute at a time, with the same definitions as the
//! batch functions of [`super::quality`]: a minute is *flat-lined* once the run of valid values
//! within tolerance of the run's first value that ends at it has lasted `flatline_minutes` (the
//! batch function flags the whole run; online, only from that point on, since earlier minutes are
//! already out); a *jump* is a change from the previous valid value beyond both limits;
//! *calibration* is a C flag; *repeated* marks minutes holding a real-time packet whose values
//! repeat the previous `repeat_packets - 1` packets exactly (while the unit is not stopped: a
//! stopped unit legitimately sends the same zeros). Hours carry the OR of their minutes' bits.

use std::collections::{BTreeMap, BTreeSet};

use crate::hj212::DataFlag;

use super::columns::SampleColumns;
use super::day::{DayAggregator, DayHour, DayRecord, HourKind};
use super::error::CemsError;
use super::flags::{Reading, flag_code, flag_from_code};
use super::flow::{actual_flow_m3_h, calibrated_velocity, dry_standard_flow_m3_h};
use super::hour::{HourAggregator, HourStatus, StackHour, VariableHour};
use super::minute::{MinuteAggregator, StackSample};
use super::policy::Policy;
use super::snapshot::{Reader, Writer};
use super::stack::{ChannelConfig, MinuteRecord, StackConfig, StackMinute};
use super::substitution::{Rule, Substitutor};
use super::totals::{PeriodTotals, QuarterTotal};

/// Quality bit: the value is part of a flat (stuck) run.
pub const Q_FLATLINE: u8 = 1;
/// Quality bit: the value jumped beyond the configured physical limits.
pub const Q_JUMP: u8 = 2;
/// Quality bit: calibration (C) data.
pub const Q_CALIBRATION: u8 = 4;
/// Quality bit: the minute holds a repeated (identical) real-time packet.
pub const Q_REPEATED: u8 = 8;

/// `rule` code of an hour whose substitution is still pending (see [`Rule`] for the others).
pub const RULE_PENDING: u8 = 255;

/// How the dry standard flow rate (per hour) of a sample is obtained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlowSource {
    /// The flow reading is already dry standard; `scale` converts its unit to per hour
    /// (3600 for m3/s, 1 for m3/h, 60 for scfm -> scfh).
    DryStandard { scale: f64 },
    /// The flow reading is the actual (duct-condition, wet) flow, converted with \[31\].
    Actual { scale: f64, atmospheric_pa: f64 },
    /// No flow reading: the velocity channel's point velocity (m/s) x `k_v` (\[29\]) x the duct
    /// cross-section (\[30\]), then \[31\].
    Velocity {
        k_v: f64,
        area_m2: f64,
        atmospheric_pa: f64,
    },
}

impl FlowSource {
    fn fingerprint(&self, out: &mut Vec<u8>) {
        let (tag, a, b, c) = match *self {
            Self::DryStandard { scale } => (1u8, scale, 0.0, 0.0),
            Self::Actual {
                scale,
                atmospheric_pa,
            } => (2, scale, atmospheric_pa, 0.0),
            Self::Velocity {
                k_v,
                area_m2,
                atmospheric_pa,
            } => (3, k_v, area_m2, atmospheric_pa),
        };
        out.push(tag);
        for v in [a, b, c] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Channels (0-based indices into the channel list) holding the duct conditions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConditionChannels {
    /// Flue gas temperature, degC (a01012). Required by `Actual` and `Velocity`.
    pub temperature: Option<usize>,
    /// Static (gauge) pressure, kPa (a01013). Absent: 0.
    pub pressure: Option<usize>,
    /// Moisture, % by volume (a01014). Absent: dry gas (0).
    pub moisture: Option<usize>,
    /// Point velocity, m/s (a01011). Required by `Velocity`.
    pub velocity: Option<usize>,
}

/// Limits of the data-quality signals of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityLimits {
    /// Values within this of a run's first value continue a flat run; `None`: not checked.
    pub flatline_tolerance: Option<f64>,
    /// A jump must exceed this absolute change per minute; `None`: jumps not checked.
    pub max_step_abs: Option<f64>,
    /// ... and this fraction of the previous value.
    pub max_step_rel: f64,
}

impl Default for QualityLimits {
    fn default() -> Self {
        Self {
            flatline_tolerance: Some(0.0),
            max_step_abs: None,
            max_step_rel: 0.5,
        }
    }
}

/// One channel of a stack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelSpec {
    /// Mass factor and analyser upper limit (the factor is unused for auxiliary channels).
    pub channel: ChannelConfig,
    /// Makes mass (pollutants, CO2) or is auxiliary (O2, conditions).
    pub emits_mass: bool,
    /// Substitution value when nothing better exists, mass per hour (NaN: leave missing).
    pub max_potential: f64,
    pub quality: QualityLimits,
}

impl ChannelSpec {
    pub fn mass(channel: ChannelConfig) -> Self {
        Self {
            channel,
            emits_mass: true,
            max_potential: f64::NAN,
            quality: QualityLimits::default(),
        }
    }

    pub fn auxiliary() -> Self {
        Self {
            channel: ChannelConfig::mg_per_m3(),
            emits_mass: false,
            max_potential: f64::NAN,
            quality: QualityLimits::default(),
        }
    }
}

/// Everything about one stack the pipeline needs.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub policy: Policy,
    pub flow_source: FlowSource,
    /// Upper measuring limit of the flow monitor, in the derived unit (per hour).
    pub flow_upper_limit: Option<f64>,
    pub flow_quality: QualityLimits,
    pub conditions: ConditionChannels,
    pub channels: Vec<ChannelSpec>,
    /// Valid real-time samples a minute needs.
    pub min_valid_samples: u32,
    /// The site's UTC offset: local days and quarters.
    pub utc_offset_minutes: i32,
    /// Minutes a flat run must last to be flagged (0: never).
    pub flatline_minutes: u32,
    /// Identical consecutive real-time packets that make a repeat (below 2: never looked for).
    pub repeat_packets: u32,
    pub max_fill_hours: u32,
}

impl PipelineConfig {
    pub fn new(policy: Policy, flow_source: FlowSource, channels: Vec<ChannelSpec>) -> Self {
        Self {
            policy,
            flow_source,
            flow_upper_limit: None,
            flow_quality: QualityLimits::default(),
            conditions: ConditionChannels::default(),
            channels,
            min_valid_samples: 1,
            utc_offset_minutes: crate::hj212::CHINA_STANDARD_TIME_OFFSET_MINUTES,
            flatline_minutes: 30,
            repeat_packets: 5,
            max_fill_hours: 8_784,
        }
    }

    /// Number of variables: the flow and the channels.
    pub fn variables(&self) -> usize {
        1 + self.channels.len()
    }

    fn stack(&self) -> StackConfig {
        let mut s = StackConfig::new(
            self.policy,
            self.channels.iter().map(|c| c.channel).collect(),
        );
        s.flow_upper_limit = self.flow_upper_limit;
        s.max_fill_hours = self.max_fill_hours;
        s
    }

    pub fn validate(&self) -> Result<(), CemsError> {
        self.stack().validate()?;
        let n = self.channels.len();
        let c = self.conditions;
        for i in [c.temperature, c.pressure, c.moisture, c.velocity]
            .into_iter()
            .flatten()
        {
            if i >= n {
                return Err(CemsError::BadConfig(
                    "a condition channel index is beyond the channel list",
                ));
            }
            if self.channels[i].emits_mass {
                return Err(CemsError::BadConfig(
                    "condition channels must be auxiliary (no mass)",
                ));
            }
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        match self.flow_source {
            FlowSource::DryStandard { scale } if !positive(scale) => {
                return Err(CemsError::BadConfig("flow scale must be positive"));
            }
            FlowSource::Actual {
                scale,
                atmospheric_pa,
            } => {
                if !positive(scale) || !positive(atmospheric_pa) {
                    return Err(CemsError::BadConfig(
                        "flow scale and atmospheric pressure must be positive",
                    ));
                }
                if c.temperature.is_none() {
                    return Err(CemsError::BadConfig(
                        "an actual flow needs a temperature channel",
                    ));
                }
            }
            FlowSource::Velocity {
                k_v,
                area_m2,
                atmospheric_pa,
            } => {
                if !positive(k_v) || !positive(area_m2) || !positive(atmospheric_pa) {
                    return Err(CemsError::BadConfig(
                        "K_v, duct area and atmospheric pressure must be positive",
                    ));
                }
                if c.temperature.is_none() || c.velocity.is_none() {
                    return Err(CemsError::BadConfig(
                        "a velocity flow needs velocity and temperature channels",
                    ));
                }
            }
            FlowSource::DryStandard { .. } => {}
        }
        if self.min_valid_samples == 0 {
            return Err(CemsError::BadConfig("min_valid_samples must be at least 1"));
        }
        if self.channels.iter().any(|c| c.max_potential.is_infinite()) {
            return Err(CemsError::BadConfig("max_potential must be finite or NaN"));
        }
        Ok(())
    }

    /// Bytes identifying the parts of the configuration the pipeline's own state depends on
    /// (the stages check their own).
    fn fingerprint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.flow_source.fingerprint(&mut out);
        let idx = |i: Option<usize>| i.map_or(u32::MAX, |i| i as u32).to_le_bytes();
        let c = self.conditions;
        for i in [c.temperature, c.pressure, c.moisture, c.velocity] {
            out.extend_from_slice(&idx(i));
        }
        out.extend_from_slice(&(self.channels.len() as u32).to_le_bytes());
        for ch in &self.channels {
            out.push(u8::from(ch.emits_mass));
        }
        out
    }
}

/// One minute value of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinuteOut {
    pub minute: i64,
    pub var: u16,
    /// Minute value (NaN without a reading); the flow is dry standard per hour.
    pub value: f64,
    /// The minute's data flag (`None`: no reading).
    pub flag: Option<DataFlag>,
    /// Mass of the minute (`k x C x Q / 60`) when both are valid; NaN otherwise or auxiliary.
    pub mass: f64,
    pub quality: u8,
}

/// The minute values of one call, one column per field: what the caller stores is columns, so
/// they are built as such and handed over without a copy (a row per variable per minute, in
/// order, made up most of a call's output).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteColumns {
    pub minute: Vec<i64>,
    pub var: Vec<u16>,
    pub value: Vec<f64>,
    /// Flag letter (`flags::flag_code`: 0 for no reading).
    pub flag: Vec<u8>,
    pub mass: Vec<f64>,
    pub quality: Vec<u8>,
}

impl MinuteColumns {
    #[inline]
    pub fn push(&mut self, m: MinuteOut) {
        self.minute.push(m.minute);
        self.var.push(m.var);
        self.value.push(m.value);
        self.flag.push(flag_code(m.flag));
        self.mass.push(m.mass);
        self.quality.push(m.quality);
    }

    pub fn reserve(&mut self, rows: usize) {
        self.minute.reserve(rows);
        self.var.reserve(rows);
        self.value.reserve(rows);
        self.flag.reserve(rows);
        self.mass.reserve(rows);
        self.quality.reserve(rows);
    }

    pub fn len(&self) -> usize {
        self.minute.len()
    }

    pub fn is_empty(&self) -> bool {
        self.minute.is_empty()
    }

    /// Row `i` as a record.
    pub fn get(&self, i: usize) -> MinuteOut {
        MinuteOut {
            minute: self.minute[i],
            var: self.var[i],
            value: self.value[i],
            flag: flag_from_code(self.flag[i]).flatten(),
            mass: self.mass[i],
            quality: self.quality[i],
        }
    }

    /// The rows as records, in order.
    pub fn iter(&self) -> impl Iterator<Item = MinuteOut> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// One closed hour of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HourOut {
    pub hour: i64,
    pub var: u16,
    pub value: VariableHour,
    pub operating_minutes: u8,
    /// Flow volume of the hour (the same on every variable of the stack).
    pub flow_total: f64,
    /// Measured mass (NaN unless valid; 0 when not operating; NaN for flow and auxiliary).
    pub measured_mass: f64,
    pub mass_status: HourStatus,
    pub quality: u8,
}

/// The final mass of an hour of a mass channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedOut {
    pub hour: i64,
    pub var: u16,
    pub mass: f64,
    pub rule: Rule,
    pub availability_pct: f64,
    pub gap_hours: u32,
}

/// A closed local day of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayOut {
    pub var: u16,
    /// For the flow (var 0) the record's `mass` holds the day's flow volume; use the accessors.
    pub record: DayRecord,
    pub emits_mass: bool,
}

impl DayOut {
    /// Daily average: flow-weighted concentration, or the mean flow rate for the flow.
    pub fn value(&self) -> f64 {
        self.record.conc
    }

    /// Flow volume of the day.
    pub fn flow_total(&self) -> f64 {
        if self.var == 0 {
            self.record.mass
        } else {
            self.record.flow_total
        }
    }

    /// Mass of the day (measured and substituted hours); NaN for the flow and auxiliary channels.
    pub fn mass(&self) -> f64 {
        if self.emits_mass {
            self.record.mass
        } else {
            f64::NAN
        }
    }
}

/// What one call produced, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineOutput {
    pub minutes: MinuteColumns,
    pub hours: Vec<HourOut>,
    pub resolved: Vec<ResolvedOut>,
    pub days: Vec<DayOut>,
}

impl PipelineOutput {
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
            && self.hours.is_empty()
            && self.resolved.is_empty()
            && self.days.is_empty()
    }
}

/// Running totals of one mass channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelTotals {
    pub var: u16,
    pub cumulative: f64,
    pub year_to_date: f64,
    pub quarter: Option<QuarterTotal>,
    pub measured_hours: u64,
    pub substituted_hours: u64,
    pub not_operating_hours: u64,
    pub substituted_mass: f64,
    /// Hours closed but not yet resolved (an open gap).
    pub pending_hours: u32,
}

/// Online flat-run and jump state of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tracker {
    run_first: f64,
    run_len: u32,
    prev: f64,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            run_first: f64::NAN,
            run_len: 0,
            prev: f64::NAN,
        }
    }
}

impl Tracker {
    fn observe(&mut self, v: Option<f64>, limits: &QualityLimits, flatline_minutes: u32) -> u8 {
        let Some(x) = v else {
            self.run_first = f64::NAN;
            self.run_len = 0;
            return 0;
        };
        let mut bits = 0;
        match limits.flatline_tolerance {
            Some(tol) if self.run_first.is_finite() && (x - self.run_first).abs() <= tol => {
                self.run_len += 1;
            }
            _ => {
                self.run_first = x;
                self.run_len = 1;
            }
        }
        if limits.flatline_tolerance.is_some()
            && flatline_minutes > 0
            && self.run_len >= flatline_minutes.max(2)
        {
            bits |= Q_FLATLINE;
        }
        if let Some(abs) = limits.max_step_abs
            && self.prev.is_finite()
        {
            let step = (x - self.prev).abs();
            if step > abs && step > limits.max_step_rel * self.prev.abs() {
                bits |= Q_JUMP;
            }
        }
        self.prev = x;
        bits
    }
}

/// Hour kept until every mass channel has resolved it: what its days need.
#[derive(Clone, Debug, PartialEq)]
struct Held {
    flow_total: f64,
    conc: Vec<f64>,
    remaining: u32,
}

/// The pipeline of one stack.
#[derive(Clone, Debug)]
pub struct StackPipeline {
    config: PipelineConfig,
    minutes: MinuteAggregator,
    hours: HourAggregator,
    /// One per mass channel (indexed like `mass_vars`).
    subst: Vec<Substitutor>,
    totals: Vec<PeriodTotals>,
    /// Variables (1-based channel + 1) of the mass channels.
    mass_vars: Vec<usize>,
    /// One per variable.
    days: Vec<DayAggregator>,
    trackers: Vec<Tracker>,
    held: BTreeMap<i64, Held>,
    /// Quality bits of the minutes of hours not yet closed, per variable.
    hour_bits: BTreeMap<i64, Vec<u8>>,
    /// Minutes holding a repeated packet, not yet emitted.
    repeated: BTreeSet<i64>,
    last_fingerprint: Option<u64>,
    repeat_run: u32,
    /// Minutes before this are closed: data for them is late.
    late_before_minute: Option<i64>,
    /// Where the minute aggregator writes the minute a sample closes (not state: reused so a
    /// closed minute allocates nothing).
    closed_minute: MinuteRecord,
}

/// The reading of the channel at `i`, if one is configured and was sent.
fn reading_at(channels: &[Option<Reading>], i: Option<usize>) -> Option<Reading> {
    i.and_then(|i| channels.get(i).copied().flatten())
}

fn valid(r: Option<Reading>) -> Option<f64> {
    r.and_then(|r| r.valid_value(None))
}

impl StackPipeline {
    pub fn new(config: PipelineConfig) -> Result<Self, CemsError> {
        config.validate()?;
        let stack = config.stack();
        let mass_vars: Vec<usize> = (0..config.channels.len())
            .filter(|&c| config.channels[c].emits_mass)
            .map(|c| c + 1)
            .collect();
        let subst = mass_vars
            .iter()
            .map(|&v| {
                Substitutor::new(
                    config.policy,
                    config.channels[v - 1].max_potential,
                    config.max_fill_hours,
                )
            })
            .collect::<Result<_, _>>()?;
        let days = (0..config.variables())
            .map(|_| DayAggregator::new(config.policy, config.utc_offset_minutes))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            minutes: MinuteAggregator::new(stack.clone(), config.min_valid_samples)?,
            hours: HourAggregator::new(stack)?,
            subst,
            totals: mass_vars
                .iter()
                .map(|_| PeriodTotals::new(config.utc_offset_minutes))
                .collect(),
            trackers: vec![Tracker::default(); config.variables()],
            mass_vars,
            days,
            held: BTreeMap::new(),
            hour_bits: BTreeMap::new(),
            repeated: BTreeSet::new(),
            last_fingerprint: None,
            repeat_run: 0,
            late_before_minute: None,
            closed_minute: MinuteRecord::default(),
            config,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    fn check_late(&self, minute: i64, t_ms: i64) -> Result<(), CemsError> {
        match self.late_before_minute {
            Some(w) if minute < w => Err(CemsError::LateSample {
                t_ms,
                open_minute: w,
            }),
            _ => Ok(()),
        }
    }

    /// The dry standard flow (per hour) of a sample or minute; see the module documentation.
    #[inline]
    pub fn derive_flow(
        &self,
        flow: Option<Reading>,
        channels: &[Option<Reading>],
    ) -> Option<Reading> {
        // Inline for the common source (a scaling, once per sample); conversions out of line.
        match self.config.flow_source {
            FlowSource::DryStandard { scale } => {
                flow.map(|r| Reading::new(r.value * scale, r.flag))
            }
            FlowSource::Actual {
                scale,
                atmospheric_pa,
            } => Some(self.to_dry_standard(flow?, scale, atmospheric_pa, channels)),
            FlowSource::Velocity {
                k_v,
                area_m2,
                atmospheric_pa,
            } => {
                let v = reading_at(channels, self.config.conditions.velocity)?;
                let q = actual_flow_m3_h(area_m2, calibrated_velocity(v.value, k_v));
                Some(self.to_dry_standard(Reading::new(q, v.flag), 1.0, atmospheric_pa, channels))
            }
        }
    }

    /// An actual flow (`base` x `scale`, m3/h at stack conditions) at dry standard conditions,
    /// from the stack's temperature, pressure and moisture channels.
    fn to_dry_standard(
        &self,
        base: Reading,
        scale: f64,
        ba: f64,
        channels: &[Option<Reading>],
    ) -> Reading {
        let cond = self.config.conditions;
        let get = |i: Option<usize>| reading_at(channels, i);
        let rate = base.value * scale;
        if valid(Some(base)).is_none() {
            return Reading::new(f64::NAN, base.flag);
        }
        // A condition that is absent when configured, or not valid, invalidates the flow.
        let condition = |i: Option<usize>, default: f64| -> Result<f64, DataFlag> {
            match i {
                None => Ok(default),
                Some(_) => match get(i) {
                    None => Err(DataFlag::Fault),
                    Some(r) => valid(Some(r)).ok_or(r.flag),
                },
            }
        };
        let t = match get(cond.temperature) {
            None => Err(DataFlag::Fault),
            Some(r) => valid(Some(r)).ok_or(r.flag),
        };
        let parts = t.and_then(|t| {
            Ok((
                t,
                condition(cond.pressure, 0.0)? * 1_000.0,
                condition(cond.moisture, 0.0)? / 100.0,
            ))
        });
        match parts {
            Err(flag) => Reading::new(f64::NAN, flag),
            Ok((t, ps, x)) => match dry_standard_flow_m3_h(rate, t, ba, ps, x) {
                Ok(q) => Reading::new(q, base.flag),
                Err(_) => Reading::new(f64::NAN, DataFlag::Fault),
            },
        }
    }

    /// Adds a real-time sample (`flow`: the flow reading as sent, before conversion; `None` for
    /// a velocity-derived flow). `fingerprint`: the packet's value fingerprint, for repeats.
    #[inline]
    pub fn push_sample(
        &mut self,
        t_ms: i64,
        flow: Option<Reading>,
        channels: &[Option<Reading>],
        fingerprint: Option<u64>,
        out: &mut PipelineOutput,
    ) -> Result<(), CemsError> {
        let minute = t_ms.div_euclid(60_000);
        self.check_late(minute, t_ms)?;
        let q = self.derive_flow(flow, channels);
        let sample = StackSample {
            t_ms,
            flow: q,
            channels,
        };
        let closed = self.minutes.push_into(&sample, &mut self.closed_minute)?;
        self.observe_fingerprint(minute, q, fingerprint);
        if closed {
            self.process_closed_minute(out)?;
        }
        Ok(())
    }

    /// [`Self::push_sample`] of every sample, in order. A sample's error goes to `on_error` with
    /// its index and does not stop the samples after it.
    ///
    /// When the flow needs only a scaling, each run of samples of one minute is added at once,
    /// without a row of readings per sample (see [`MinuteAggregator::add_open_run`]): its
    /// first sample opens the minute (closing the open one) as `push_sample` would. The results
    /// are those of one `push_sample` per sample.
    pub fn push_columns(
        &mut self,
        samples: &SampleColumns<'_>,
        out: &mut PipelineOutput,
        mut on_error: impl FnMut(usize, CemsError),
    ) {
        let dry_scale = match self.config.flow_source {
            FlowSource::DryStandard { scale }
                if samples.channels() == self.config.channels.len() =>
            {
                Some(scale)
            }
            _ => None,
        };
        let mut row = vec![None; samples.channels()];
        let mut i = 0;
        while i < samples.len() {
            let t_ms = samples.t_ms(i);
            let minute = t_ms.div_euclid(60_000);
            if let Some(scale) = dry_scale {
                // The run's first sample gets the late checks of `push_sample`; the others are
                // in its minute, which is then open, so they cannot be late.
                let opened = self
                    .check_late(minute, t_ms)
                    .and_then(|()| self.minutes.open_at(t_ms, &mut self.closed_minute));
                let closed = match opened {
                    Ok(closed) => closed,
                    Err(e) => {
                        on_error(i, e);
                        i += 1;
                        continue;
                    }
                };
                let end = samples.minute_run_end(i, minute);
                self.minutes.add_open_run(samples, i..end, scale);
                if self.config.repeat_packets >= 2 {
                    for k in i..end {
                        let q = samples
                            .flow(k)
                            .map(|r| Reading::new(r.value * scale, r.flag));
                        self.observe_fingerprint(minute, q, samples.fingerprint(k));
                    }
                }
                // After the run's fingerprints, unlike `push_sample`: they can only mark the
                // run's own minute as repeated, which the closed minute's processing keeps.
                if closed && let Err(e) = self.process_closed_minute(out) {
                    on_error(i, e);
                }
                i = end;
                continue;
            }
            let (values, flags) = samples.row(i);
            Reading::fill_from_codes(&mut row, values, flags);
            if let Err(e) =
                self.push_sample(t_ms, samples.flow(i), &row, samples.fingerprint(i), out)
            {
                on_error(i, e);
            }
            i += 1;
        }
    }

    /// Processes `closed_minute` (moved out for the call, then put back to keep its buffer).
    fn process_closed_minute(&mut self, out: &mut PipelineOutput) -> Result<(), CemsError> {
        let m = std::mem::take(&mut self.closed_minute);
        let result = self.process_minute(m.as_stack_minute(), out);
        self.closed_minute = m;
        result
    }

    /// Tracks runs of identical packets, only when repeats are looked for (`repeat_packets` of
    /// 2 or more): otherwise the state stays as it is and nothing is marked.
    #[inline]
    fn observe_fingerprint(&mut self, minute: i64, q: Option<Reading>, fingerprint: Option<u64>) {
        if self.config.repeat_packets < 2 {
            return;
        }
        if let Some(fp) = fingerprint {
            let stopped = q.is_some_and(|r| r.flag == DataFlag::Stopped);
            if stopped || self.last_fingerprint != Some(fp) {
                self.repeat_run = u32::from(!stopped);
            } else {
                self.repeat_run += 1;
            }
            self.last_fingerprint = (!stopped).then_some(fp);
            let n = self.config.repeat_packets;
            if n >= 2 && self.repeat_run >= n {
                self.repeated.insert(minute);
            }
        }
    }

    /// Adds a minute value (HJ 212 minute data) directly, bypassing the minute aggregator.
    pub fn push_minute(
        &mut self,
        minute: i64,
        flow: Option<Reading>,
        channels: &[Option<Reading>],
        out: &mut PipelineOutput,
    ) -> Result<(), CemsError> {
        self.check_late(minute, minute * 60_000)?;
        if channels.len() != self.config.channels.len() {
            return Err(CemsError::ChannelCount {
                minute,
                expected: self.config.channels.len(),
                got: channels.len(),
            });
        }
        let q = self.derive_flow(flow, channels);
        self.process_minute(
            StackMinute {
                minute,
                flow: q,
                channels,
            },
            out,
        )
    }

    /// Closes what ends at or before `t_ms`: the open minute, then the hours (a watermark: data
    /// for earlier minutes is refused from now on).
    pub fn close_until(&mut self, t_ms: i64, out: &mut PipelineOutput) -> Result<(), CemsError> {
        let minute = t_ms.div_euclid(60_000);
        if self.minutes.close_until_into(t_ms, &mut self.closed_minute) {
            self.process_closed_minute(out)?;
        }
        let hours = self.hours.close_until(minute)?;
        self.process_hours(hours, out)?;
        self.late_before_minute = Some(self.late_before_minute.map_or(minute, |w| w.max(minute)));
        Ok(())
    }

    fn process_minute(
        &mut self,
        m: StackMinute<'_>,
        out: &mut PipelineOutput,
    ) -> Result<(), CemsError> {
        let hours = self.hours.push(&m)?;
        if !hours.is_empty() {
            self.process_hours(hours, out)?;
        }
        let n = self.config.variables();
        // Most streams never repeat a packet: an empty set needs neither lookup nor split.
        let repeated = if !self.repeated.is_empty() && self.repeated.remove(&m.minute) {
            Q_REPEATED
        } else {
            0
        };
        if self.repeated.first().is_some_and(|&first| first < m.minute) {
            self.repeated = self.repeated.split_off(&m.minute);
        }
        let config = &self.config;
        let flow_valid = m.flow.and_then(|r| r.valid_value(config.flow_upper_limit));
        let hour = m.minute.div_euclid(60);
        // In place: removing and re-inserting the hour's entry every minute frees and
        // reallocates both the bits and the map's node.
        let bits = self.hour_bits.entry(hour).or_insert_with(|| vec![0; n]);
        let mut observe = |var: usize,
                           reading: Option<Reading>,
                           valid: Option<f64>,
                           limits: &QualityLimits,
                           tracker: &mut Tracker,
                           hour_bits: &mut u8,
                           mass: f64| {
            let mut q = tracker.observe(valid, limits, config.flatline_minutes) | repeated;
            if reading.is_some_and(|r| r.flag == DataFlag::Calibration) {
                q |= Q_CALIBRATION;
            }
            *hour_bits |= q;
            out.minutes.push(MinuteOut {
                minute: m.minute,
                var: var as u16,
                value: reading.map_or(f64::NAN, |r| r.value),
                flag: reading.map(|r| r.flag),
                mass,
                quality: q,
            });
        };
        // The flow, then the channels in order, each zipped with its state (no index checks).
        let (flow_tracker, trackers) = self.trackers.split_first_mut().expect("flow tracker");
        let (flow_bits, channel_bits) = bits.split_first_mut().expect("flow bits");
        let flow_limits = &config.flow_quality;
        observe(
            0,
            m.flow,
            flow_valid,
            flow_limits,
            flow_tracker,
            flow_bits,
            f64::NAN,
        );
        let channels = config.channels.iter().zip(m.channels);
        for (c, (((spec, &reading), tracker), hour_bits)) in
            channels.zip(trackers).zip(channel_bits).enumerate()
        {
            let valid = reading.and_then(|r| r.valid_value(spec.channel.upper_limit));
            let mass = match (valid, flow_valid) {
                (Some(c), Some(f)) if spec.emits_mass => spec.channel.mass_factor * c * f / 60.0,
                _ => f64::NAN,
            };
            observe(
                c + 1,
                reading,
                valid,
                &spec.quality,
                tracker,
                hour_bits,
                mass,
            );
        }
        Ok(())
    }

    fn process_hours(
        &mut self,
        hours: Vec<StackHour>,
        out: &mut PipelineOutput,
    ) -> Result<(), CemsError> {
        for h in hours {
            self.process_hour(h, out)?;
        }
        Ok(())
    }

    fn day_push(
        &mut self,
        var: usize,
        h: &DayHour,
        out: &mut PipelineOutput,
    ) -> Result<(), CemsError> {
        let emits_mass = var > 0 && self.config.channels[var - 1].emits_mass;
        let closed = self.days[var].push(h)?;
        let early = self.days[var].close_until(h.hour + 1);
        for record in closed.into_iter().chain(early) {
            out.days.push(DayOut {
                var: var as u16,
                record,
                emits_mass,
            });
        }
        Ok(())
    }

    fn process_hour(&mut self, h: StackHour, out: &mut PipelineOutput) -> Result<(), CemsError> {
        let n = self.config.variables();
        let mut bits = self.hour_bits.remove(&h.hour).unwrap_or_else(|| vec![0; n]);
        // Bits of hours before this one can no longer be used (they had no minute).
        self.hour_bits = self.hour_bits.split_off(&h.hour);
        for (var, b) in bits.iter_mut().enumerate() {
            let flags = if var == 0 {
                h.flow.flags
            } else {
                h.channels[var - 1].conc.flags
            };
            if flags.get(DataFlag::Calibration) > 0 {
                *b |= Q_CALIBRATION;
            }
        }
        let kind = |s: HourStatus| match s {
            HourStatus::Valid => HourKind::Measured,
            HourStatus::NotOperating => HourKind::NotOperating,
            HourStatus::Invalid => HourKind::Missing,
        };
        out.hours.push(HourOut {
            hour: h.hour,
            var: 0,
            value: h.flow,
            operating_minutes: h.operating_minutes,
            flow_total: h.flow_total,
            measured_mass: f64::NAN,
            mass_status: h.flow.status,
            quality: bits[0],
        });
        // The flow's day: the volume rides in `mass`, the rate is averaged.
        let flow_day = DayHour {
            hour: h.hour,
            conc: h.flow.value,
            flow_total: f64::NAN,
            mass: h.flow_total,
            kind: kind(h.flow.status),
        };
        self.day_push(0, &flow_day, out)?;
        for (c, ch) in h.channels.iter().enumerate() {
            let var = c + 1;
            let emits = self.config.channels[c].emits_mass;
            out.hours.push(HourOut {
                hour: h.hour,
                var: var as u16,
                value: ch.conc,
                operating_minutes: h.operating_minutes,
                flow_total: h.flow_total,
                measured_mass: if emits { ch.mass } else { f64::NAN },
                mass_status: if emits {
                    ch.mass_status
                } else {
                    ch.conc.status
                },
                quality: bits[var],
            });
            if !emits {
                let day = DayHour {
                    hour: h.hour,
                    conc: ch.conc.value,
                    flow_total: h.flow_total,
                    mass: f64::NAN,
                    kind: kind(ch.conc.status),
                };
                self.day_push(var, &day, out)?;
            }
        }
        if self.mass_vars.is_empty() {
            return Ok(());
        }
        self.held.insert(
            h.hour,
            Held {
                flow_total: h.flow_total,
                conc: h.channels.iter().map(|c| c.conc.value).collect(),
                remaining: self.mass_vars.len() as u32,
            },
        );
        for i in 0..self.mass_vars.len() {
            let var = self.mass_vars[i];
            let ch = &h.channels[var - 1];
            let resolved = self.subst[i].push(h.hour, ch.mass, ch.mass_status)?;
            for r in resolved {
                let (conc, flow_total) = match self.held.get_mut(&r.hour) {
                    Some(held) => {
                        held.remaining = held.remaining.saturating_sub(1);
                        (held.conc[var - 1], held.flow_total)
                    }
                    None => (f64::NAN, f64::NAN),
                };
                if self.held.get(&r.hour).is_some_and(|x| x.remaining == 0) {
                    self.held.remove(&r.hour);
                }
                let kind = match r.rule {
                    Rule::Measured => HourKind::Measured,
                    Rule::NotOperating => HourKind::NotOperating,
                    _ if r.value.is_finite() => HourKind::Substituted,
                    _ => HourKind::Missing,
                };
                out.resolved.push(ResolvedOut {
                    hour: r.hour,
                    var: var as u16,
                    mass: r.value,
                    rule: r.rule,
                    availability_pct: r.availability_pct,
                    gap_hours: r.gap_hours,
                });
                self.totals[i].push(r.hour, r.value, r.rule.is_substituted())?;
                let day = DayHour {
                    hour: r.hour,
                    conc,
                    flow_total,
                    mass: r.value,
                    kind,
                };
                self.day_push(var, &day, out)?;
            }
        }
        Ok(())
    }

    /// Running totals of every mass channel.
    pub fn totals(&self) -> Vec<ChannelTotals> {
        self.mass_vars
            .iter()
            .enumerate()
            .map(|(i, &var)| {
                let s = self.subst[i].totals();
                let t = &self.totals[i];
                ChannelTotals {
                    var: var as u16,
                    cumulative: t.cumulative(),
                    year_to_date: t.year_to_date(),
                    quarter: t.current_quarter(),
                    measured_hours: s.measured_hours,
                    substituted_hours: s.substituted_hours,
                    not_operating_hours: s.not_operating_hours,
                    substituted_mass: s.substituted_sum,
                    pending_hours: self.subst[i].open_gap_hours(),
                }
            })
            .collect()
    }

    /// Hours closed but held until their substitution resolves.
    pub fn held_hours(&self) -> usize {
        self.held.len()
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(PIPELINE_MAGIC);
        w.bytes(&self.config.fingerprint());
        w.bytes(&self.minutes.snapshot());
        w.bytes(&self.hours.snapshot());
        for s in &self.subst {
            w.bytes(&s.snapshot());
        }
        for t in &self.totals {
            w.bytes(&t.snapshot());
        }
        for d in &self.days {
            w.bytes(&d.snapshot());
        }
        for t in &self.trackers {
            w.f64(t.run_first);
            w.u32(t.run_len);
            w.f64(t.prev);
        }
        w.u64(self.held.len() as u64);
        for (hour, h) in &self.held {
            w.i64(*hour);
            w.f64(h.flow_total);
            w.u32(h.remaining);
            for v in &h.conc {
                w.f64(*v);
            }
        }
        w.u64(self.hour_bits.len() as u64);
        for (hour, bits) in &self.hour_bits {
            w.i64(*hour);
            w.out.extend_from_slice(bits);
        }
        w.u64(self.repeated.len() as u64);
        for m in &self.repeated {
            w.i64(*m);
        }
        w.u8(u8::from(self.last_fingerprint.is_some()));
        w.u64(self.last_fingerprint.unwrap_or(0));
        w.u32(self.repeat_run);
        w.u8(u8::from(self.late_before_minute.is_some()));
        w.i64(self.late_before_minute.unwrap_or(0));
        w.finish()
    }

    pub fn restore(config: PipelineConfig, bytes: &[u8]) -> Result<Self, CemsError> {
        let mut me = Self::new(config)?;
        let stack = me.config.stack();
        let c = &me.config;
        let mut r = Reader::new(bytes, PIPELINE_MAGIC)?;
        r.fingerprint(&c.fingerprint(), "stack pipeline configuration")?;
        me.minutes = MinuteAggregator::restore(stack.clone(), c.min_valid_samples, r.bytes()?)?;
        me.hours = HourAggregator::restore(stack, r.bytes()?)?;
        for (i, &var) in me.mass_vars.iter().enumerate() {
            me.subst[i] = Substitutor::restore(
                c.policy,
                c.channels[var - 1].max_potential,
                c.max_fill_hours,
                r.bytes()?,
            )?;
        }
        for t in &mut me.totals {
            *t = PeriodTotals::restore(c.utc_offset_minutes, r.bytes()?)?;
        }
        for d in &mut me.days {
            *d = DayAggregator::restore(c.policy, c.utc_offset_minutes, r.bytes()?)?;
        }
        for t in &mut me.trackers {
            *t = Tracker {
                run_first: r.f64()?,
                run_len: r.u32()?,
                prev: r.f64()?,
            };
        }
        let channels = c.channels.len();
        let n = r.len(20 + 8 * channels)?;
        for _ in 0..n {
            let hour = r.i64()?;
            let flow_total = r.f64()?;
            let remaining = r.u32()?;
            let conc = (0..channels).map(|_| r.f64()).collect::<Result<_, _>>()?;
            me.held.insert(
                hour,
                Held {
                    flow_total,
                    conc,
                    remaining,
                },
            );
        }
        let vars = c.variables();
        let n = r.len(8 + vars)?;
        for _ in 0..n {
            let hour = r.i64()?;
            me.hour_bits.insert(hour, r.take(vars)?.to_vec());
        }
        let n = r.len(8)?;
        for _ in 0..n {
            me.repeated.insert(r.i64()?);
        }
        let has_fp = r.u8()? != 0;
        let fp = r.u64()?;
        me.last_fingerprint = has_fp.then_some(fp);
        me.repeat_run = r.u32()?;
        let has_late = r.u8()? != 0;
        let late = r.i64()?;
        me.late_before_minute = has_late.then_some(late);
        r.end()?;
        Ok(me)
    }
}

const PIPELINE_MAGIC: &[u8; 8] = b"CSPIPEv1";
