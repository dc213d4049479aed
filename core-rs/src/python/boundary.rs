//! The one way into a kernel: borrow inputs, release the GIL, convert the error.
//!
//! Inputs are borrowed numpy buffers. Releasing the GIL while borrowing them is the same contract
//! numpy's own ufuncs keep: callers must not mutate an array from another thread during the call.

use pyo3::marker::Ungil;
use pyo3::prelude::*;

/// Runs `kernel` without the GIL and maps its error through `Into<PyErr>` (see `errors.rs`).
/// A panic inside the kernel surfaces as pyo3's `PanicException`, never as an abort.
pub fn compute<T, E, F>(py: Python<'_>, kernel: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, E> + Ungil,
    T: Send,
    E: Send + Into<PyErr>,
{
    py.detach(kernel).map_err(Into::into)
}
