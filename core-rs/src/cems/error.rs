//! Errors of the CEMS kernels; every message names the quantity or record that was wrong.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CemsError {
    #[error("{what} = {value} is outside {range}")]
    OutOfRange {
        what: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error("configuration: {0}")]
    BadConfig(&'static str),
    #[error("inputs differ in length: {what} ({a} vs {b})")]
    LengthMismatch {
        what: &'static str,
        a: usize,
        b: usize,
    },
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("minute {minute} carries {got} channel readings; the stack has {expected} channels")]
    ChannelCount {
        minute: i64,
        expected: usize,
        got: usize,
    },
    #[error("minute {minute} is late: hours before {open_hour} are already closed")]
    LateMinute { minute: i64, open_hour: i64 },
    #[error("minute {minute} was already recorded")]
    DuplicateMinute { minute: i64 },
    #[error("sample at {t_ms} ms is late: minute {open_minute} is already open")]
    LateSample { t_ms: i64, open_minute: i64 },
    #[error("hour {hour} is late or repeated: hour {last} was already processed")]
    LateHour { hour: i64, last: i64 },
    #[error("time jumps {hours} hours (from {from} to {to}), more than the {max} allowed to fill")]
    TimeJump {
        from: i64,
        to: i64,
        hours: i64,
        max: i64,
    },
    #[error("state snapshot is corrupt: {0}")]
    CorruptSnapshot(&'static str),
    #[error("state snapshot was made with another configuration ({0}); it cannot be resumed here")]
    IncompatibleSnapshot(&'static str),
}

/// Checks that `value` lies in `[lo, hi]` (each bound optional) and is finite.
pub(crate) fn check_range(
    what: &'static str,
    value: f64,
    ok: bool,
    range: &'static str,
) -> Result<f64, CemsError> {
    if value.is_finite() && ok {
        Ok(value)
    } else {
        Err(CemsError::OutOfRange { what, value, range })
    }
}
