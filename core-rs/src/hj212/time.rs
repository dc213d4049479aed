//! HJ 212 time stamps: civil date-times of the data logger's LOCAL clock.
//!
//! `QN` (`YYYYMMDDhhmmsszzz`) and `DataTime`/`SampleTime`/... (`YYYYMMDDhhmmss`) carry no UTC offset:
//! they are the logger's wall clock, in practice China Standard Time. The parser therefore keeps
//! the civil components and leaves the offset to the caller ([`CivilDateTime::to_unix_ms`]), who
//! knows the site. A logger whose clock was reset sends impossible or absurd stamps (month 13,
//! year 9999, 2000-01-01 after a battery failure is *possible* and is the caller's plausibility
//! check); impossible ones are rejected here with the component that was wrong.

use std::fmt;

use thiserror::Error;

/// Years outside this range are rejected as absurd. HJ 212 dates from 2005; a logger RTC that
/// reports 19xx or 21xx is broken, and rejecting it keeps a bad clock from creating data decades
/// away from now (which downstream time grids would have to allocate for).
pub const MIN_YEAR: u16 = 2000;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: u16 = 2099;

/// China Standard Time, the offset of nearly every HJ 212 logger. The caller decides; this is only
/// the usual value.
pub const CHINA_STANDARD_TIME_OFFSET_MINUTES: i32 = 8 * 60;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    #[error("expected {expected} digits, got {got} characters")]
    BadLength { expected: u8, got: usize },
    #[error("contains a non-digit character")]
    NotDigits,
    #[error("year {0} is outside {MIN_YEAR}..={MAX_YEAR}")]
    Year(u16),
    #[error("month {0} is not 1..=12")]
    Month(u8),
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day { year: u16, month: u8, day: u8 },
    #[error("hour {0} is not 0..=23")]
    Hour(u8),
    #[error("minute {0} is not 0..=59")]
    Minute(u8),
    #[error("second {0} is not 0..=59")]
    Second(u8),
    #[error("millisecond {0} is not 0..=999")]
    Millisecond(u16),
    #[error("instant is outside the representable civil range")]
    OutOfRange,
}

/// A validated civil (wall-clock) date-time with millisecond precision, no offset attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millisecond: u16,
}

impl CivilDateTime {
    /// Validates every component (leap years included; leap seconds are not accepted: loggers do
    /// not produce them and accepting `:60` would make two stamps map to one instant).
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        millisecond: u16,
    ) -> Result<Self, TimeError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(TimeError::Year(year));
        }
        if !(1..=12).contains(&month) {
            return Err(TimeError::Month(month));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(TimeError::Day { year, month, day });
        }
        if hour > 23 {
            return Err(TimeError::Hour(hour));
        }
        if minute > 59 {
            return Err(TimeError::Minute(minute));
        }
        if second > 59 {
            return Err(TimeError::Second(second));
        }
        if millisecond > 999 {
            return Err(TimeError::Millisecond(millisecond));
        }
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        })
    }

    /// Parses `YYYYMMDDhhmmss` (the `DataTime` form).
    pub fn parse_seconds(s: &str) -> Result<Self, TimeError> {
        Self::parse_digits(s.as_bytes(), 14)
    }

    /// Parses `YYYYMMDDhhmmsszzz` (the `QN` form, with milliseconds).
    pub fn parse_millis(s: &str) -> Result<Self, TimeError> {
        Self::parse_digits(s.as_bytes(), 17)
    }

    fn parse_digits(b: &[u8], expected: u8) -> Result<Self, TimeError> {
        if b.len() != expected as usize {
            return Err(TimeError::BadLength {
                expected,
                got: b.len(),
            });
        }
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(TimeError::NotDigits);
        }
        let n = |r: std::ops::Range<usize>| -> u16 {
            b[r].iter()
                .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'))
        };
        let ms = if expected == 17 { n(14..17) } else { 0 };
        Self::new(
            n(0..4),
            n(4..6) as u8,
            n(6..8) as u8,
            n(8..10) as u8,
            n(10..12) as u8,
            n(12..14) as u8,
            ms,
        )
    }

    /// Milliseconds since the Unix epoch of this wall-clock time read at `utc_offset_minutes`
    /// east of UTC (480 for China Standard Time). The offset is the caller's: a stamp alone
    /// cannot tell it.
    pub fn to_unix_ms(&self, utc_offset_minutes: i32) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        let local_s = days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        (local_s - i64::from(utc_offset_minutes) * 60) * 1_000 + i64::from(self.millisecond)
    }

    /// Nanoseconds since the Unix epoch (the unit of [`crate::grid::Grid`]); see [`Self::to_unix_ms`].
    pub fn to_unix_ns(&self, utc_offset_minutes: i32) -> i64 {
        self.to_unix_ms(utc_offset_minutes) * 1_000_000
    }

    /// The wall-clock time at `utc_offset_minutes` of an instant; fails outside the year range.
    pub fn from_unix_ms(unix_ms: i64, utc_offset_minutes: i32) -> Result<Self, TimeError> {
        let local_ms = unix_ms
            .checked_add(i64::from(utc_offset_minutes) * 60_000)
            .ok_or(TimeError::OutOfRange)?;
        let days = local_ms.div_euclid(86_400_000);
        let ms_of_day = local_ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let year = u16::try_from(y).map_err(|_| TimeError::OutOfRange)?;
        Self::new(
            year,
            m,
            d,
            (ms_of_day / 3_600_000) as u8,
            (ms_of_day / 60_000 % 60) as u8,
            (ms_of_day / 1_000 % 60) as u8,
            (ms_of_day % 1_000) as u16,
        )
    }

    /// `YYYYMMDDhhmmss`, the form of `DataTime`.
    pub fn seconds_text(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYYMMDDhhmmsszzz`, the form of `QN`.
    pub fn millis_text(&self) -> String {
        format!("{}{:03}", self.seconds_text(), self.millisecond)
    }
}

impl fmt::Display for CivilDateTime {
    /// ISO 8601 without offset, because there is none in the data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millisecond
        )
    }
}

pub fn is_leap_year(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_leap_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        for d in -800_000..800_000i64 {
            if d % 997 == 0 {
                let (y, m, dd) = civil_from_days(d);
                assert_eq!(days_from_civil(y, m, dd), d);
            }
        }
    }
}
