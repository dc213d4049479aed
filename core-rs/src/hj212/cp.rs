//! The `CP=&&...&&` data area: groups separated by `;`, fields by `,`, each `key=value`.
//!
//! Values are typed by their key: `-Rtd/-Min/-Avg/-Max/-Zs*/-Cou` are numbers, `-Flag` a
//! [`DataFlag`], `DataTime`/`BeginTime`/... and `-SampleTime` civil times; everything else stays
//! text. Nothing is allocated per field: keys, codes and text borrow from the frame. A value that
//! should be numeric but is not is kept as text and reported as a [`Warning`], so no reading is
//! lost to a sloppy logger; unknown codes and suffixes are kept as they are.

use super::error::PacketError;
use super::flag::DataFlag;
use super::scan::find_any;
use super::time::{CivilDateTime, TimeError};

/// The part of a field key after the pollutant code's `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suffix<'a> {
    /// The key has no `-` (`DataTime`, `QnRtn`, `RtdInterval`...).
    None,
    Rtd,
    Min,
    Avg,
    Max,
    ZsRtd,
    ZsMin,
    ZsAvg,
    ZsMax,
    /// Period total (`-Cou`: m3 for flow, kg for pollutants).
    Cou,
    Flag,
    /// Equipment flag (HJ 212-2017 `-EFlag`).
    EFlag,
    SampleTime,
    /// Device information items (`i12001-Info=...`).
    Info,
    /// Serial number of the analyser (`-SN`).
    Sn,
    Other(&'a str),
}

impl<'a> Suffix<'a> {
    pub fn parse(s: &'a str) -> Self {
        // Matched on bytes by shape: cheaper than a chain of string comparisons, and this runs
        // for every field of every packet.
        match s.as_bytes() {
            b"Rtd" => Self::Rtd,
            b"Min" => Self::Min,
            b"Avg" => Self::Avg,
            b"Max" => Self::Max,
            b"Cou" => Self::Cou,
            b"Flag" => Self::Flag,
            [b'Z', b's', rest @ ..] => match rest {
                b"Rtd" => Self::ZsRtd,
                b"Min" => Self::ZsMin,
                b"Avg" => Self::ZsAvg,
                b"Max" => Self::ZsMax,
                _ => Self::Other(s),
            },
            b"EFlag" => Self::EFlag,
            b"SampleTime" => Self::SampleTime,
            b"Info" => Self::Info,
            b"SN" => Self::Sn,
            _ => Self::Other(s),
        }
    }

    /// Text after the `-` (empty for [`Suffix::None`]).
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::None => "",
            Self::Rtd => "Rtd",
            Self::Min => "Min",
            Self::Avg => "Avg",
            Self::Max => "Max",
            Self::ZsRtd => "ZsRtd",
            Self::ZsMin => "ZsMin",
            Self::ZsAvg => "ZsAvg",
            Self::ZsMax => "ZsMax",
            Self::Cou => "Cou",
            Self::Flag => "Flag",
            Self::EFlag => "EFlag",
            Self::SampleTime => "SampleTime",
            Self::Info => "Info",
            Self::Sn => "SN",
            Self::Other(s) => s,
        }
    }

    /// Suffixes whose value the standard defines as a number.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Self::Rtd
                | Self::Min
                | Self::Avg
                | Self::Max
                | Self::ZsRtd
                | Self::ZsMin
                | Self::ZsAvg
                | Self::ZsMax
                | Self::Cou
        )
    }
}

/// A typed field value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Flag(DataFlag),
    Time(CivilDateTime),
    Text(&'a str),
}

impl Value<'_> {
    /// The number, also when a text value happens to be one (`PolId`-style keys are text).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(*v),
            Value::Text(t) => parse_number(t),
            _ => None,
        }
    }
}

/// One `key=value` of the CP area.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// Index of the `;`-separated group (0 is usually the `DataTime` group).
    pub group: u16,
    /// Full key, e.g. `a21026-Avg`.
    pub key: &'a str,
    /// Pollutant / parameter code before the `-` (the whole key when there is no `-`).
    pub code: &'a str,
    pub suffix: Suffix<'a>,
    pub value: Value<'a>,
    /// The value exactly as sent.
    pub raw: &'a str,
}

/// Something odd that did not stop the packet from being used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Warning<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub reason: WarningReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningReason {
    /// A numeric field (`-Rtd`, `-Avg`, ...) whose value is not a finite number; kept as text.
    NotNumeric,
    /// A `-Flag` that is not one of N F M S D C T B; kept as text.
    UnknownDataFlag,
    /// A time field other than `DataTime` that is not a valid time; kept as text.
    BadTime(TimeError),
    /// A CP item without `=`; skipped.
    NoEquals,
    /// A header item the standard does not define; ignored.
    UnknownHeader,
}

/// Keys without a code whose value is a civil time.
const TIME_KEYS: [&str; 5] = [
    "DataTime",
    "BeginTime",
    "EndTime",
    "SystemTime",
    "RestartTime",
];
/// Keys without a code whose value the standard defines as a number.
const NUMBER_KEYS: [&str; 6] = [
    "QnRtn",
    "ExeRtn",
    "RtdInterval",
    "MinInterval",
    "OverTime",
    "ReCount",
];

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Plain decimals (`-12.345`): the integer of all digits and the power of ten are both exact in
/// f64, so one IEEE division is the correctly rounded value (Clinger's fast path), identical to
/// `str::parse`. Anything else (exponents, 16+ significant digits) returns `None`.
fn fast_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mut m, mut n, mut frac, mut dot) = (0u64, 0u32, 0usize, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                n += 1;
                if n > 19 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                frac += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if n == 0 || m >= 1 << 53 || frac >= POW10.len() {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Finite decimal numbers only: `inf`/`NaN` are text to the protocol.
pub fn parse_number(s: &str) -> Option<f64> {
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return None;
    }
    if let Some(v) = fast_decimal(s.as_bytes()) {
        return Some(v);
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a CP body (between `CP=&&` and the closing `&&`), item by item with word-wide
/// separator searches. `DataTime` that is not a valid time rejects the packet: it places every
/// value of the packet in time.
pub(crate) fn parse_cp<'a>(
    cp: &'a str,
    fields: &mut Vec<Field<'a>>,
    warnings: &mut Vec<Warning<'a>>,
    data_time: &mut Option<CivilDateTime>,
) -> Result<(), PacketError> {
    let b = cp.as_bytes();
    let (mut group, mut group_used) = (0u16, false);
    let mut start = 0;
    while start <= b.len() {
        let stop = find_any(b, start, b"=,;");
        let (end, item) = if stop < b.len() && b[stop] == b'=' {
            let end = find_any(b, stop + 1, b",;");
            (end, Some(stop))
        } else {
            (stop, None)
        };
        match item {
            Some(eq) => {
                let key = &cp[start..eq];
                let raw = &cp[eq + 1..end];
                let (code, suffix) = match key.as_bytes().iter().position(|&c| c == b'-') {
                    Some(d) => (&key[..d], Suffix::parse(&key[d + 1..])),
                    None => (key, Suffix::None),
                };
                let value = typed_value(key, suffix, raw, warnings, data_time)?;
                fields.push(Field {
                    group,
                    key,
                    code,
                    suffix,
                    value,
                    raw,
                });
                group_used = true;
            }
            None if end > start => warnings.push(Warning {
                key: &cp[start..end],
                value: "",
                reason: WarningReason::NoEquals,
            }),
            None => {}
        }
        if end < b.len() && b[end] == b';' && group_used {
            group = group.saturating_add(1);
            group_used = false;
        }
        start = end + 1;
    }
    Ok(())
}

fn typed_value<'a>(
    key: &'a str,
    suffix: Suffix<'a>,
    raw: &'a str,
    warnings: &mut Vec<Warning<'a>>,
    data_time: &mut Option<CivilDateTime>,
) -> Result<Value<'a>, PacketError> {
    let mut warn = |reason| {
        warnings.push(Warning {
            key,
            value: raw,
            reason,
        });
        Value::Text(raw)
    };
    Ok(match suffix {
        s if s.is_numeric() => match parse_number(raw) {
            Some(v) => Value::Number(v),
            None => warn(WarningReason::NotNumeric),
        },
        Suffix::Flag => match DataFlag::from_letter(raw) {
            Some(f) => Value::Flag(f),
            None => warn(WarningReason::UnknownDataFlag),
        },
        Suffix::SampleTime => match CivilDateTime::parse_seconds(raw) {
            Ok(t) => Value::Time(t),
            Err(e) => warn(WarningReason::BadTime(e)),
        },
        Suffix::None if key == "DataTime" => {
            let t = CivilDateTime::parse_seconds(raw).map_err(|reason| PacketError::BadTime {
                key: key.to_owned(),
                value: raw.to_owned(),
                reason,
            })?;
            data_time.get_or_insert(t);
            Value::Time(t)
        }
        Suffix::None if TIME_KEYS.contains(&key) => match CivilDateTime::parse_seconds(raw) {
            Ok(t) => Value::Time(t),
            Err(e) => warn(WarningReason::BadTime(e)),
        },
        Suffix::None if NUMBER_KEYS.contains(&key) => match parse_number(raw) {
            Some(v) => Value::Number(v),
            None => warn(WarningReason::NotNumeric),
        },
        _ => Value::Text(raw),
    })
}

/// A 64-bit FNV-1a hash of the CP fields that are not times, in order.
///
/// Two packets with the same fingerprint carry the same values under different time stamps: a
/// logger replaying a stale buffer, or data copied forward (a classic tampering sign). Feed the
/// fingerprints of a stream to `cems::quality::repeated_runs`.
pub fn fingerprint(fields: &[Field<'_>]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for f in fields {
        if matches!(f.value, Value::Time(_)) || f.suffix == Suffix::SampleTime {
            continue;
        }
        eat(f.key.as_bytes());
        eat(b"=");
        eat(f.raw.as_bytes());
        eat(b";");
    }
    h
}
