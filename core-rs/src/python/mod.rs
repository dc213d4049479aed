//! The Python extension module `carbonstream._core`.
//!
//! This layer only converts: numpy arrays in, slices to the pure-Rust kernels with the GIL released,
//! arrays and exceptions out. One `register` per core module keeps the names aligned:
//! `core-rs/src/meters/` <-> `python/meters.rs` <-> `_core.meters` <-> `stream/meters.py`, and
//! likewise `ec`.

use pyo3::prelude::*;

mod boundary;
mod cems;
mod ec;
mod errors;
mod hj212;
mod meters;
mod timestamps;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    meters::register(m)?;
    timestamps::register(m)?;
    ec::register(m)?;
    hj212::register(m)?;
    cems::register(m)?;
    Ok(())
}
