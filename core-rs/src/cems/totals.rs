//! Cumulative emission totals by calendar quarter and year (Part 75 F-12: `E_q = sum(E_h * t_h)`,
//! annual = sum of quarters; the same sums serve HJ 75 reporting periods).
//!
//! Fed the (substituted) hourly mass series in hour order; quarters are local calendar quarters
//! at the caller's UTC offset. The hourly mass must already include the operating fraction
//! (`StackHour` masses do).

use crate::hj212::time::civil_from_days;

use super::error::CemsError;
use super::snapshot::{Reader, Writer};

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuarterTotal {
    pub year: i64,
    /// 1..=4.
    pub quarter: u8,
    /// Measured plus substituted mass.
    pub total: f64,
    /// The substituted part of `total`.
    pub substituted: f64,
    /// Hours fed (any status).
    pub hours: u32,
}

/// Running quarter, year-to-date and all-time totals of one mass series.
#[derive(Clone, Debug)]
pub struct PeriodTotals {
    utc_offset_minutes: i32,
    next_hour: Option<i64>,
    quarter: Option<QuarterTotal>,
    year_to_date: f64,
    cumulative: f64,
}

impl PeriodTotals {
    pub fn new(utc_offset_minutes: i32) -> Self {
        Self {
            utc_offset_minutes,
            next_hour: None,
            quarter: None,
            year_to_date: 0.0,
            cumulative: 0.0,
        }
    }

    /// Local (year, quarter) of a Unix hour.
    pub fn quarter_of(&self, hour: i64) -> (i64, u8) {
        let local_min = hour * 60 + i64::from(self.utc_offset_minutes);
        let (y, m, _) = civil_from_days(local_min.div_euclid(1_440));
        (y, (m - 1) / 3 + 1)
    }

    /// Adds an hour's mass (NaN counts as 0: a missing hour adds nothing, it is not a number to
    /// propagate into a year's total). Returns the quarter this hour closed, if any.
    pub fn push(
        &mut self,
        hour: i64,
        mass: f64,
        substituted: bool,
    ) -> Result<Option<QuarterTotal>, CemsError> {
        if let Some(next) = self.next_hour
            && hour < next
        {
            return Err(CemsError::LateHour {
                hour,
                last: next - 1,
            });
        }
        self.next_hour = Some(hour + 1);
        let (year, quarter) = self.quarter_of(hour);
        let mut closed = None;
        if let Some(q) = self.quarter
            && (q.year, q.quarter) != (year, quarter)
        {
            closed = self.quarter.take();
            if q.year != year {
                self.year_to_date = 0.0;
            }
        }
        let q = self.quarter.get_or_insert(QuarterTotal {
            year,
            quarter,
            ..QuarterTotal::default()
        });
        let m = if mass.is_finite() { mass } else { 0.0 };
        q.total += m;
        if substituted {
            q.substituted += m;
        }
        q.hours += 1;
        self.year_to_date += m;
        self.cumulative += m;
        Ok(closed)
    }

    /// The quarter in progress.
    pub fn current_quarter(&self) -> Option<QuarterTotal> {
        self.quarter
    }

    pub fn year_to_date(&self) -> f64 {
        self.year_to_date
    }

    pub fn cumulative(&self) -> f64 {
        self.cumulative
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(TOTALS_MAGIC);
        w.bytes(&self.utc_offset_minutes.to_le_bytes());
        w.u8(u8::from(self.next_hour.is_some()));
        w.i64(self.next_hour.unwrap_or(0));
        match self.quarter {
            None => w.u8(0),
            Some(q) => {
                w.u8(1);
                w.i64(q.year);
                w.u8(q.quarter);
                w.f64(q.total);
                w.f64(q.substituted);
                w.u32(q.hours);
            }
        }
        w.f64(self.year_to_date);
        w.f64(self.cumulative);
        w.finish()
    }

    pub fn restore(utc_offset_minutes: i32, bytes: &[u8]) -> Result<Self, CemsError> {
        let mut r = Reader::new(bytes, TOTALS_MAGIC)?;
        r.fingerprint(&utc_offset_minutes.to_le_bytes(), "UTC offset")?;
        let has_next = r.u8()? != 0;
        let next = r.i64()?;
        let quarter = match r.u8()? {
            0 => None,
            1 => Some(QuarterTotal {
                year: r.i64()?,
                quarter: r.u8()?,
                total: r.f64()?,
                substituted: r.f64()?,
                hours: r.u32()?,
            }),
            _ => return Err(CemsError::CorruptSnapshot("quarter tag")),
        };
        let me = Self {
            utc_offset_minutes,
            next_hour: has_next.then_some(next),
            quarter,
            year_to_date: r.f64()?,
            cumulative: r.f64()?,
        };
        r.end()?;
        Ok(me)
    }
}

const TOTALS_MAGIC: &[u8; 8] = b"CSTOTv01";
