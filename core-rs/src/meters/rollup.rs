//! Roll-ups: sums of many streams' period values into the entities they belong to.
//!
//! A city's totals are sums over its districts, parks, enterprises and finally meters. Summing a
//! (rows x periods) block into groups is the inner loop of every roll-up. Missing stays missing:
//! a group's sum for a period is NaN when none of its rows has a value there, and the count of
//! rows that had one is returned beside it, so completeness is visible instead of a silent zero.
//!
//! Rows are summed in row order, so the result is bit-for-bit reproducible.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RollupError {
    #[error("values hold {values} numbers, not rows x cols = {rows} x {cols}")]
    Shape {
        values: usize,
        rows: usize,
        cols: usize,
    },
    #[error("row {row} belongs to group {group}, but there are only {groups} groups")]
    GroupOutOfRange {
        row: usize,
        group: u32,
        groups: usize,
    },
}

/// Group sums and counts, each `groups x cols`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSums {
    pub sums: Vec<f64>,
    pub counts: Vec<u32>,
}

/// Sums the rows of `values` (row-major, `group_of_row.len()` rows of `cols` periods) into
/// `groups` groups, skipping NaN. Rows whose group is `u32::MAX` are left out.
pub fn grouped_nansum(
    values: &[f64],
    cols: usize,
    group_of_row: &[u32],
    groups: usize,
) -> Result<GroupSums, RollupError> {
    let rows = group_of_row.len();
    if values.len() != rows * cols {
        return Err(RollupError::Shape {
            values: values.len(),
            rows,
            cols,
        });
    }
    let mut sums = vec![0.0f64; groups * cols];
    let mut counts = vec![0u32; groups * cols];
    for (row, &g) in group_of_row.iter().enumerate() {
        if g == u32::MAX {
            continue;
        }
        let gi = g as usize;
        if gi >= groups {
            return Err(RollupError::GroupOutOfRange {
                row,
                group: g,
                groups,
            });
        }
        let src = &values[row * cols..(row + 1) * cols];
        let dst = &mut sums[gi * cols..(gi + 1) * cols];
        let cnt = &mut counts[gi * cols..(gi + 1) * cols];
        for ((d, c), &v) in dst.iter_mut().zip(cnt.iter_mut()).zip(src) {
            if !v.is_nan() {
                *d += v;
                *c += 1;
            }
        }
    }
    for (s, &c) in sums.iter_mut().zip(&counts) {
        if c == 0 {
            *s = f64::NAN;
        }
    }
    Ok(GroupSums { sums, counts })
}
