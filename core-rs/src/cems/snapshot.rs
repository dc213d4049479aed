//! Byte encoding of kernel state, for crash recovery.
//!
//! Little-endian, fixed layout, no maps iterated in hash order: equal states give equal bytes, so
//! a snapshot can be compared, hashed and replayed deterministically. Every snapshot starts with a
//! magic tag and a fingerprint of the configuration it was taken under; restoring under another
//! configuration is refused (resuming an hour under other rules would silently mix them).

use super::error::CemsError;

#[derive(Default)]
pub(crate) struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn new(magic: &[u8; 8]) -> Self {
        Self {
            out: magic.to_vec(),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.out.extend_from_slice(b);
    }
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], magic: &[u8; 8]) -> Result<Self, CemsError> {
        let mut r = Self { bytes, pos: 0 };
        if r.take(8)? != magic {
            return Err(CemsError::CorruptSnapshot(
                "bad magic (not this kind of state)",
            ));
        }
        Ok(r)
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CemsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(CemsError::CorruptSnapshot("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CemsError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, CemsError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, CemsError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, CemsError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, CemsError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, CemsError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// A length prefix, checked against what is left so a corrupt length cannot allocate wildly.
    pub fn len(&mut self, item_size: usize) -> Result<usize, CemsError> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(item_size.max(1) as u64) > left {
            return Err(CemsError::CorruptSnapshot("length exceeds the snapshot"));
        }
        Ok(n as usize)
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], CemsError> {
        let n = self.len(1)?;
        self.take(n)
    }
    pub fn fingerprint(&mut self, expected: &[u8], what: &'static str) -> Result<(), CemsError> {
        if self.bytes()? != expected {
            return Err(CemsError::IncompatibleSnapshot(what));
        }
        Ok(())
    }
    pub fn end(&self) -> Result<(), CemsError> {
        if self.pos != self.bytes.len() {
            return Err(CemsError::CorruptSnapshot("trailing bytes"));
        }
        Ok(())
    }
}
