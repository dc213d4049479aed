//! The raw columns of one averaging period.

use super::error::EcError;

/// One averaging period of high-frequency data, float32 columns aligned sample by sample.
///
/// NaN marks a missing sample. Units: wind m s-1 in the sonic's own axes, `ts` sonic temperature
/// in K, gases in the units declared in [`EcConfig`](super::EcConfig) (`co2_unit`, ...),
/// `pressure_pa` ambient (not cell) pressure in Pa, `air_t_k` a slow air thermometer in K,
/// diagnostics as the raw diagnostic words. Optional columns may be `None`; a present column must
/// have the same length as `u`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawPeriod<'a> {
    pub u: &'a [f32],
    pub v: &'a [f32],
    pub w: &'a [f32],
    pub ts: &'a [f32],
    pub co2: Option<&'a [f32]>,
    pub h2o: Option<&'a [f32]>,
    pub ch4: Option<&'a [f32]>,
    pub pressure_pa: Option<&'a [f32]>,
    pub air_t_k: Option<&'a [f32]>,
    pub diag_sonic: Option<&'a [f32]>,
    /// Diagnostic of the CO2/H2O analyser.
    pub diag_gas: Option<&'a [f32]>,
    /// Diagnostic of the CH4 analyser.
    pub diag_ch4: Option<&'a [f32]>,
}

impl RawPeriod<'_> {
    /// Number of samples, after checking that every present column has it.
    pub fn len_checked(&self) -> Result<usize, EcError> {
        let n = self.u.len();
        if n == 0 {
            return Err(EcError::Empty("u"));
        }
        let required = [("v", self.v), ("w", self.w), ("ts", self.ts)];
        let optional = [
            ("co2", self.co2),
            ("h2o", self.h2o),
            ("ch4", self.ch4),
            ("pressure_pa", self.pressure_pa),
            ("air_t_k", self.air_t_k),
            ("diag_sonic", self.diag_sonic),
            ("diag_gas", self.diag_gas),
            ("diag_ch4", self.diag_ch4),
        ];
        let columns = required
            .into_iter()
            .chain(optional.into_iter().filter_map(|(k, c)| c.map(|c| (k, c))));
        for (name, col) in columns {
            if col.len() != n {
                return Err(EcError::LengthMismatch {
                    column: name,
                    len: col.len(),
                    expected: n,
                });
            }
        }
        Ok(n)
    }
}
