//! Batch plumbing shared by the kernels: grouping the rows of a batch by stream.
//!
//! A batch interleaves many streams (a fleet poll delivers meter 1, 2, 3, ... then again).
//! Kernels process each stream's rows together, in arrival order. A comparison sort of row
//! indices costs more than the kernels themselves, so grouping is a stable counting pass with
//! one hash lookup per row.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// A multiply-rotate hasher for the crate's own small integer keys (stream rows). Keys are
/// assigned by carbonstream, not by a client, so the DoS resistance of SipHash buys nothing here.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Row indices grouped by key: `order[run]` are the rows of one key, in their original order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub order: Vec<usize>,
    /// (key, range into `order`), keys in order of first appearance.
    pub runs: Vec<(u32, Range<usize>)>,
}

/// Groups `keys` stably (rows of a key keep their relative order), keys by first appearance.
pub fn group_stable(keys: &[u32]) -> Groups {
    let mut dense_of: FastMap<u32, u32> = FastMap::default();
    let mut first_keys: Vec<u32> = Vec::new();
    let mut dense = Vec::with_capacity(keys.len());
    let mut counts: Vec<usize> = Vec::new();
    for &k in keys {
        let d = *dense_of.entry(k).or_insert_with(|| {
            first_keys.push(k);
            counts.push(0);
            (first_keys.len() - 1) as u32
        });
        counts[d as usize] += 1;
        dense.push(d);
    }
    let mut starts = Vec::with_capacity(counts.len());
    let mut runs = Vec::with_capacity(counts.len());
    let mut at = 0;
    for (d, &c) in counts.iter().enumerate() {
        starts.push(at);
        runs.push((first_keys[d], at..at + c));
        at += c;
    }
    let mut order = vec![0usize; keys.len()];
    for (i, &d) in dense.iter().enumerate() {
        let slot = &mut starts[d as usize];
        order[*slot] = i;
        *slot += 1;
    }
    Groups { order, runs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_stable_and_keys_in_first_appearance_order() {
        let g = group_stable(&[7, 3, 7, 9, 3, 7]);
        assert_eq!(g.order, vec![0, 2, 5, 1, 4, 3]);
        assert_eq!(g.runs, vec![(7, 0..3), (3, 3..5), (9, 5..6)]);
        assert_eq!(group_stable(&[]), Groups::default());
    }
}
