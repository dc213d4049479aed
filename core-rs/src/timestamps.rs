//! ISO 8601 / RFC 3339 timestamps with a UTC offset, as pushed by utilities and loggers:
//! `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HHMM)` (a space may replace the `T`).
//!
//! Parsing timestamps is the largest cost of a large push when done row by row or format by
//! format; here a whole column (one byte buffer plus offsets) is parsed in one pass. A timestamp
//! without an offset is refused: local time without saying which is how one-hour errors happen.

use thiserror::Error;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    #[error("not an ISO 8601 timestamp")]
    Syntax,
    #[error("no UTC offset (add Z or +08:00)")]
    NoOffset,
    #[error("a date or time field is out of range, or the instant is beyond int64 nanoseconds")]
    Range,
    #[error("offsets {offsets} do not fit a buffer of {len} bytes")]
    Offsets { offsets: usize, len: usize },
}

const NS: i64 = 1_000_000_000;

/// Days from 1970-01-01 to the given proleptic Gregorian date (era arithmetic: 400-year cycles
/// of 146,097 days, years starting in March so the leap day is last).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8], at: usize, n: usize) -> Result<u32, TimestampError> {
    let field = s.get(at..at + n).ok_or(TimestampError::Syntax)?;
    field.iter().try_fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + u32::from(b - b'0'))
        } else {
            Err(TimestampError::Syntax)
        }
    })
}

fn expect(s: &[u8], at: usize, what: &[u8]) -> Result<(), TimestampError> {
    match s.get(at) {
        Some(b) if what.contains(b) => Ok(()),
        _ => Err(TimestampError::Syntax),
    }
}

/// UTC epoch nanoseconds of one timestamp.
pub fn parse_utc_ns(s: &[u8]) -> Result<i64, TimestampError> {
    let year = i64::from(digits(s, 0, 4)?);
    expect(s, 4, b"-")?;
    let month = digits(s, 5, 2)?;
    expect(s, 7, b"-")?;
    let day = digits(s, 8, 2)?;
    expect(s, 10, b"T ")?;
    let hour = digits(s, 11, 2)?;
    expect(s, 13, b":")?;
    let minute = digits(s, 14, 2)?;
    expect(s, 16, b":")?;
    let second = digits(s, 17, 2)?;
    let mut at = 19;
    let mut fraction_ns = 0i64;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < s.len() && s[at].is_ascii_digit() {
            if at - start < 9 {
                fraction_ns = fraction_ns * 10 + i64::from(s[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return Err(TimestampError::Syntax);
        }
        for _ in n..9 {
            fraction_ns *= 10;
        }
    }
    let offset_s: i64 = match s.get(at) {
        None => return Err(TimestampError::NoOffset),
        Some(b'Z') | Some(b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = i64::from(digits(s, at + 1, 2)?);
            let om = if s.get(at + 3) == Some(&b':') {
                at += 6;
                i64::from(digits(s, at - 2, 2)?)
            } else {
                at += 5;
                i64::from(digits(s, at - 2, 2)?)
            };
            if oh > 14 || om > 59 {
                return Err(TimestampError::Range);
            }
            let total = oh * 3600 + om * 60;
            if sign == b'-' { -total } else { total }
        }
        Some(_) => return Err(TimestampError::Syntax),
    };
    if at != s.len() {
        return Err(TimestampError::Syntax);
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(TimestampError::Range);
    }
    let days = days_from_civil(year, month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_s;
    // Years 0000-9999 parse, but only ~1678-2262 fit int64 nanoseconds: beyond, the product
    // would wrap into a plausible-looking instant centuries away (or panic in debug builds).
    seconds
        .checked_mul(NS)
        .and_then(|ns| ns.checked_add(fraction_ns))
        .ok_or(TimestampError::Range)
}

/// Parses a column given as one buffer and `offsets` (n + 1 byte positions, Arrow style).
/// `out[i]` gets the timestamp of row i, and `error[i]` 0 when it parsed, else 1 + the error code
/// (1 syntax, 2 no offset, 3 range).
pub fn parse_column(
    buf: &[u8],
    offsets: &[i64],
    out: &mut [i64],
    error: &mut [u8],
) -> Result<(), TimestampError> {
    let n = offsets.len().saturating_sub(1);
    let bad_offsets = TimestampError::Offsets {
        offsets: offsets.len(),
        len: buf.len(),
    };
    if out.len() != n || error.len() != n {
        return Err(bad_offsets);
    }
    for i in 0..n {
        let (a, b) = (offsets[i], offsets[i + 1]);
        if a < 0 || b < a || b as usize > buf.len() {
            return Err(bad_offsets);
        }
        match parse_utc_ns(&buf[a as usize..b as usize]) {
            Ok(ns) => {
                out[i] = ns;
                error[i] = 0;
            }
            Err(e) => {
                out[i] = 0;
                error[i] = match e {
                    TimestampError::Syntax | TimestampError::Offsets { .. } => 1,
                    TimestampError::NoOffset => 2,
                    TimestampError::Range => 3,
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Result<i64, TimestampError> {
        parse_utc_ns(s.as_bytes())
    }

    #[test]
    fn offsets_fractions_and_separators() {
        assert_eq!(ns("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(ns("2026-03-01T00:00:00Z"), Ok(1_772_323_200 * NS));
        assert_eq!(ns("2026-03-01T08:00:00+08:00"), Ok(1_772_323_200 * NS));
        assert_eq!(ns("2026-02-28T18:30:00-0530"), Ok(1_772_323_200 * NS));
        assert_eq!(
            ns("2026-03-01 00:00:00.5Z"),
            Ok(1_772_323_200 * NS + 500_000_000)
        );
        assert_eq!(
            ns("2026-03-01T00:00:00.123456789123Z"),
            Ok(1_772_323_200 * NS + 123_456_789)
        );
        assert_eq!(ns("2024-02-29T00:00:00Z"), Ok(1_709_164_800 * NS));
        assert_eq!(ns("1969-12-31T23:59:59Z"), Ok(-NS));
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(ns("2026-03-01T00:00:00"), Err(TimestampError::NoOffset));
        assert_eq!(ns("2026-03-01T00:00:00.Z"), Err(TimestampError::Syntax));
        assert_eq!(ns("2026-3-01T00:00:00Z"), Err(TimestampError::Syntax));
        assert_eq!(ns("2026-03-01T00:00:00Zjunk"), Err(TimestampError::Syntax));
        assert_eq!(ns("2025-02-29T00:00:00Z"), Err(TimestampError::Range));
        assert_eq!(ns("2026-13-01T00:00:00Z"), Err(TimestampError::Range));
        assert_eq!(ns("2026-03-01T24:00:00Z"), Err(TimestampError::Range));
        assert_eq!(ns("2026-03-01T00:00:00+15:00"), Err(TimestampError::Range));
        assert_eq!(ns(""), Err(TimestampError::Syntax));
    }

    #[test]
    fn civil_days_match_a_day_by_day_count() {
        let mut expected = days_from_civil(1899, 12, 31);
        for year in 1900..2101 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    expected += 1;
                    assert_eq!(days_from_civil(year, month, day), expected);
                }
            }
        }
    }

    #[test]
    fn a_column_reports_each_row() {
        let rows = ["2026-03-01T00:00:00Z", "nope", "2026-03-01T00:00:00"];
        let buf: Vec<u8> = rows.concat().into_bytes();
        let mut offsets = vec![0i64];
        for r in rows {
            offsets.push(offsets.last().unwrap() + r.len() as i64);
        }
        let (mut out, mut err) = (vec![0; 3], vec![9; 3]);
        parse_column(&buf, &offsets, &mut out, &mut err).unwrap();
        assert_eq!(err, vec![0, 1, 2]);
        assert_eq!(out[0], 1_772_323_200 * NS);
        assert!(parse_column(&buf, &[0, 999], &mut [0], &mut [0]).is_err());
    }
}
