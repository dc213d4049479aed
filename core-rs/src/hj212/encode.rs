//! Building packets: header fields, CP areas, framing.
//!
//! Every value is checked for the protocol's separators, because a `;` or `=` inside a value
//! would silently shift every following field for the receiver.

use std::fmt::Write as _;

use super::error::EncodeError;
use super::flag::{DataFlag, PacketFlag};
use super::frame::{MAX_SEGMENT_LEN, encode_frame};
use super::packet::Split;
use super::time::CivilDateTime;

/// The header and CP of a packet to build.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacketSpec<'a> {
    /// `QN=YYYYMMDDhhmmsszzz`; validated.
    pub qn: Option<&'a str>,
    pub st: u16,
    pub cn: u16,
    pub pw: &'a str,
    pub mn: &'a str,
    pub flag: Option<PacketFlag>,
    pub split: Option<Split>,
    /// CP body without the `&&` delimiters (see [`CpBuilder`]).
    pub cp: &'a str,
}

fn is_reserved(c: char) -> bool {
    matches!(c, ';' | ',' | '=' | '&' | '\r' | '\n')
}

fn check(what: &'static str, value: &str, allow_empty: bool) -> Result<(), EncodeError> {
    if (value.is_empty() && !allow_empty) || value.contains(is_reserved) {
        return Err(EncodeError::Reserved {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

impl PacketSpec<'_> {
    /// The data segment text (no framing).
    pub fn segment(&self) -> Result<String, EncodeError> {
        let mut s = String::with_capacity(96 + self.cp.len());
        if let Some(qn) = self.qn {
            if CivilDateTime::parse_millis(qn).is_err() {
                return Err(EncodeError::Reserved {
                    what: "QN (must be YYYYMMDDhhmmsszzz)",
                    value: qn.to_owned(),
                });
            }
            write!(s, "QN={qn};").expect("write to String");
        }
        check("PW", self.pw, true)?;
        check("MN", self.mn, false)?;
        if self.mn.contains(' ') {
            return Err(EncodeError::Reserved {
                what: "MN",
                value: self.mn.to_owned(),
            });
        }
        if self.cp.contains("&&") || self.cp.contains(['\r', '\n']) {
            return Err(EncodeError::Reserved {
                what: "CP",
                value: self.cp.to_owned(),
            });
        }
        write!(
            s,
            "ST={:02};CN={};PW={};MN={};",
            self.st, self.cn, self.pw, self.mn
        )
        .expect("write to String");
        if let Some(f) = self.flag {
            write!(s, "Flag={};", f.0).expect("write to String");
        }
        if let Some(Split { pnum, pno }) = self.split {
            if pnum == 0 || pno == 0 || pno > pnum || pnum > 9999 {
                return Err(EncodeError::BadSplit { pnum, pno });
            }
            write!(s, "PNUM={pnum};PNO={pno};").expect("write to String");
        }
        write!(s, "CP=&&{}&&", self.cp).expect("write to String");
        if s.len() > MAX_SEGMENT_LEN {
            return Err(EncodeError::TooLong { len: s.len() });
        }
        Ok(s)
    }

    /// The framed packet `##LLLL...CCCC\r\n`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        encode_frame(&self.segment()?)
    }
}

/// Writes a CP body: fields `key=value` joined by `,` inside a group, groups joined by `;`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpBuilder {
    text: String,
    group_open: bool,
}

impl CpBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new `;`-separated group (the next field opens it).
    pub fn group(&mut self) -> &mut Self {
        self.group_open = false;
        self
    }

    /// A field with a text value (checked for separators).
    pub fn text(&mut self, key: &str, value: &str) -> Result<&mut Self, EncodeError> {
        check("CP key", key, false)?;
        check("CP value", value, true)?;
        self.raw(key, value);
        Ok(self)
    }

    /// A numeric field, written in the shortest form that parses back to the same f64.
    pub fn number(&mut self, key: &str, value: f64) -> Result<&mut Self, EncodeError> {
        if !value.is_finite() {
            return Err(EncodeError::NotFinite {
                key: key.to_owned(),
            });
        }
        check("CP key", key, false)?;
        self.raw(key, &value.to_string());
        Ok(self)
    }

    pub fn flag(&mut self, key: &str, flag: DataFlag) -> Result<&mut Self, EncodeError> {
        check("CP key", key, false)?;
        self.raw(key, flag.letter().encode_utf8(&mut [0u8; 4]));
        Ok(self)
    }

    /// A time field `YYYYMMDDhhmmss` (milliseconds are not part of CP times).
    pub fn time(&mut self, key: &str, t: CivilDateTime) -> Result<&mut Self, EncodeError> {
        check("CP key", key, false)?;
        self.raw(key, &t.seconds_text());
        Ok(self)
    }

    fn raw(&mut self, key: &str, value: &str) {
        if !self.text.is_empty() {
            self.text.push(if self.group_open { ',' } else { ';' });
        }
        self.group_open = true;
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value);
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}
