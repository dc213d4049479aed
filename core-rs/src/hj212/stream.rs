//! Frames out of a TCP byte stream.
//!
//! TCP delivers bytes, not frames: a read may hold half a frame, several frames, or line noise.
//! [`FrameDecoder`] buffers only what it must (the unfinished frame), drops bytes that cannot
//! start a frame as soon as they arrive (so a peer sending garbage never grows memory), and hands
//! out frames that borrow its buffer (no copy, no allocation per frame).
//!
//! Usage: `push(read_bytes)`, then call `next_frame()` until it returns `None`.
//! Memory: at most one unfinished frame ([`super::MAX_FRAME_LEN`] bytes) plus whatever was pushed and not
//! yet pulled; garbage outside frames is never stored.

use super::error::FrameError;
use super::frame::{Frame, Scan, frame_at, incomplete, scan};

/// Counters over the life of a decoder (for connection logs and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub frames: u64,
    pub errors: u64,
    pub skipped_bytes: u64,
}

/// The unfinished frame a decoder is holding (see [`FrameDecoder::pending`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingFrame {
    pub buffered: usize,
    /// Segment length from the header, once the 4 digits have arrived.
    pub declared: Option<usize>,
}

/// Retained buffer capacity after a large push has been drained.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
    /// Garbage skipped since the last item was returned; reported before the next item.
    skipped: usize,
    stats: DecoderStats,
}

/// First `##` that is not followed by another `#`: in a run `###0101` the header is the last
/// two, so a stray `#` before a frame costs nothing.
fn find_header(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = b[from..].iter().position(|&c| c == b'#') {
        let i = from + i;
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'#'), Some(b'#')) => from = i + 1,
            (Some(b'#'), _) => return Some(i),
            (Some(_), _) => from = i + 2,
            (None, _) => return None,
        }
    }
    None
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the connection. Bytes that cannot belong to a frame (before any
    /// `##`) are dropped here and counted, never stored.
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return; // nothing to learn; a held lone `#` may still start the next frame
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() > 4 * KEEP_CAPACITY && self.buf.len() <= KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
        // Between frames the buffer holds at most a lone `#`; anything before the next `##` of
        // the new bytes is garbage.
        let holds_frame_start =
            self.buf.len() >= 2 || (self.buf == b"#" && bytes.first() == Some(&b'#'));
        if holds_frame_start {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.skipped += std::mem::take(&mut self.buf).len();
        match find_header(bytes) {
            Some(i) => {
                self.skipped += i;
                self.buf.extend_from_slice(&bytes[i..]);
            }
            None if bytes.last() == Some(&b'#') => {
                self.skipped += bytes.len() - 1;
                self.buf.push(b'#');
            }
            None => self.skipped += bytes.len(),
        }
    }

    /// The next frame or decode error, `None` when more bytes are needed.
    ///
    /// Errors do not stop the stream: after one, decoding resumes at the next `##`.
    /// Skipped garbage is reported as [`FrameError::Garbage`] before the item that follows it.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, FrameError>> {
        let avail = &self.buf[self.pos..];
        if !avail.starts_with(b"##") || avail.get(2) == Some(&b'#') {
            match find_header(avail) {
                Some(i) => {
                    self.skipped += i;
                    self.pos += i;
                }
                None => {
                    let keep = usize::from(avail.last() == Some(&b'#'));
                    self.skipped += avail.len() - keep;
                    self.pos = self.buf.len() - keep;
                    return self.take_garbage().map(Err);
                }
            }
        }
        if let Some(g) = self.take_garbage() {
            return Some(Err(g));
        }
        let start = self.pos;
        match scan(&self.buf[start..]) {
            Scan::Need => None,
            Scan::Bad { consume, error } => {
                self.pos += consume;
                self.stats.errors += 1;
                Some(Err(error))
            }
            Scan::Frame { len, crc } => {
                self.pos += len;
                self.stats.frames += 1;
                Some(Ok(frame_at(&self.buf[start..], len, crc)))
            }
        }
    }

    fn take_garbage(&mut self) -> Option<FrameError> {
        if self.skipped == 0 {
            return None;
        }
        let skipped = std::mem::take(&mut self.skipped);
        self.stats.skipped_bytes += skipped as u64;
        self.stats.errors += 1;
        Some(FrameError::Garbage { skipped })
    }

    /// The unfinished frame held, if any: what a server checks when a peer goes silent.
    pub fn pending(&self) -> Option<PendingFrame> {
        let avail = &self.buf[self.pos..];
        if !avail.starts_with(b"##") {
            return None;
        }
        match incomplete(avail) {
            FrameError::Incomplete { buffered, declared } => {
                Some(PendingFrame { buffered, declared })
            }
            _ => None,
        }
    }

    /// Gives up on the unfinished frame (peer timed out or closed): returns it as an
    /// [`FrameError::Incomplete`] and empties the buffer. Call after draining `next_frame`.
    pub fn abandon_pending(&mut self) -> Option<FrameError> {
        let avail = &self.buf[self.pos..];
        let err = avail.starts_with(b"##").then(|| incomplete(avail));
        self.buf.clear();
        self.pos = 0;
        if err.is_some() {
            self.stats.errors += 1;
        }
        err
    }

    /// Bytes currently held (unfinished frame plus anything pushed and not yet pulled).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes of buffer memory reserved (bounded: see the module documentation).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }
}
