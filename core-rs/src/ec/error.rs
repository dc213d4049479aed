//! Errors of the eddy-covariance kernel.
//!
//! An [`EcError`] means the *request* was malformed (columns of different lengths, an impossible
//! configuration): nothing sensible can be computed and retrying with the same input fails again.
//! Poor *data* (too many missing samples, a dead sensor, spikes) is not an error: it yields a
//! [`PeriodResult`](super::PeriodResult) whose affected fluxes are `None` and whose `flags` say why,
//! so a flux network's gap accounting sees the period and its reason instead of a hole.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum EcError {
    #[error("the period has no samples (column `{0}` is empty)")]
    Empty(&'static str),
    #[error(
        "column `{column}` has {len} samples but u has {expected}; all columns of a period must align"
    )]
    LengthMismatch {
        column: &'static str,
        len: usize,
        expected: usize,
    },
    #[error(
        "the period has {len} samples, more than the {expected} that {sampling_hz} Hz x {averaging_s} s allow"
    )]
    TooManySamples {
        len: usize,
        expected: usize,
        sampling_hz: f64,
        averaging_s: f64,
    },
    #[error("invalid configuration: {field} = {value}: {why}")]
    Config {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("unsupported combination: {0}")]
    Unsupported(&'static str),
}

impl EcError {
    pub(crate) fn config(field: &'static str, value: impl ToString, why: &'static str) -> Self {
        EcError::Config {
            field,
            value: value.to_string(),
            why,
        }
    }
}
