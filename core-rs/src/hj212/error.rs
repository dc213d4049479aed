//! Every way a byte stream, a packet or a build request can be wrong, each naming what was wrong.
//!
//! Frame errors are `Copy` and allocation-free: a hostile peer can produce millions of them.

use std::fmt;

use thiserror::Error;

use super::time::TimeError;

/// Up to four raw bytes of a malformed fixed-width field, shown escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawField {
    bytes: [u8; 4],
    len: u8,
}

impl RawField {
    pub fn new(b: &[u8]) -> Self {
        let len = b.len().min(4);
        let mut bytes = [0u8; 4];
        bytes[..len].copy_from_slice(&b[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for RawField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

impl fmt::Display for RawField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why bytes from the wire are not a frame `##LLLL<segment>CCCC\r\n`.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    #[error("skipped {skipped} bytes that are not part of any frame (resynchronised on `##`)")]
    Garbage { skipped: usize },
    #[error("bytes do not start with the `##` header")]
    NoHeader,
    #[error("length field {field} is not 4 decimal digits")]
    BadLengthField { field: RawField },
    #[error("declared segment length {declared} exceeds the maximum of 1024 bytes")]
    LengthOutOfRange { declared: usize },
    #[error(
        "declared segment length {declared} does not match the segment before CRC and CRLF ({actual} bytes)"
    )]
    LengthMismatch { declared: usize, actual: usize },
    #[error("frame of {len} bytes ends (CRLF) before it could hold a CRC")]
    TooShort { len: usize },
    #[error(
        "frame cut off: a new `##` header came after {received} of the {declared} declared segment bytes"
    )]
    Truncated { declared: usize, received: usize },
    #[error("frame does not end with CRLF: found {found} after the CRC")]
    MissingCrlf { found: RawField },
    #[error("CRC field {field} is not 4 hex digits")]
    BadCrcField { field: RawField },
    #[error("CRC mismatch: the segment's CRC is {expected:04X} but the frame carries {found:04X}")]
    CrcMismatch { expected: u16, found: u16 },
    #[error("{extra} bytes follow the frame's CRLF")]
    TrailingBytes { extra: usize },
    #[error("incomplete frame: {buffered} bytes buffered{}", match .declared {
        Some(d) => format!(" of {} declared", d + super::frame::OVERHEAD),
        None => String::new(),
    })]
    Incomplete {
        buffered: usize,
        declared: Option<usize>,
    },
}

/// Why a (CRC-valid) data segment is not an HJ 212 packet.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PacketError {
    #[error("segment is not UTF-8 (invalid byte at offset {at})")]
    NotUtf8 { at: usize },
    #[error("segment has no `CP=&&` data area")]
    MissingCp,
    #[error("CP data area does not end with `&&`")]
    UnterminatedCp,
    #[error("header item `{item}` has no `=`")]
    BadHeaderItem { item: String },
    #[error("header field {0} appears twice")]
    DuplicateHeader(&'static str),
    #[error("required header field {0} is missing")]
    MissingField(&'static str),
    #[error("header field {key}={value:?} is not a decimal number in 0..={max}")]
    BadNumber {
        key: &'static str,
        value: String,
        max: u32,
    },
    #[error("header field {key}={value:?} is empty or contains spaces")]
    BadText { key: &'static str, value: String },
    #[error("time {key}={value:?} rejected: {reason}")]
    BadTime {
        key: String,
        value: String,
        reason: TimeError,
    },
    #[error("split packet: {0}")]
    BadSplit(&'static str),
}

/// Why a packet cannot be built.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{what} {value:?} contains a reserved character (one of ; , = & CR LF) or is empty")]
    Reserved { what: &'static str, value: String },
    #[error("value of {key} is not a finite number")]
    NotFinite { key: String },
    #[error("segment of {len} bytes exceeds the maximum of 1024 (split it with PNUM/PNO)")]
    TooLong { len: usize },
    #[error("split packet number {pno} of {pnum} is invalid")]
    BadSplit { pnum: u16, pno: u16 },
}

/// Why a part of a split packet cannot be reassembled.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReassemblyError {
    #[error("packet is not split (no PNUM/PNO)")]
    NotSplit,
    #[error("PNUM {pnum} exceeds the configured maximum of {max} parts")]
    TooManyParts { pnum: u16, max: u16 },
    #[error("PNUM {got} differs from the {expected} announced by earlier parts of the same packet")]
    InconsistentTotal { expected: u16, got: u16 },
    #[error("part {pno} arrived again with different content")]
    ConflictingPart { pno: u16 },
}
