//! Hours -> days for one channel, after substitution.
//!
//! HJ 75: a daily value is valid with >= 20 valid (measured) hours, prorated by operating hours
//! like the hourly rule. The daily concentration is flow-weighted over the measured hours; the
//! daily mass and flow are sums over measured and substituted hours (substituted hours are
//! emissions too, they just do not make the daily average valid). Part 75 has no daily validity
//! rule: a day is valid when none of its operating hours is left missing.
//!
//! Days are local calendar days at the caller's fixed UTC offset (China: +480 min). A mass or
//! flow that is not a number (an hour not substituted) adds nothing to the sums.

use super::error::CemsError;
use super::hour::HourStatus;
use super::policy::Policy;
use super::snapshot::{Reader, Writer};

/// What an hourly value fed to the day is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HourKind {
    Measured = 0,
    Substituted = 1,
    NotOperating = 2,
    /// Invalid and not (yet) substituted.
    Missing = 3,
}

/// One hour of one channel: concentration, flow volume, mass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayHour {
    pub hour: i64,
    pub conc: f64,
    pub flow_total: f64,
    pub mass: f64,
    pub kind: HourKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayRecord {
    /// Local day index: days since 1970-01-01 at the configured offset.
    pub day: i64,
    pub status: HourStatus,
    /// Flow-weighted over measured hours; NaN unless `status` is Valid.
    pub conc: f64,
    pub flow_total: f64,
    pub mass: f64,
    pub measured_hours: u8,
    pub substituted_hours: u8,
    pub not_operating_hours: u8,
    /// Hours never fed, or fed as Missing.
    pub missing_hours: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct DayAcc {
    cq: f64,
    q: f64,
    c_sum: f64,
    flow: f64,
    mass: f64,
    measured: u8,
    substituted: u8,
    not_operating: u8,
    fed: u8,
}

/// Incremental hours -> days for one channel.
#[derive(Clone, Debug)]
pub struct DayAggregator {
    policy: Policy,
    utc_offset_minutes: i32,
    /// Next hour expected (all earlier ones were fed).
    next_hour: Option<i64>,
    open: Option<(i64, DayAcc)>,
}

impl DayAggregator {
    pub fn new(policy: Policy, utc_offset_minutes: i32) -> Result<Self, CemsError> {
        policy.validate()?;
        if utc_offset_minutes.abs() > 14 * 60 {
            return Err(CemsError::BadConfig("UTC offset beyond +/-14 h"));
        }
        Ok(Self {
            policy,
            utc_offset_minutes,
            next_hour: None,
            open: None,
        })
    }

    /// Local day of a Unix hour.
    pub fn day_of(&self, hour: i64) -> i64 {
        (hour * 60 + i64::from(self.utc_offset_minutes)).div_euclid(1_440)
    }

    /// Adds an hour (hours must come in order; gaps count as missing); returns closed days.
    pub fn push(&mut self, h: &DayHour) -> Result<Vec<DayRecord>, CemsError> {
        if let Some(next) = self.next_hour
            && h.hour < next
        {
            return Err(CemsError::LateHour {
                hour: h.hour,
                last: next - 1,
            });
        }
        let day = self.day_of(h.hour);
        let mut out = Vec::new();
        if let Some((d, _)) = self.open
            && d != day
        {
            out.extend(self.take());
        }
        self.next_hour = Some(h.hour + 1);
        let acc = &mut self.open.get_or_insert((day, DayAcc::default())).1;
        acc.fed += 1;
        match h.kind {
            HourKind::Measured => {
                acc.measured += 1;
                acc.c_sum += h.conc;
                if h.flow_total.is_finite() {
                    acc.cq += h.conc * h.flow_total;
                    acc.q += h.flow_total;
                }
                acc.flow += finite(h.flow_total);
                acc.mass += finite(h.mass);
            }
            HourKind::Substituted => {
                acc.substituted += 1;
                acc.flow += finite(h.flow_total);
                acc.mass += finite(h.mass);
            }
            HourKind::NotOperating => acc.not_operating += 1,
            HourKind::Missing => {}
        }
        Ok(out)
    }

    /// Closes the open day if it ends at or before Unix hour `hour` (watermark).
    pub fn close_until(&mut self, hour: i64) -> Option<DayRecord> {
        match self.open {
            Some((d, _)) if self.day_of(hour) > d => self.take(),
            _ => None,
        }
    }

    fn take(&mut self) -> Option<DayRecord> {
        let (day, a) = self.open.take()?;
        let missing = 24 - a.measured - a.substituted - a.not_operating;
        let operating = 24 - u32::from(a.not_operating);
        let status = if operating == 0 {
            HourStatus::NotOperating
        } else {
            let ok = match self.policy {
                Policy::Hj75(r) => {
                    let need = if r.prorate_partial_operation {
                        (u32::from(r.min_valid_hours) * operating)
                            .div_ceil(24)
                            .max(1)
                    } else {
                        u32::from(r.min_valid_hours)
                    };
                    u32::from(a.measured) >= need
                }
                Policy::Part75(_) => missing == 0,
            };
            if ok {
                HourStatus::Valid
            } else {
                HourStatus::Invalid
            }
        };
        let conc = match status {
            HourStatus::Valid if a.q > 0.0 => a.cq / a.q,
            HourStatus::Valid if a.measured > 0 => a.c_sum / f64::from(a.measured),
            _ => f64::NAN,
        };
        Some(DayRecord {
            day,
            status,
            conc,
            flow_total: a.flow,
            mass: a.mass,
            measured_hours: a.measured,
            substituted_hours: a.substituted,
            not_operating_hours: a.not_operating,
            missing_hours: missing,
        })
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(DAY_MAGIC);
        let mut fp = Vec::new();
        self.policy.fingerprint(&mut fp);
        fp.extend_from_slice(&self.utc_offset_minutes.to_le_bytes());
        w.bytes(&fp);
        w.u8(u8::from(self.next_hour.is_some()));
        w.i64(self.next_hour.unwrap_or(0));
        match &self.open {
            None => w.u8(0),
            Some((d, a)) => {
                w.u8(1);
                w.i64(*d);
                for v in [a.cq, a.q, a.c_sum, a.flow, a.mass] {
                    w.f64(v);
                }
                for v in [a.measured, a.substituted, a.not_operating, a.fed] {
                    w.u8(v);
                }
            }
        }
        w.finish()
    }

    pub fn restore(
        policy: Policy,
        utc_offset_minutes: i32,
        bytes: &[u8],
    ) -> Result<Self, CemsError> {
        let mut me = Self::new(policy, utc_offset_minutes)?;
        let mut r = Reader::new(bytes, DAY_MAGIC)?;
        let mut fp = Vec::new();
        policy.fingerprint(&mut fp);
        fp.extend_from_slice(&utc_offset_minutes.to_le_bytes());
        r.fingerprint(&fp, "policy or UTC offset")?;
        let has_next = r.u8()? != 0;
        let next = r.i64()?;
        me.next_hour = has_next.then_some(next);
        me.open = match r.u8()? {
            0 => None,
            1 => {
                let d = r.i64()?;
                let a = DayAcc {
                    cq: r.f64()?,
                    q: r.f64()?,
                    c_sum: r.f64()?,
                    flow: r.f64()?,
                    mass: r.f64()?,
                    measured: r.u8()?,
                    substituted: r.u8()?,
                    not_operating: r.u8()?,
                    fed: r.u8()?,
                };
                if u32::from(a.measured) + u32::from(a.substituted) + u32::from(a.not_operating)
                    > 24
                {
                    return Err(CemsError::CorruptSnapshot("more than 24 hours in a day"));
                }
                Some((d, a))
            }
            _ => return Err(CemsError::CorruptSnapshot("open-day tag")),
        };
        r.end()?;
        Ok(me)
    }
}

/// A value that is not a number adds nothing to a sum (substitute the series first to have it
/// counted) instead of turning a whole day into NaN.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

const DAY_MAGIC: &[u8; 8] = b"CSDAYv01";
