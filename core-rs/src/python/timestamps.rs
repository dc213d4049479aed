//! `_core.timestamps`: bindings of `crate::timestamps`.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::boundary::compute;
use crate::timestamps::{TimestampError, parse_column};

/// Parsed times and their error codes, one per row.
type NsAndErrors<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<u8>>);

/// (epoch ns, error codes) of a column given as one UTF-8 buffer and Arrow-style offsets;
/// error 0 = parsed, 1 = not ISO 8601, 2 = no UTC offset, 3 = a field out of range (or an
/// instant beyond int64 nanoseconds).
#[pyfunction]
fn parse_iso8601<'py>(
    py: Python<'py>,
    buffer: PyReadonlyArray1<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<NsAndErrors<'py>> {
    let (buf, offsets) = (buffer.as_slice()?, offsets.as_slice()?);
    let (ns, err) = compute(py, || -> Result<_, TimestampError> {
        let n = offsets.len().saturating_sub(1);
        let (mut ns, mut err) = (vec![0i64; n], vec![0u8; n]);
        parse_column(buf, offsets, &mut ns, &mut err)?;
        Ok((ns, err))
    })?;
    Ok((ns.into_pyarray(py), err.into_pyarray(py)))
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "timestamps")?;
    m.add_function(wrap_pyfunction!(parse_iso8601, &m)?)?;
    parent.add_submodule(&m)?;
    Ok(())
}
