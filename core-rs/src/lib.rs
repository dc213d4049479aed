//! carbonstream's compute core: emission integration and flux kernels.
//!
//! Every module here is plain Rust over slices, tested with `cargo test` and usable without Python.
//! The `python` feature adds one binding module, [`python`], that only converts arrays, releases the
//! GIL and maps errors; no science lives there.

pub mod batch;
pub mod cems;
pub mod ec;
pub mod grid;
pub mod hj212;
pub mod meters;
pub mod timestamps;

#[cfg(feature = "python")]
mod python;
