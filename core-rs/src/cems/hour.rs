//! Minutes -> hours, with the hourly validity rule of the site's policy.
//!
//! HJ 75: an hourly value is valid with >= 45 valid minutes (prorated by operating time, see
//! [`super::Hj75Rules`]); the hourly concentration is flow-weighted (sum of C*Q over sum of Q)
//! and the hourly mass is concentration x flow total, which equals the sum of the minute masses
//! when every operating minute is valid (and scales the valid minutes to the operating time when
//! a few are missing).
//!
//! Part 75 (§75.10(d)): valid with at least one valid reading in each 15-minute quadrant in
//! which the unit operated; in an hour with calibration or maintenance, two valid readings at
//! least 15 minutes apart (one, if the unit ran in a single quadrant). The hourly average is the
//! arithmetic mean; mass is `E_h * t_h` with `t_h` the operating fraction (F-12 term).
//!
//! Minutes are kept individually until the hour closes (60 values per variable), so minutes of
//! the open hour may arrive in any order and the result does not depend on it. A later hour's
//! minute, or [`HourAggregator::close_until`], closes the hour; hours without any minute in between
//! are emitted as missing (invalid) hours so substitution sees the gap.

use crate::hj212::DataFlag;

use super::error::CemsError;
use super::flags::{FlagCounts, FlagEffect, Reading, flag_code, flag_from_code};
use super::policy::Policy;
use super::snapshot::{Reader, Writer};
use super::stack::{StackConfig, StackMinute};

/// Status of an hourly (or daily) value.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HourStatus {
    /// Enough valid measured data.
    Valid = 0,
    /// Not enough: the value is missing and must be substituted.
    Invalid = 1,
    /// The unit did not operate (F for the whole period): no emission, nothing to substitute.
    NotOperating = 2,
}

/// The hourly value of one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariableHour {
    /// Hourly average (NaN unless `status` is Valid).
    pub value: f64,
    pub status: HourStatus,
    pub valid_minutes: u8,
    pub flags: FlagCounts,
}

/// The hourly values of one channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelHour {
    pub conc: VariableHour,
    /// Mass emitted in the hour (`mass_factor` units: kg, short tons...). 0 when not operating,
    /// NaN unless both the concentration and the flow are valid.
    pub mass: f64,
    pub mass_status: HourStatus,
}

/// One closed hour of a stack.
#[derive(Clone, Debug, PartialEq)]
pub struct StackHour {
    /// Unix hour index (`minute.div_euclid(60)`).
    pub hour: i64,
    /// Minutes not flagged F (minutes without data count as operating).
    pub operating_minutes: u8,
    pub flow: VariableHour,
    /// Flow volume of the hour: average rate x operating fraction (NaN unless flow is valid).
    pub flow_total: f64,
    pub channels: Vec<ChannelHour>,
}

impl StackHour {
    /// `t_h`: fraction of the clock hour the unit operated.
    pub fn operating_fraction(&self) -> f64 {
        f64::from(self.operating_minutes) / 60.0
    }
}

/// Mass of an hour from (possibly substituted) hourly values: `k * C * Q * t_h`.
pub fn hour_mass(mass_factor: f64, conc: f64, flow_rate: f64, operating_fraction: f64) -> f64 {
    mass_factor * conc * flow_rate * operating_fraction
}

const ALL_MINUTES: u64 = (1 << 60) - 1;
const QUADRANTS: [u64; 4] = [0x7FFF, 0x7FFF << 15, 0x7FFF << 30, 0x7FFF << 45];

/// The minutes of one variable in the open hour.
#[derive(Clone, Debug, PartialEq)]
struct Slots {
    value: [f64; 60],
    flag: [u8; 60],
}

impl Slots {
    fn new() -> Self {
        Self {
            value: [f64::NAN; 60],
            flag: [0; 60],
        }
    }

    fn set(&mut self, m: usize, r: Option<Reading>) {
        if let Some(r) = r {
            self.value[m] = r.value;
            self.flag[m] = flag_code(Some(r.flag));
        }
    }

    fn flag(&self, m: usize) -> Option<DataFlag> {
        flag_from_code(self.flag[m]).flatten()
    }

    /// One pass over the minutes: each flag byte is decoded once for everything the hour needs.
    fn scan(&self, upper: Option<f64>) -> Scan {
        let mut s = Scan {
            valid: 0,
            values: [f64::NAN; 60],
            counts: FlagCounts::default(),
            qa: 0,
        };
        for m in 0..60 {
            let flag = self.flag(m);
            s.counts.add(flag);
            let Some(flag) = flag else { continue };
            if FlagEffect::of(flag).is_qa_activity() {
                s.qa |= 1 << m;
            }
            if let Some(x) = Reading::new(self.value[m], flag).valid_value(upper) {
                s.valid |= 1 << m;
                s.values[m] = x;
            }
        }
        s
    }
}

/// What an hour needs from the minutes of one variable.
struct Scan {
    /// Minutes with a valid value (capped), as a bit mask, and the values (NaN elsewhere).
    valid: u64,
    values: [f64; 60],
    counts: FlagCounts,
    /// Minutes with a QA or maintenance flag (C, M).
    qa: u64,
}

#[derive(Clone, Debug, PartialEq)]
struct OpenHour {
    hour: i64,
    seen: u64,
    flow: Slots,
    channels: Vec<Slots>,
}

/// Incremental minute -> hour aggregation for one stack.
#[derive(Clone, Debug)]
pub struct HourAggregator {
    config: StackConfig,
    /// First hour not yet emitted; `None` before the first minute.
    cursor: Option<i64>,
    open: Option<OpenHour>,
}

fn mean(mask: u64, v: &[f64; 60]) -> f64 {
    let n = mask.count_ones();
    if n == 0 {
        return f64::NAN;
    }
    (0..60)
        .filter(|m| mask & (1 << m) != 0)
        .map(|m| v[m])
        .sum::<f64>()
        / f64::from(n)
}

impl HourAggregator {
    pub fn new(config: StackConfig) -> Result<Self, CemsError> {
        config.validate()?;
        Ok(Self {
            config,
            cursor: None,
            open: None,
        })
    }

    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Records one minute; returns the hours this closes (in order). A minute of an hour already
    /// closed, or one already recorded, is refused without changing state.
    pub fn push(&mut self, minute: &StackMinute<'_>) -> Result<Vec<StackHour>, CemsError> {
        if minute.channels.len() != self.config.channels.len() {
            return Err(CemsError::ChannelCount {
                minute: minute.minute,
                expected: self.config.channels.len(),
                got: minute.channels.len(),
            });
        }
        let hour = minute.minute.div_euclid(60);
        let m = minute.minute.rem_euclid(60) as usize;
        let cursor = *self.cursor.get_or_insert(hour);
        if hour < cursor {
            return Err(CemsError::LateMinute {
                minute: minute.minute,
                open_hour: cursor,
            });
        }
        if let Some(open) = &self.open
            && open.hour == hour
            && open.seen & (1 << m) != 0
        {
            return Err(CemsError::DuplicateMinute {
                minute: minute.minute,
            });
        }
        // 59 minutes in 60 close nothing: no call, no result to move.
        let closed = if hour > cursor {
            self.close_before(hour)?
        } else {
            Vec::new()
        };
        let n = self.config.channels.len();
        let open = self.open.get_or_insert_with(|| OpenHour {
            hour,
            seen: 0,
            flow: Slots::new(),
            channels: vec![Slots::new(); n],
        });
        open.seen |= 1 << m;
        open.flow.set(m, minute.flow);
        for (slots, r) in open.channels.iter_mut().zip(minute.channels) {
            slots.set(m, *r);
        }
        Ok(closed)
    }

    /// Closes every hour that ends at or before `minute` (a watermark: no more data will come for
    /// them), including hours that received nothing. Does nothing before the first minute.
    pub fn close_until(&mut self, minute: i64) -> Result<Vec<StackHour>, CemsError> {
        self.close_before(minute.div_euclid(60))
    }

    /// Emits every hour before `hour`, moving the cursor to it.
    fn close_before(&mut self, hour: i64) -> Result<Vec<StackHour>, CemsError> {
        let Some(cursor) = self.cursor else {
            return Ok(Vec::new());
        };
        if hour <= cursor {
            return Ok(Vec::new());
        }
        let max = i64::from(self.config.max_fill_hours);
        if hour - cursor - 1 > max {
            return Err(CemsError::TimeJump {
                from: cursor,
                to: hour,
                hours: hour - cursor,
                max,
            });
        }
        let mut out = Vec::with_capacity((hour - cursor) as usize);
        let open = self.open.take();
        for h in cursor..hour {
            match &open {
                Some(o) if o.hour == h => out.push(self.finish(o)),
                _ => out.push(self.finish(&self.empty(h))),
            }
        }
        self.cursor = Some(hour);
        Ok(out)
    }

    fn empty(&self, hour: i64) -> OpenHour {
        OpenHour {
            hour,
            seen: 0,
            flow: Slots::new(),
            channels: vec![Slots::new(); self.config.channels.len()],
        }
    }

    /// Minutes in which the unit operated: not when the flow says F, nor when there is no flow
    /// reading and every channel reading present says F.
    fn operating_mask(o: &OpenHour) -> u64 {
        // As bit masks over the minutes: which have a reading, and which one that is not F.
        let readings = |s: &Slots| {
            let (mut present, mut running) = (0u64, 0u64);
            for m in 0..60 {
                if let Some(f) = s.flag(m) {
                    present |= 1 << m;
                    if f != DataFlag::Stopped {
                        running |= 1 << m;
                    }
                }
            }
            (present, running)
        };
        let (flow_present, flow_running) = readings(&o.flow);
        let (mut channel_present, mut channel_running) = (0, 0);
        for c in &o.channels {
            let (present, running) = readings(c);
            channel_present |= present;
            channel_running |= running;
        }
        let stopped =
            (flow_present & !flow_running) | (!flow_present & channel_present & !channel_running);
        !stopped & ALL_MINUTES
    }

    fn status(&self, operating: u64, valid: u64, qa: bool) -> HourStatus {
        let op = operating.count_ones();
        if op == 0 {
            return HourStatus::NotOperating;
        }
        let ok = match self.config.policy {
            Policy::Hj75(r) => {
                let need = if r.prorate_partial_operation {
                    (u32::from(r.min_valid_minutes) * op).div_ceil(60).max(1)
                } else {
                    u32::from(r.min_valid_minutes)
                };
                valid.count_ones() >= need
            }
            Policy::Part75(_) => {
                let operated: Vec<u64> = QUADRANTS
                    .iter()
                    .copied()
                    .filter(|q| operating & q != 0)
                    .collect();
                if qa && operated.len() >= 2 {
                    valid != 0 && (63 - valid.leading_zeros()) - valid.trailing_zeros() >= 15
                } else if qa {
                    valid != 0
                } else {
                    operated.iter().all(|q| valid & q != 0)
                }
            }
        };
        if ok {
            HourStatus::Valid
        } else {
            HourStatus::Invalid
        }
    }

    fn finish(&self, o: &OpenHour) -> StackHour {
        let operating = Self::operating_mask(o);
        let op = operating.count_ones();
        let t_h = f64::from(op) / 60.0;
        let flow_scan = o.flow.scan(self.config.flow_upper_limit);
        let flow_v = &flow_scan.values;
        let flow_mask = flow_scan.valid & operating;
        let flow_status = self.status(operating, flow_mask, flow_scan.qa & operating != 0);
        let flow_avg = mean(flow_mask, flow_v);
        let flow = VariableHour {
            value: if flow_status == HourStatus::Valid {
                flow_avg
            } else {
                f64::NAN
            },
            status: flow_status,
            valid_minutes: flow_mask.count_ones() as u8,
            flags: flow_scan.counts,
        };
        let flow_total = match flow_status {
            HourStatus::Valid => flow_avg * t_h,
            HourStatus::NotOperating => 0.0,
            HourStatus::Invalid => f64::NAN,
        };
        let channels = o
            .channels
            .iter()
            .zip(&self.config.channels)
            .map(|(slots, cfg)| {
                let scan = slots.scan(cfg.upper_limit);
                let (mask, v) = (scan.valid & operating, &scan.values);
                let status = self.status(operating, mask, scan.qa & operating != 0);
                let conc = match (status, self.config.policy) {
                    (HourStatus::Valid, Policy::Hj75(_)) => {
                        flow_weighted(mask & flow_mask, v, flow_v).unwrap_or_else(|| mean(mask, v))
                    }
                    (HourStatus::Valid, Policy::Part75(_)) => mean(mask, v),
                    _ => f64::NAN,
                };
                let (mass, mass_status) = match (status, flow_status) {
                    (HourStatus::NotOperating, _) | (_, HourStatus::NotOperating) => {
                        (0.0, HourStatus::NotOperating)
                    }
                    (HourStatus::Valid, HourStatus::Valid) => (
                        hour_mass(cfg.mass_factor, conc, flow_avg, t_h),
                        HourStatus::Valid,
                    ),
                    _ => (f64::NAN, HourStatus::Invalid),
                };
                ChannelHour {
                    conc: VariableHour {
                        value: conc,
                        status,
                        valid_minutes: mask.count_ones() as u8,
                        flags: scan.counts,
                    },
                    mass,
                    mass_status,
                }
            })
            .collect();
        StackHour {
            hour: o.hour,
            operating_minutes: op as u8,
            flow,
            flow_total,
            channels,
        }
    }

    /// Serialises the open hour and the cursor.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(HOUR_MAGIC);
        w.bytes(&self.config.fingerprint());
        match self.cursor {
            Some(c) => {
                w.u8(1);
                w.i64(c);
            }
            None => w.u8(0),
        }
        match &self.open {
            Some(o) => {
                w.u8(1);
                w.i64(o.hour);
                w.u64(o.seen);
                for s in std::iter::once(&o.flow).chain(&o.channels) {
                    for v in s.value {
                        w.f64(v);
                    }
                    w.out.extend_from_slice(&s.flag);
                }
            }
            None => w.u8(0),
        }
        w.finish()
    }

    /// Resumes from a snapshot taken under the same configuration.
    pub fn restore(config: StackConfig, bytes: &[u8]) -> Result<Self, CemsError> {
        config.validate()?;
        let mut r = Reader::new(bytes, HOUR_MAGIC)?;
        r.fingerprint(&config.fingerprint(), "stack configuration")?;
        let cursor = match r.u8()? {
            0 => None,
            1 => Some(r.i64()?),
            _ => return Err(CemsError::CorruptSnapshot("cursor tag")),
        };
        let open = match r.u8()? {
            0 => None,
            1 => {
                let hour = r.i64()?;
                let seen = r.u64()?;
                let mut read_slots = || -> Result<Slots, CemsError> {
                    let mut s = Slots::new();
                    for v in &mut s.value {
                        *v = r.f64()?;
                    }
                    s.flag.copy_from_slice(r.take(60)?);
                    if s.flag.iter().any(|&c| flag_from_code(c).is_none()) {
                        return Err(CemsError::CorruptSnapshot("unknown flag code"));
                    }
                    Ok(s)
                };
                let flow = read_slots()?;
                let channels = (0..config.channels.len())
                    .map(|_| read_slots())
                    .collect::<Result<_, _>>()?;
                Some(OpenHour {
                    hour,
                    seen,
                    flow,
                    channels,
                })
            }
            _ => return Err(CemsError::CorruptSnapshot("open-hour tag")),
        };
        r.end()?;
        Ok(Self {
            config,
            cursor,
            open,
        })
    }
}

/// Sum of C*Q over sum of Q, over the minutes in `mask`; `None` without flow to weight by.
fn flow_weighted(mask: u64, c: &[f64; 60], q: &[f64; 60]) -> Option<f64> {
    let (mut cq, mut sq) = (0.0, 0.0);
    for m in 0..60 {
        if mask & (1 << m) != 0 {
            cq += c[m] * q[m];
            sq += q[m];
        }
    }
    (sq > 0.0).then(|| cq / sq)
}

const HOUR_MAGIC: &[u8; 8] = b"CSHOURv1";
