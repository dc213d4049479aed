//! 40 CFR Part 75 Appendix F equations: CO2 mass rate (F-2, F-11), CO2 from O2 (F-14a),
//! moisture (F-31), heat input (F-15 to F-18) and the F / Fc factors.
//!
//! US units throughout: flow in scfh (standard cubic feet per hour), concentrations in % by
//! volume, CO2 mass in short tons, heat input in mmBtu/h.

use super::error::{CemsError, check_range};

/// F-11 / F-2 constant: short tons of CO2 per scf per % CO2.
pub const K_CO2_TON_PER_SCF_PCT: f64 = 5.7e-7;
/// O2 in ambient air as Part 75 uses it, %.
pub const AIR_O2_PCT: f64 = 20.9;

/// F-11: CO2 mass rate (short ton/h) from wet CO2 % and wet flow (scfh): `E = K * C_w * Q_w`.
pub fn co2_rate_f11(co2_wet_pct: f64, q_wet_scfh: f64) -> f64 {
    K_CO2_TON_PER_SCF_PCT * co2_wet_pct * q_wet_scfh
}

/// F-2 form: CO2 mass rate (short ton/h) from dry CO2 % and wet flow:
/// `E = K * C_d * Q_w * (100 - %H2O)/100`.
pub fn co2_rate_f2(co2_dry_pct: f64, q_wet_scfh: f64, h2o_pct: f64) -> Result<f64, CemsError> {
    let h2o = check_h2o(h2o_pct)?;
    Ok(K_CO2_TON_PER_SCF_PCT * co2_dry_pct * q_wet_scfh * (100.0 - h2o) / 100.0)
}

fn check_h2o(h2o_pct: f64) -> Result<f64, CemsError> {
    check_range(
        "moisture %H2O",
        h2o_pct,
        (0.0..100.0).contains(&h2o_pct),
        "[0, 100) %",
    )
}

/// F-31: moisture (%) from dry- and wet-basis O2: `%H2O = (O2_d - O2_w)/O2_d * 100`.
pub fn moisture_from_o2_f31(o2_dry_pct: f64, o2_wet_pct: f64) -> Result<f64, CemsError> {
    check_range("dry O2 (%)", o2_dry_pct, o2_dry_pct > 0.0, "(0, 100] %")?;
    let h2o = (o2_dry_pct - o2_wet_pct) / o2_dry_pct * 100.0;
    check_range(
        "moisture from F-31 (wet O2 above dry O2?)",
        h2o,
        (0.0..100.0).contains(&h2o),
        "[0, 100) %",
    )
}

/// F and Fc factors of a fuel: dry flue gas (dscf) and CO2 (scf) per mmBtu of heat input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuelFactors {
    pub f_dscf_per_mmbtu: f64,
    pub fc_scf_per_mmbtu: f64,
}

/// Fuels of the Appendix F factor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part75Fuel {
    NaturalGas,
    BituminousCoal,
    SubbituminousCoal,
    Lignite,
    Anthracite,
    Oil,
}

impl Part75Fuel {
    pub fn factors(self) -> FuelFactors {
        let (f, fc) = match self {
            Self::NaturalGas => (8_710.0, 1_040.0),
            Self::BituminousCoal | Self::SubbituminousCoal => (9_780.0, 1_800.0),
            Self::Lignite => (9_860.0, 1_910.0),
            Self::Anthracite => (10_100.0, 1_970.0),
            Self::Oil => (9_190.0, 1_420.0),
        };
        FuelFactors {
            f_dscf_per_mmbtu: f,
            fc_scf_per_mmbtu: fc,
        }
    }
}

/// F-14a: dry CO2 (%) estimated from dry O2 for a fuel: `CO2_d = 100 * Fc/F * (20.9 - O2_d)/20.9`.
pub fn co2_from_o2_f14a(o2_dry_pct: f64, fuel: FuelFactors) -> f64 {
    100.0 * fuel.fc_scf_per_mmbtu / fuel.f_dscf_per_mmbtu * (AIR_O2_PCT - o2_dry_pct) / AIR_O2_PCT
}

/// F-15: heat input (mmBtu/h) from wet O2 and wet flow:
/// `HI = Q_w * 1/F * [(20.9/100)(100 - %H2O) - %O2_w]/20.9`.
pub fn heat_input_f15(
    q_wet_scfh: f64,
    o2_wet_pct: f64,
    h2o_pct: f64,
    fuel: FuelFactors,
) -> Result<f64, CemsError> {
    let h2o = check_h2o(h2o_pct)?;
    Ok(
        q_wet_scfh / fuel.f_dscf_per_mmbtu * ((AIR_O2_PCT / 100.0) * (100.0 - h2o) - o2_wet_pct)
            / AIR_O2_PCT,
    )
}

/// F-16: heat input from wet CO2 and wet flow: `HI = Q_h * 1/Fc * %CO2_w/100`.
pub fn heat_input_f16(q_wet_scfh: f64, co2_wet_pct: f64, fuel: FuelFactors) -> f64 {
    q_wet_scfh / fuel.fc_scf_per_mmbtu * co2_wet_pct / 100.0
}

/// F-17: heat input from dry O2 and wet flow:
/// `HI = Q_w * (100 - %H2O)/100 * 1/F * (20.9 - %O2_d)/20.9`.
pub fn heat_input_f17(
    q_wet_scfh: f64,
    o2_dry_pct: f64,
    h2o_pct: f64,
    fuel: FuelFactors,
) -> Result<f64, CemsError> {
    let h2o = check_h2o(h2o_pct)?;
    Ok(
        q_wet_scfh * (100.0 - h2o) / 100.0 / fuel.f_dscf_per_mmbtu * (AIR_O2_PCT - o2_dry_pct)
            / AIR_O2_PCT,
    )
}

/// F-18: heat input from dry CO2 and wet flow:
/// `HI = Q_h * (100 - %H2O)/100 * 1/Fc * %CO2_d/100`.
pub fn heat_input_f18(
    q_wet_scfh: f64,
    co2_dry_pct: f64,
    h2o_pct: f64,
    fuel: FuelFactors,
) -> Result<f64, CemsError> {
    let h2o = check_h2o(h2o_pct)?;
    Ok(q_wet_scfh * (100.0 - h2o) / 100.0 / fuel.fc_scf_per_mmbtu * co2_dry_pct / 100.0)
}
