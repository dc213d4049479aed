//! Smart-meter arithmetic: cumulative registers to interval consumption and emissions, and the
//! roll-up of many streams into the entities they belong to.
//!
//! See `reference/meters/README.md` for the counter behaviours this must get right (wraps, resets,
//! replacements, late and duplicate readings, gaps).

pub mod counter;
pub mod rollup;

pub use counter::{
    CounterError, CounterRules, IntervalCells, IntervalIntegrator, ReadingStatus, Rows,
};
pub use rollup::{GroupSums, RollupError, grouped_nansum};
