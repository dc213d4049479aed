//! Core error enums -> the Python exception hierarchy of `carbonstream._core`.
//!
//!     CoreError(ValueError)     every error the core raises is about a value it was given
//!     |-- InputError(CoreError)    bad arguments or data shape
//!     '-- StateError(CoreError)    a snapshot that cannot be resumed
//!
//! The message is the core error's `Display`, which names what was wrong.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::cems::CemsError;
use crate::ec::EcError;
use crate::grid::GridError;
use crate::hj212::{EncodeError, FrameError, PacketError};
use crate::meters::{CounterError, RollupError};
use crate::timestamps::TimestampError;

create_exception!(
    _core,
    CoreError,
    PyValueError,
    "Base class of errors raised by the Rust core."
);
create_exception!(
    _core,
    InputError,
    CoreError,
    "Invalid arguments or data given to a kernel."
);
create_exception!(
    _core,
    StateError,
    CoreError,
    "A state snapshot cannot be resumed."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CoreError", py.get_type::<CoreError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    Ok(())
}

impl From<CounterError> for PyErr {
    fn from(e: CounterError) -> PyErr {
        match e {
            CounterError::CorruptSnapshot(_) | CounterError::IncompatibleSnapshot(_) => {
                StateError::new_err(e.to_string())
            }
            _ => InputError::new_err(e.to_string()),
        }
    }
}

impl From<GridError> for PyErr {
    fn from(e: GridError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

impl From<RollupError> for PyErr {
    fn from(e: RollupError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

/// An `InputError` with a message of the binding's own (an argument the core never sees).
pub fn input_error(message: String) -> PyErr {
    InputError::new_err(message)
}

impl From<CemsError> for PyErr {
    fn from(e: CemsError) -> PyErr {
        match e {
            CemsError::CorruptSnapshot(_) | CemsError::IncompatibleSnapshot(_) => {
                StateError::new_err(e.to_string())
            }
            _ => InputError::new_err(e.to_string()),
        }
    }
}

impl From<FrameError> for PyErr {
    fn from(e: FrameError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

impl From<PacketError> for PyErr {
    fn from(e: PacketError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

impl From<EncodeError> for PyErr {
    fn from(e: EncodeError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

impl From<TimestampError> for PyErr {
    fn from(e: TimestampError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}

impl From<EcError> for PyErr {
    fn from(e: EcError) -> PyErr {
        InputError::new_err(e.to_string())
    }
}
