//! Stack emission integration (CEMS): the Chinese rules (HJ 75-2017, HJ 212-2017 Appendix D,
//! CO2-CEMS pilot practice) and the US rules (40 CFR Part 75), chosen per site by [`Policy`].
//!
//! The pipeline for one stack, each stage a stateful kernel with deterministic
//! `snapshot()`/`restore()` so a dataflow resumes exactly after a crash:
//!
//! real-time samples --[`MinuteAggregator`]--> minutes --[`HourAggregator`]--> hours (validity,
//! flow-weighted concentration, mass) --[`Substitutor`] per series--> complete hourly series
//! (each hour marked with its [`Rule`]) --[`DayAggregator`]--> days, and [`PeriodTotals`] for
//! quarters (F-12), years and cumulative totals. [`StackPipeline`] composes them for one stack,
//! with the flow derived from the duct conditions and online data-quality signals.
//!
//! Beside it: the formulas ([`conditions`], [`flow`], [`mass`], [`part75`]), the accounting
//! method and its comparison with monitoring ([`accounting`]), and data-quality signals
//! ([`quality`]). Facts: `reference/cems/README.md`.

pub mod accounting;
pub mod columns;
pub mod conditions;
pub mod day;
pub mod error;
pub mod flags;
pub mod flow;
mod history;
pub mod hour;
pub mod mass;
pub mod minute;
pub mod part75;
pub mod pipeline;
pub mod policy;
pub mod quality;
mod snapshot;
pub mod stack;
pub mod substitution;
pub mod totals;

pub use accounting::{Comparison, FuelSpec, FuelUse, accounting_co2_t, compare};
pub use columns::{SampleColumns, Strided};
pub use day::{DayAggregator, DayHour, DayRecord, HourKind};
pub use error::CemsError;
pub use flags::{FlagCounts, FlagEffect, Reading};
pub use hour::{ChannelHour, HourAggregator, HourStatus, StackHour, VariableHour, hour_mass};
pub use mass::ConcentrationUnit;
pub use minute::{MinuteAggregator, StackSample};
pub use pipeline::{
    ChannelSpec, ChannelTotals, ConditionChannels, DayOut, FlowSource, HourOut, MinuteColumns,
    MinuteOut, PipelineConfig, PipelineOutput, QualityLimits, ResolvedOut, StackPipeline,
};
pub use policy::{Hj75Rules, Part75Rules, Policy};
pub use stack::{ChannelConfig, MinuteRecord, StackConfig, StackMinute};
pub use substitution::{ResolvedHour, Rule, SubstitutionTotals, Substitutor};
pub use totals::{PeriodTotals, QuarterTotal};
