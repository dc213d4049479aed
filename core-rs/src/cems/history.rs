//! Fixed-capacity histories for substitution: the last N valid hourly values, and bit histories
//! of hour statuses for capture rates. Memory is fixed at construction (2160 values = 17 KiB,
//! 8784 bits = 1.1 KiB), whatever the stream's age.

use super::error::CemsError;
use super::snapshot::{Reader, Writer};

/// The last `cap` values pushed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ValueRing {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl ValueRing {
    pub fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    pub fn push(&mut self, v: f64) {
        let cap = self.buf.len();
        self.buf[(self.head + self.len) % cap] = v;
        if self.len < cap {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % cap;
        }
    }

    /// The most recent `n` values (or fewer, if fewer were pushed), oldest first.
    pub fn recent(&self, n: usize) -> impl Iterator<Item = f64> + '_ {
        let n = n.min(self.len);
        let cap = self.buf.len();
        (self.len - n..self.len).map(move |i| self.buf[(self.head + i) % cap])
    }

    pub fn max_recent(&self, n: usize) -> Option<f64> {
        self.recent(n).reduce(f64::max)
    }

    /// Nearest-rank percentile `p` (0-100] of the most recent `n` values: the smallest value
    /// with at least p % of the values at or below it. (Part 75 does not prescribe an
    /// interpolation; nearest rank never invents a value that was not measured.)
    pub fn percentile_recent(&self, n: usize, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.recent(n).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        Some(v[rank.min(v.len()) - 1])
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.len as u64);
        for v in self.recent(self.len) {
            w.f64(v);
        }
    }

    pub fn read(cap: usize, r: &mut Reader<'_>) -> Result<Self, CemsError> {
        let n = r.len(8)?;
        if n > cap.max(1) {
            return Err(CemsError::CorruptSnapshot(
                "value history longer than its capacity",
            ));
        }
        let mut me = Self::new(cap);
        for _ in 0..n {
            me.push(r.f64()?);
        }
        Ok(me)
    }
}

/// The last `cap` bits pushed, with a running count of ones.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BitRing {
    words: Vec<u64>,
    cap: usize,
    head: usize,
    len: usize,
    ones: usize,
}

impl BitRing {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            words: vec![0; cap.div_ceil(64)],
            cap,
            head: 0,
            len: 0,
            ones: 0,
        }
    }

    fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, bit: bool) {
        if bit {
            self.words[i / 64] |= 1 << (i % 64);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    pub fn push(&mut self, bit: bool) {
        let slot = (self.head + self.len) % self.cap;
        if self.len == self.cap {
            self.ones -= usize::from(self.get(slot));
            self.head = (self.head + 1) % self.cap;
        } else {
            self.len += 1;
        }
        self.set(slot, bit);
        self.ones += usize::from(bit);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn ones(&self) -> usize {
        self.ones
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.len as u64);
        let mut byte = 0u8;
        for i in 0..self.len {
            if self.get((self.head + i) % self.cap) {
                byte |= 1 << (i % 8);
            }
            if i % 8 == 7 {
                w.u8(byte);
                byte = 0;
            }
        }
        if self.len % 8 != 0 {
            w.u8(byte);
        }
    }

    pub fn read(cap: usize, r: &mut Reader<'_>) -> Result<Self, CemsError> {
        let n = r.u64()? as usize;
        if n > cap.max(1) {
            return Err(CemsError::CorruptSnapshot(
                "status history longer than its capacity",
            ));
        }
        let bytes = r.take(n.div_ceil(8))?;
        let mut me = Self::new(cap);
        for i in 0..n {
            me.push(bytes[i / 8] & (1 << (i % 8)) != 0);
        }
        Ok(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_only_the_last_values() {
        let mut v = ValueRing::new(3);
        for x in [5.0, 1.0, 4.0, 2.0] {
            v.push(x);
        }
        assert_eq!(v.recent(10).collect::<Vec<_>>(), vec![1.0, 4.0, 2.0]);
        assert_eq!(v.max_recent(2), Some(4.0));
        assert_eq!(v.max_recent(1), Some(2.0));
        let mut b = BitRing::new(70);
        for i in 0..200 {
            b.push(i % 3 == 0);
        }
        assert_eq!(b.len(), 70);
        assert_eq!(b.ones(), (130..200).filter(|i| i % 3 == 0).count());
    }

    #[test]
    fn nearest_rank_percentile() {
        let mut v = ValueRing::new(100);
        for x in 1..=10 {
            v.push(f64::from(x));
        }
        assert_eq!(v.percentile_recent(10, 90.0), Some(9.0));
        assert_eq!(v.percentile_recent(10, 95.0), Some(10.0));
        assert_eq!(v.percentile_recent(10, 50.0), Some(5.0));
        assert_eq!(v.percentile_recent(4, 90.0), Some(10.0));
    }
}
