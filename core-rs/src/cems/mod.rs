//! Stack emission integration (CEMS): the Chinese rules (HJ 75-2017, HJ 212-2017 Appendix D,
//! CO2-CEMS pilot practice) and the US rules (40 CFR Part 75).
//!
//! The formulas ([`conditions`], [`flow`], [`mass`], [`part75`]) and the accounting method with
//! its comparison against monitoring ([`accounting`]). Facts: `reference/cems/README.md`.

pub mod accounting;
pub mod conditions;
pub mod error;
pub mod flow;
pub mod mass;
pub mod part75;

pub use accounting::{Comparison, FuelSpec, FuelUse, accounting_co2_t, compare};
pub use error::CemsError;
pub use mass::ConcentrationUnit;
