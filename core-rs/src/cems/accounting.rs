//! The accounting (calculation) method, 核算法, and its comparison with CEMS monitoring.
//!
//! `CO2 = fuel quantity x net calorific value x carbon content per unit heat x oxidation rate
//! x 44/12`. The Chinese CO2-CEMS pilot compares this with the monitored CO2 of the same period;
//! a relative error beyond +/-10 % (about 40 % of power units in the pilot) is a data-quality
//! warning for either the CEMS or the fuel data.

use super::error::{CemsError, check_range};

/// Mass ratio of CO2 to carbon.
pub const CO2_PER_C: f64 = 44.0 / 12.0;
/// Default agreement threshold between monitoring and accounting (fraction: 10 %).
pub const DEFAULT_AGREEMENT_THRESHOLD: f64 = 0.10;

/// Properties of a fuel, per unit of fuel quantity (Nm3 for gas, t for coal and oil).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuelSpec {
    /// Net calorific value, GJ per unit of fuel.
    pub ncv_gj_per_unit: f64,
    /// Carbon content per unit heat, t C per TJ.
    pub carbon_t_per_tj: f64,
    /// Carbon oxidation rate, fraction (0.99 = 99 %).
    pub oxidation: f64,
}

impl FuelSpec {
    /// Natural gas, per Nm3: NCV 389.31 GJ/10^4 Nm3, 15.3 tC/TJ, 99 % -> 2.1622 kg CO2/Nm3.
    pub const NATURAL_GAS: Self = Self {
        ncv_gj_per_unit: 389.31 / 1e4,
        carbon_t_per_tj: 15.3,
        oxidation: 0.99,
    };
    /// Raw coal, per t: NCV 20.908 GJ/t, 26.37 tC/TJ, 94 % -> 1.9003 t CO2/t.
    pub const RAW_COAL: Self = Self {
        ncv_gj_per_unit: 20.908,
        carbon_t_per_tj: 26.37,
        oxidation: 0.94,
    };
    /// Fuel oil, per t (GB/T 32150 default table: 41.816 GJ/t, 21.1 tC/TJ, 98 %).
    pub const FUEL_OIL: Self = Self {
        ncv_gj_per_unit: 41.816,
        carbon_t_per_tj: 21.1,
        oxidation: 0.98,
    };

    pub fn validate(&self) -> Result<(), CemsError> {
        check_range(
            "NCV (GJ/unit)",
            self.ncv_gj_per_unit,
            self.ncv_gj_per_unit > 0.0,
            "(0, inf)",
        )?;
        check_range(
            "carbon content (tC/TJ)",
            self.carbon_t_per_tj,
            self.carbon_t_per_tj > 0.0,
            "(0, inf)",
        )?;
        check_range(
            "oxidation rate",
            self.oxidation,
            self.oxidation > 0.0 && self.oxidation <= 1.0,
            "(0, 1]",
        )?;
        Ok(())
    }

    /// Emission factor, t CO2 per unit of fuel.
    pub fn co2_t_per_unit(&self) -> f64 {
        // GJ -> TJ is 1e-3.
        self.ncv_gj_per_unit * 1e-3 * self.carbon_t_per_tj * self.oxidation * CO2_PER_C
    }
}

/// One fuel meter's consumption over a period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuelUse {
    pub quantity: f64,
    pub fuel: FuelSpec,
}

/// CO2 of the accounting method, t, over several fuel meters.
pub fn accounting_co2_t(uses: &[FuelUse]) -> Result<f64, CemsError> {
    let mut total = 0.0;
    for u in uses {
        u.fuel.validate()?;
        check_range("fuel quantity", u.quantity, u.quantity >= 0.0, "[0, inf)")?;
        total += u.quantity * u.fuel.co2_t_per_unit();
    }
    Ok(total)
}

/// Monitoring vs accounting over one period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub monitored_t: f64,
    pub accounted_t: f64,
    /// `(monitored - accounted) / accounted`, a fraction.
    pub relative_error: f64,
    /// `|relative_error| > threshold`: raise a data-quality warning.
    pub flagged: bool,
}

/// Compares the monitored and accounted CO2 of a period. An error of exactly the threshold is
/// within it ("agrees within +/-10 %").
pub fn compare(
    monitored_t: f64,
    accounted_t: f64,
    threshold: f64,
) -> Result<Comparison, CemsError> {
    check_range(
        "accounted CO2 (t)",
        accounted_t,
        accounted_t > 0.0,
        "(0, inf)",
    )?;
    check_range(
        "monitored CO2 (t)",
        monitored_t,
        monitored_t >= 0.0,
        "[0, inf)",
    )?;
    check_range(
        "agreement threshold",
        threshold,
        threshold >= 0.0,
        "[0, inf)",
    )?;
    let relative_error = (monitored_t - accounted_t) / accounted_t;
    Ok(Comparison {
        monitored_t,
        accounted_t,
        relative_error,
        flagged: relative_error.abs() > threshold,
    })
}
