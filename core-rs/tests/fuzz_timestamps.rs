//! Fuzzing the ISO 8601 column parser of pushed timestamps (`timestamps.rs`): any bytes give a
//! timestamp or one of the three error codes, never a panic or a silently wrapped value, and a
//! valid timestamp equals an independent day-by-day computation.

use carbonstream_core::timestamps::{TimestampError, parse_column, parse_utc_ns};
use proptest::prelude::*;
use proptest::test_runner::Config;

const NS: i128 = 1_000_000_000;

fn cases(n: u32) -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(n)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i64, m: u32) -> u32 {
    [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m as usize - 1]
}

/// Days since 1970-01-01 by counting whole years and months: slow, obvious, and independent of
/// the era arithmetic under test.
fn days_by_counting(y: i64, m: u32, d: u32) -> i64 {
    let mut days: i64 = 0;
    if y >= 1970 {
        days += (1970..y)
            .map(|k| if is_leap(k) { 366 } else { 365 })
            .sum::<i64>();
    } else {
        days -= (y..1970)
            .map(|k| if is_leap(k) { 366 } else { 365 })
            .sum::<i64>();
    }
    days += (1..m).map(|k| i64::from(month_days(y, k))).sum::<i64>();
    days + i64::from(d) - 1
}

#[derive(Clone, Debug)]
struct Stamp {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    frac: String,
    offset: Option<(bool, u32, u32, bool)>,
    sep: char,
}

impl Stamp {
    fn text(&self) -> String {
        let mut t = format!(
            "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
            self.y, self.mo, self.d, self.sep, self.h, self.mi, self.s
        );
        if !self.frac.is_empty() {
            t.push('.');
            t.push_str(&self.frac);
        }
        match self.offset {
            None => t.push('Z'),
            Some((neg, oh, om, colon)) => {
                t.push(if neg { '-' } else { '+' });
                t.push_str(&format!("{oh:02}"));
                if colon {
                    t.push(':');
                }
                t.push_str(&format!("{om:02}"));
            }
        }
        t
    }

    /// Expected UTC ns, as i128 so that it can be compared even where i64 overflows.
    fn expected_ns(&self) -> i128 {
        let days = days_by_counting(self.y, self.mo, self.d);
        let local = i128::from(days) * 86_400 + i128::from(self.h * 3600 + self.mi * 60 + self.s);
        let offset = self.offset.map_or(0, |(neg, oh, om, _)| {
            let s = i128::from(oh * 3600 + om * 60);
            if neg { -s } else { s }
        });
        let digits: String = self.frac.chars().take(9).collect();
        let frac = if digits.is_empty() {
            0
        } else {
            digits.parse::<i128>().unwrap() * 10i128.pow(9 - digits.len() as u32)
        };
        (local - offset) * NS + frac
    }
}

fn stamp(years: std::ops::Range<i64>) -> impl Strategy<Value = Stamp> {
    (
        years,
        1u32..=12,
        1u32..=31,
        (0u32..24, 0u32..60, 0u32..60),
        "([0-9]{1,12})?",
        prop::option::of((any::<bool>(), 0u32..=14, 0u32..60, any::<bool>())),
        prop::sample::select(vec!['T', ' ']),
    )
        .prop_map(|(y, mo, d, (h, mi, s), frac, offset, sep)| Stamp {
            y,
            mo,
            d: d.min(month_days(y, mo)),
            h,
            mi,
            s,
            frac,
            offset,
            sep,
        })
}

fn timestamp_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"0123456789-:T Z+.z".to_vec()),
        1 => any::<u8>(),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any bytes: a timestamp or Syntax / NoOffset / Range, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(timestamp_byte(), 0..40)) {
        match parse_utc_ns(&data) {
            Ok(_) | Err(TimestampError::Syntax | TimestampError::NoOffset | TimestampError::Range) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    /// Valid timestamps in the range of int64 nanoseconds equal the day-by-day computation.
    #[test]
    fn valid_timestamps_are_exact(s in stamp(1678..2262)) {
        let want = s.expected_ns();
        let got = parse_utc_ns(s.text().as_bytes());
        if let Ok(want) = i64::try_from(want) {
            prop_assert_eq!(got, Ok(want), "{}", s.text());
        } else {
            prop_assert_eq!(got, Err(TimestampError::Range), "{}", s.text());
        }
    }

    /// Any four-digit year: the exact value where it fits int64 nanoseconds, a Range error where
    /// it does not (never a wrapped, plausible-looking instant).
    #[test]
    fn years_beyond_int64_nanoseconds_are_out_of_range(s in stamp(0..10_000)) {
        let want = s.expected_ns();
        let got = parse_utc_ns(s.text().as_bytes());
        match i64::try_from(want) {
            Ok(want) => prop_assert_eq!(got, Ok(want), "{}", s.text()),
            Err(_) => prop_assert_eq!(got, Err(TimestampError::Range), "{}", s.text()),
        }
    }

    /// A valid timestamp with one byte changed, inserted or removed parses to some instant or an
    /// error; never a panic.
    #[test]
    fn mutated_timestamps_never_panic(
        s in stamp(1900..2100),
        at in any::<usize>(),
        byte in timestamp_byte(),
        op in 0u8..3,
    ) {
        let mut b = s.text().into_bytes();
        let i = at % b.len();
        match op {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            _ => { b.remove(i); }
        }
        let _ = parse_utc_ns(&b);
    }

    /// A column with arbitrary (possibly inconsistent) offsets: row results or an Offsets error.
    #[test]
    fn columns_with_arbitrary_offsets(
        buf in prop::collection::vec(timestamp_byte(), 0..200),
        offsets in prop::collection::vec(-5i64..250, 0..12),
    ) {
        let n = offsets.len().saturating_sub(1);
        let (mut out, mut err) = (vec![0i64; n], vec![0u8; n]);
        match parse_column(&buf, &offsets, &mut out, &mut err) {
            Ok(()) => prop_assert!(err.iter().all(|&e| e <= 3)),
            Err(e) => {
                let offsets_error = matches!(e, TimestampError::Offsets { .. });
                prop_assert!(offsets_error, "{:?}", e);
            }
        }
    }
}

/// Found by `years_beyond_int64_nanoseconds_are_out_of_range`: year 9999 overflowed the int64
/// nanosecond product (a panic in debug builds, a wrapped instant centuries away in release).
#[test]
fn far_years_are_a_range_error() {
    for s in [
        "9999-12-31T23:59:59Z",
        "2262-04-12T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "1677-09-21T00:00:00+14:00",
    ] {
        assert_eq!(
            parse_utc_ns(s.as_bytes()),
            Err(TimestampError::Range),
            "{s}"
        );
    }
    // The last representable second either side still parses.
    assert_eq!(
        parse_utc_ns(b"2262-04-11T23:47:16Z"),
        Ok(9_223_372_036 * 1_000_000_000)
    );
    assert_eq!(
        parse_utc_ns(b"1677-09-21T00:12:44Z"),
        Ok(-9_223_372_036 * 1_000_000_000)
    );
}
