//! `_core.meters`: bindings of `crate::meters`.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::boundary::compute;
use crate::grid::Grid;
use crate::meters::{CounterRules, GroupSums, IntervalIntegrator as Core, Rows, grouped_nansum};

/// Cells touched by a batch: (stream, slot, consumption, co2, coverage, reading, closed), one
/// row per cell.
type CellArrays<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
);

/// Incremental counter integration for the meters of one partition (see `meters::counter`).
#[pyclass(module = "carbonstream._core.meters")]
pub struct IntervalIntegrator {
    inner: Core,
}

#[pymethods]
impl IntervalIntegrator {
    #[new]
    #[pyo3(signature = (origin_ns, step_ns, max_gap_ns, rollover=None))]
    fn new(origin_ns: i64, step_ns: i64, max_gap_ns: i64, rollover: Option<f64>) -> PyResult<Self> {
        let grid = Grid::new(origin_ns, step_ns)?;
        let rules = CounterRules::new(rollover, max_gap_ns)?;
        Ok(Self {
            inner: Core::new(grid, rules),
        })
    }

    /// Rebuilds from `snapshot()` bytes; raises StateError if they were made for another grid/rules.
    #[staticmethod]
    #[pyo3(signature = (snapshot, origin_ns, step_ns, max_gap_ns, rollover=None))]
    fn restore(
        snapshot: &[u8],
        origin_ns: i64,
        step_ns: i64,
        max_gap_ns: i64,
        rollover: Option<f64>,
    ) -> PyResult<Self> {
        let grid = Grid::new(origin_ns, step_ns)?;
        let rules = CounterRules::new(rollover, max_gap_ns)?;
        Ok(Self {
            inner: Core::restore(grid, rules, snapshot)?,
        })
    }

    /// Integrates one batch (`seq`: arrival sequence of each row); returns the touched cells and
    /// one status code per input row.
    fn integrate<'py>(
        &mut self,
        py: Python<'py>,
        stream: PyReadonlyArray1<'py, u32>,
        seq: PyReadonlyArray1<'py, u32>,
        t_ns: PyReadonlyArray1<'py, i64>,
        value: PyReadonlyArray1<'py, f64>,
        factor: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(CellArrays<'py>, Bound<'py, PyArray1<u8>>)> {
        let rows = Rows {
            stream: stream.as_slice()?,
            seq: seq.as_slice()?,
            t_ns: t_ns.as_slice()?,
            value: value.as_slice()?,
            factor: factor.as_slice()?,
        };
        let inner = &mut self.inner;
        let (cells, status) = compute(py, || {
            let mut status = vec![0u8; rows.stream.len()];
            inner
                .integrate(rows, &mut status)
                .map(|cells| (cells, status))
        })?;
        let arrays = (
            cells.stream.into_pyarray(py),
            cells.slot.into_pyarray(py),
            cells.consumption.into_pyarray(py),
            cells.co2.into_pyarray(py),
            cells.coverage.into_pyarray(py),
            cells.reading.into_pyarray(py),
            cells.closed.into_pyarray(py),
        );
        Ok((arrays, status.into_pyarray(py)))
    }

    /// The whole state as bytes (deterministic), for a recovery snapshot.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.snapshot())
    }

    fn __len__(&self) -> usize {
        self.inner.meter_count()
    }
}

/// (sums, counts) of a roll-up, each groups x periods.
type SumsAndCounts<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<u32>>);

/// Sums the rows of `values` (rows x periods) into `groups` groups skipping NaN; returns
/// (sums, counts), each groups x periods. Rows with group 2**32-1 are left out.
#[pyfunction(name = "grouped_nansum")]
fn grouped_nansum_py<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    group_of_row: PyReadonlyArray1<'py, u32>,
    groups: usize,
) -> PyResult<SumsAndCounts<'py>> {
    let cols = values.shape()[1];
    let (values, group_of_row) = (values.as_slice()?, group_of_row.as_slice()?);
    let GroupSums { sums, counts } =
        compute(py, || grouped_nansum(values, cols, group_of_row, groups))?;
    Ok((
        sums.into_pyarray(py).reshape([groups, cols])?,
        counts.into_pyarray(py).reshape([groups, cols])?,
    ))
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "meters")?;
    m.add_class::<IntervalIntegrator>()?;
    m.add_function(wrap_pyfunction!(grouped_nansum_py, &m)?)?;
    parent.add_submodule(&m)?;
    Ok(())
}
