//! Smart-meter arithmetic: cumulative registers to interval consumption and emissions.
//!
//! See `reference/meters/README.md` for the counter behaviours this must get right (wraps, resets,
//! replacements, late and duplicate readings, gaps).

pub mod counter;

pub use counter::{
    CounterError, CounterRules, IntervalCells, IntervalIntegrator, ReadingStatus, Rows,
};
