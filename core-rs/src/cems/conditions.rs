//! Gas-state conversions of HJ 212-2017 Appendix D: measured -> standard dry conditions, ppm,
//! excess air and the reference-oxygen concentration (折算浓度).
//!
//! Standard conditions are 273.15 K and 101.325 kPa, dry gas. The printed formulas \[18\] and \[31\]
//! use 273 rather than 273.15; these functions follow the printed formulas ([`FORMULA_T0_K`]) so
//! that results match the platforms regulators compare against (the difference is at most
//! 0.06 %). Pressures are in Pa (HJ 212 sends kPa: multiply by 1000), temperatures in degC,
//! moisture as a volume fraction (HJ 212 sends %: divide by 100).

use super::error::{CemsError, check_range};

/// Standard pressure, Pa.
pub const STANDARD_PRESSURE_PA: f64 = 101_325.0;
/// The 0 degC in kelvin as printed in Appendix D formulas \[18\] and \[31\].
pub const FORMULA_T0_K: f64 = 273.0;
/// Molar volume used by formula \[20\], L/mol.
pub const MOLAR_VOLUME_L: f64 = 22.4;
/// Oxygen in air, % by volume, as used by \[26\]-\[28\].
pub const AIR_O2_PCT: f64 = 21.0;

/// Molar masses (g/mol) for \[20\]. NOx is reported as NO2.
pub mod molar_mass {
    pub const SO2: f64 = 64.06;
    pub const NO2: f64 = 46.01;
    pub const NO: f64 = 30.01;
    pub const CO: f64 = 28.01;
    pub const CO2: f64 = 44.01;
}

fn check_state(ba_pa: f64, ps_pa: f64, ts_c: f64) -> Result<(), CemsError> {
    check_range(
        "absolute duct pressure B_a + P_s (Pa)",
        ba_pa + ps_pa,
        ba_pa + ps_pa > 0.0,
        "(0, inf)",
    )?;
    check_range(
        "flue gas temperature t_s (degC)",
        ts_c,
        ts_c > -FORMULA_T0_K,
        "(-273, inf)",
    )?;
    Ok(())
}

/// \[18\] Concentration at duct conditions -> standard conditions:
/// `C_sn = C_s * 101325/(B_a + P_s) * (273 + t_s)/273`.
/// `ba_pa` atmospheric pressure, `ps_pa` duct static (gauge) pressure.
pub fn to_standard_conditions(
    c_measured: f64,
    ba_pa: f64,
    ps_pa: f64,
    ts_c: f64,
) -> Result<f64, CemsError> {
    check_state(ba_pa, ps_pa, ts_c)?;
    Ok(c_measured * STANDARD_PRESSURE_PA / (ba_pa + ps_pa) * (FORMULA_T0_K + ts_c) / FORMULA_T0_K)
}

fn check_moisture(x_sw: f64) -> Result<f64, CemsError> {
    check_range(
        "moisture volume fraction X_sw",
        x_sw,
        (0.0..1.0).contains(&x_sw),
        "[0, 1)",
    )
}

/// \[19\] Wet-basis -> dry-basis concentration: `C_dry = C_wet / (1 - X_sw)`.
pub fn wet_to_dry(c_wet: f64, x_sw: f64) -> Result<f64, CemsError> {
    Ok(c_wet / (1.0 - check_moisture(x_sw)?))
}

/// Inverse of \[19\]: `C_wet = C_dry * (1 - X_sw)`.
pub fn dry_to_wet(c_dry: f64, x_sw: f64) -> Result<f64, CemsError> {
    Ok(c_dry * (1.0 - check_moisture(x_sw)?))
}

/// \[20\] ppm (umol/mol) -> mg/m3 at standard conditions: `C = M/22.4 * ppm`.
pub fn ppm_to_mg_m3(ppm: f64, molar_mass_g_mol: f64) -> f64 {
    molar_mass_g_mol / MOLAR_VOLUME_L * ppm
}

/// Inverse of \[20\].
pub fn mg_m3_to_ppm(mg_m3: f64, molar_mass_g_mol: f64) -> f64 {
    mg_m3 * MOLAR_VOLUME_L / molar_mass_g_mol
}

fn check_o2(what: &'static str, o2: f64) -> Result<f64, CemsError> {
    check_range(what, o2, (0.0..AIR_O2_PCT).contains(&o2), "[0, 21) %")
}

/// \[26\]-\[27\] Excess-air coefficient from dry O2 (%): `alpha = 21/(21 - O2)`.
pub fn excess_air_coefficient(o2_pct: f64) -> Result<f64, CemsError> {
    Ok(AIR_O2_PCT / (AIR_O2_PCT - check_o2("measured O2 (%)", o2_pct)?))
}

/// \[28\] Concentration at the reference O2 of the emission standard (折算浓度):
/// `C_ref = C * (21 - O2_ref)/(21 - O2)` (e.g. O2_ref 6 % for coal boilers, 3 % for gas/oil).
/// O2 at or above 21 % (air, unit stopped) has no defined reference concentration: error.
pub fn reference_o2_concentration(
    c: f64,
    o2_measured_pct: f64,
    o2_reference_pct: f64,
) -> Result<f64, CemsError> {
    let o2 = check_o2("measured O2 (%)", o2_measured_pct)?;
    let o2_ref = check_o2("reference O2 (%)", o2_reference_pct)?;
    Ok(c * (AIR_O2_PCT - o2_ref) / (AIR_O2_PCT - o2))
}
