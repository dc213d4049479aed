//! One frame: `##LLLL<segment>CCCC\r\n`.
//!
//! The frame checks here (length field, CRC, terminator) are shared by the single-frame
//! [`decode_frame`] and the streaming [`super::FrameDecoder`], so both report the same reasons.

use super::crc::{crc_text, crc16, parse_crc_field};
use super::error::{EncodeError, FrameError, PacketError, RawField};
use super::packet::Packet;

/// Largest data segment the length field may declare.
pub const MAX_SEGMENT_LEN: usize = 1024;
/// Bytes of a frame around its segment: `##`, `LLLL`, `CCCC`, CRLF.
pub const OVERHEAD: usize = 2 + 4 + 4 + 2;
/// Largest possible frame.
pub const MAX_FRAME_LEN: usize = MAX_SEGMENT_LEN + OVERHEAD;

/// A frame whose length and CRC checked out. Borrows the segment from the input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    segment: &'a [u8],
    crc: u16,
}

impl<'a> Frame<'a> {
    /// The data segment (`QN=...&&`), CRC-verified.
    pub fn segment(&self) -> &'a [u8] {
        self.segment
    }

    pub fn crc(&self) -> u16 {
        self.crc
    }

    /// The whole frame exactly as received, `##` to CRLF (the original a regulator may ask for:
    /// the CRC keeps the case the sender used).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Parses the segment into a packet (borrowing from the same bytes).
    pub fn parse(&self) -> Result<Packet<'a>, PacketError> {
        Packet::parse_bytes(self.segment)
    }
}

/// Outcome of looking for a frame at the start of a buffer that begins with `##`.
pub(crate) enum Scan {
    /// More bytes are needed to decide.
    Need,
    /// A verified frame of `len` bytes.
    Frame { len: usize, crc: u16 },
    /// Not a frame: report `error` and drop `consume` bytes (at least 1), then resynchronise.
    Bad { consume: usize, error: FrameError },
}

fn find(hay: &[u8], needle: &[u8; 2]) -> Option<usize> {
    hay.windows(2).position(|w| w == needle)
}

/// Examines `b` (which starts with `##`). The declared length is trusted first; only when the
/// frame does not end with CRLF there do the fallbacks classify the damage, using the facts that
/// no segment contains CRLF and that a new `##` most likely starts the next frame.
pub(crate) fn scan(b: &[u8]) -> Scan {
    debug_assert!(b.starts_with(b"##"));
    // A `#` right after `##` may be the real header shifted by one: drop one byte only.
    let header_drop = if b.get(2) == Some(&b'#') { 1 } else { 2 };
    let digits = &b[2..b.len().min(6)];
    if let Some(_bad) = digits.iter().position(|c| !c.is_ascii_digit()) {
        return Scan::Bad {
            consume: header_drop,
            error: FrameError::BadLengthField {
                field: RawField::new(digits),
            },
        };
    }
    if b.len() < 6 {
        return Scan::Need;
    }
    let declared = digits
        .iter()
        .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
    if declared > MAX_SEGMENT_LEN {
        return Scan::Bad {
            consume: header_drop,
            error: FrameError::LengthOutOfRange { declared },
        };
    }
    let end = declared + OVERHEAD;
    if b.len() >= end && &b[end - 2..end] == b"\r\n" {
        // A frame that fails its CRC is known to be broken, so a `##` inside it is believed to
        // start the next frame (as in the fallbacks below): only the bytes before it are
        // dropped. Otherwise a cut-off frame whose declared end happens to fall on the CRLF of
        // a later frame would swallow the valid frames in between.
        let consume = find(&b[6..end - 2], b"##").map_or(end, |h| h + 6);
        let field = &b[end - 6..end - 2];
        let Some(found) = parse_crc_field(field) else {
            return Scan::Bad {
                consume,
                error: FrameError::BadCrcField {
                    field: RawField::new(field),
                },
            };
        };
        let expected = crc16(&b[6..end - 6]);
        if expected != found {
            return Scan::Bad {
                consume,
                error: FrameError::CrcMismatch { expected, found },
            };
        }
        return Scan::Frame {
            len: end,
            crc: found,
        };
    }
    let window = &b[6..b.len().min(MAX_FRAME_LEN)];
    let crlf = find(window, b"\r\n").map(|i| i + 6);
    let next = find(window, b"##").map(|i| i + 6);
    match (crlf, next) {
        (Some(c), h) if h.is_none_or(|h| h > c) => {
            let len = c + 2;
            let error = if c < 10 {
                FrameError::TooShort { len }
            } else {
                FrameError::LengthMismatch {
                    declared,
                    actual: c - 10,
                }
            };
            Scan::Bad {
                consume: len,
                error,
            }
        }
        (_, Some(h)) if b.len() >= end && h >= end - 2 => Scan::Bad {
            consume: h,
            error: FrameError::MissingCrlf {
                found: RawField::new(&b[end - 2..end]),
            },
        },
        // A `##` inside the declared segment is only believed to start a new frame once the
        // frame is known to be broken (a CRLF came early or the declared end has no CRLF):
        // until then it may be text inside a frame still arriving.
        (c, Some(h)) if b.len() >= end || c.is_some() => Scan::Bad {
            consume: h,
            error: FrameError::Truncated {
                declared,
                received: h - 6,
            },
        },
        (None, None) if b.len() >= MAX_FRAME_LEN => Scan::Bad {
            consume: end,
            error: FrameError::MissingCrlf {
                found: RawField::new(&b[end - 2..end]),
            },
        },
        _ => Scan::Need,
    }
}

/// Checks one complete frame (exactly the bytes of one frame, CRLF included).
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if !bytes.starts_with(b"##") {
        return Err(FrameError::NoHeader);
    }
    match scan(bytes) {
        Scan::Frame { len, crc } if len == bytes.len() => Ok(Frame {
            bytes,
            segment: &bytes[6..len - 6],
            crc,
        }),
        Scan::Frame { len, .. } => Err(FrameError::TrailingBytes {
            extra: bytes.len() - len,
        }),
        Scan::Bad { error, .. } => Err(error),
        Scan::Need => Err(incomplete(bytes)),
    }
}

pub(crate) fn frame_at(bytes: &[u8], len: usize, crc: u16) -> Frame<'_> {
    Frame {
        bytes: &bytes[..len],
        segment: &bytes[6..len - 6],
        crc,
    }
}

/// The `Incomplete` error for a buffer holding the start of a frame.
pub(crate) fn incomplete(b: &[u8]) -> FrameError {
    let declared = (b.len() >= 6 && b[2..6].iter().all(u8::is_ascii_digit)).then(|| {
        b[2..6]
            .iter()
            .fold(0usize, |a, &d| a * 10 + usize::from(d - b'0'))
    });
    FrameError::Incomplete {
        buffered: b.len(),
        declared,
    }
}

/// Frames a data segment: `##`, its length, the segment, its CRC (upper-case hex) and CRLF.
pub fn encode_frame(segment: &str) -> Result<Vec<u8>, EncodeError> {
    let len = segment.len();
    if len > MAX_SEGMENT_LEN {
        return Err(EncodeError::TooLong { len });
    }
    let mut out = Vec::with_capacity(len + OVERHEAD);
    out.extend_from_slice(format!("##{len:04}").as_bytes());
    out.extend_from_slice(segment.as_bytes());
    out.extend_from_slice(&crc_text(crc16(segment.as_bytes())));
    out.extend_from_slice(b"\r\n");
    Ok(out)
}
