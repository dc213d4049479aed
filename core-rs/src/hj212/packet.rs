//! A data segment parsed into typed header fields and CP fields, borrowing from the frame.

use super::cp::{Field, Suffix, Value, Warning, WarningReason, parse_cp};
use super::error::PacketError;
use super::flag::{DataFlag, PacketFlag};
use super::scan::find_any;
use super::time::CivilDateTime;

/// `PNUM`/`PNO` of a split payload: part `pno` (1-based) of `pnum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Split {
    pub pnum: u16,
    pub pno: u16,
}

/// One HJ 212 packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet<'a> {
    segment: &'a str,
    /// `QN` as sent (echoed verbatim in answers).
    pub qn: Option<&'a str>,
    /// `QN` as a civil time of the logger's clock.
    pub qn_time: Option<CivilDateTime>,
    /// `ST`: system type (31 stack gas, 32 surface water, 91 system interaction, ...).
    pub st: u16,
    /// `CN`: command (2011 real-time, 2051 minute, 2061 hour, 2031 day, 9011/9012/9014 answers...).
    pub cn: u16,
    pub pw: &'a str,
    /// `MN`: the logger's identity, which the server maps to a site.
    pub mn: &'a str,
    /// `Flag`; `None` for loggers of the 2005 edition that do not send it.
    pub flag: Option<PacketFlag>,
    pub split: Option<Split>,
    /// The CP body, between `CP=&&` and the closing `&&`.
    pub cp: &'a str,
    /// The first `DataTime` of the CP area.
    pub data_time: Option<CivilDateTime>,
    pub fields: Vec<Field<'a>>,
    pub warnings: Vec<Warning<'a>>,
}

fn number(key: &'static str, value: &str, max: u32) -> Result<u32, PacketError> {
    // Accumulate only once the field is known to be at most 5 digits: a longer one (a logger
    // repeating digits) would overflow the u32 (a panic in debug builds).
    let ok = !value.is_empty() && value.len() <= 5 && value.bytes().all(|c| c.is_ascii_digit());
    let v = ok.then(|| {
        value
            .bytes()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    });
    match v {
        Some(v) if v <= max => Ok(v),
        _ => Err(PacketError::BadNumber {
            key,
            value: value.to_owned(),
            max,
        }),
    }
}

fn set<'a>(
    slot: &mut Option<&'a str>,
    key: &'static str,
    value: &'a str,
) -> Result<(), PacketError> {
    if slot.replace(value).is_some() {
        return Err(PacketError::DuplicateHeader(key));
    }
    Ok(())
}

/// Position of `CP=&&` at the start of a header item (a forward scan over `;`-separated items,
/// so text inside CP is never mistaken for the header).
fn find_cp(segment: &str) -> Option<usize> {
    let b = segment.as_bytes();
    let mut at = 0;
    while at < b.len() {
        if b[at..].starts_with(b"CP=&&") {
            return Some(at);
        }
        at = find_any(b, at, b";") + 1;
    }
    None
}

impl<'a> Packet<'a> {
    /// Parses a data segment given as bytes (checks UTF-8 first).
    pub fn parse_bytes(segment: &'a [u8]) -> Result<Self, PacketError> {
        let s = std::str::from_utf8(segment).map_err(|e| PacketError::NotUtf8 {
            at: e.valid_up_to(),
        })?;
        Self::parse(s)
    }

    /// Parses a data segment `QN=...;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]CP=&&...&&`.
    /// Header fields may come in any order; `ST`, `CN`, `PW` and `MN` are required.
    pub fn parse(segment: &'a str) -> Result<Self, PacketError> {
        let cp_at = find_cp(segment).ok_or(PacketError::MissingCp)?;
        let body = &segment[cp_at + 5..];
        let cp = body.strip_suffix("&&").ok_or(PacketError::UnterminatedCp)?;
        let mut warnings = Vec::new();
        let (mut qn, mut st, mut cn, mut pw, mut mn, mut flag, mut pnum, mut pno) =
            (None, None, None, None, None, None, None, None);
        let hb = &segment.as_bytes()[..cp_at];
        let mut start = 0;
        while start < hb.len() {
            let end = find_any(hb, start, b";");
            let item = &segment[start..end];
            start = end + 1;
            if item.is_empty() {
                continue;
            }
            let eq = find_any(item.as_bytes(), 0, b"=");
            if eq == item.len() {
                return Err(PacketError::BadHeaderItem {
                    item: item.to_owned(),
                });
            }
            let (key, value) = (&item[..eq], &item[eq + 1..]);
            match key {
                "QN" => set(&mut qn, "QN", value)?,
                "ST" => set(&mut st, "ST", value)?,
                "CN" => set(&mut cn, "CN", value)?,
                "PW" => set(&mut pw, "PW", value)?,
                "MN" => set(&mut mn, "MN", value)?,
                "Flag" => set(&mut flag, "Flag", value)?,
                "PNUM" => set(&mut pnum, "PNUM", value)?,
                "PNO" => set(&mut pno, "PNO", value)?,
                _ => warnings.push(Warning {
                    key,
                    value,
                    reason: WarningReason::UnknownHeader,
                }),
            }
        }
        let qn_time = qn
            .map(|q| {
                CivilDateTime::parse_millis(q).map_err(|reason| PacketError::BadTime {
                    key: "QN".to_owned(),
                    value: q.to_owned(),
                    reason,
                })
            })
            .transpose()?;
        let st = number("ST", st.ok_or(PacketError::MissingField("ST"))?, 9999)? as u16;
        let cn = number("CN", cn.ok_or(PacketError::MissingField("CN"))?, 9999)? as u16;
        let pw = pw.ok_or(PacketError::MissingField("PW"))?;
        let mn = mn.ok_or(PacketError::MissingField("MN"))?;
        if mn.is_empty() || mn.contains(' ') {
            return Err(PacketError::BadText {
                key: "MN",
                value: mn.to_owned(),
            });
        }
        let flag = flag
            .map(|f| number("Flag", f, 255).map(|v| PacketFlag(v as u8)))
            .transpose()?;
        let split = match (pnum, pno) {
            (None, None) if flag.is_some_and(PacketFlag::is_split) => {
                return Err(PacketError::BadSplit(
                    "Flag has the D bit but PNUM/PNO are missing",
                ));
            }
            (None, None) => None,
            (Some(a), Some(b)) => {
                let pnum = number("PNUM", a, 9999)? as u16;
                let pno = number("PNO", b, 9999)? as u16;
                if pnum == 0 || pno == 0 || pno > pnum {
                    return Err(PacketError::BadSplit("PNO must be in 1..=PNUM"));
                }
                Some(Split { pnum, pno })
            }
            _ => return Err(PacketError::BadSplit("PNUM and PNO must come together")),
        };
        let mut fields = Vec::with_capacity(cp.len() / 16 + 1);
        let mut data_time = None;
        parse_cp(cp, &mut fields, &mut warnings, &mut data_time)?;
        Ok(Self {
            segment,
            qn,
            qn_time,
            st,
            cn,
            pw,
            mn,
            flag,
            split,
            cp,
            data_time,
            fields,
            warnings,
        })
    }

    /// The whole data segment this packet was parsed from.
    pub fn segment(&self) -> &'a str {
        self.segment
    }

    /// The sender asked for an answer (Flag bit A).
    pub fn answer_requested(&self) -> bool {
        self.flag.is_some_and(PacketFlag::answer_requested)
    }

    /// First field with this code and suffix.
    pub fn field(&self, code: &str, suffix: Suffix<'_>) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.code == code && f.suffix.as_str() == suffix.as_str())
    }

    /// Numeric value of `code-suffix` (e.g. `("a21026", Suffix::Avg)`).
    pub fn number(&self, code: &str, suffix: Suffix<'_>) -> Option<f64> {
        match self.field(code, suffix)?.value {
            Value::Number(v) => Some(v),
            _ => None,
        }
    }

    /// Data flag `code-Flag`, when sent and valid.
    pub fn data_flag(&self, code: &str) -> Option<DataFlag> {
        match self.field(code, Suffix::Flag)?.value {
            Value::Flag(f) => Some(f),
            _ => None,
        }
    }

    /// Distinct pollutant/parameter codes of the CP area, in first-seen order (fields without a
    /// `-` suffix, like `DataTime`, are not codes).
    pub fn codes(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.fields.iter().enumerate().filter_map(|(i, f)| {
            let first =
                f.suffix != Suffix::None && !self.fields[..i].iter().any(|g| g.code == f.code);
            first.then_some(f.code)
        })
    }
}
