//! Flue-gas velocity and flow, HJ 212-2017 Appendix D \[29\]-\[31\].

use super::conditions::{FORMULA_T0_K, STANDARD_PRESSURE_PA};
use super::error::{CemsError, check_range};

/// \[29\] Duct-average velocity from the CEMS point/line velocity: `V_s = K_v * V_p`.
pub fn calibrated_velocity(v_p: f64, k_v: f64) -> f64 {
    k_v * v_p
}

/// Velocity-field coefficient `K_v` from a calibration: reference-method duct-average velocities
/// over CEMS velocities measured at the same times, as the ratio of their means (HJ 75: the
/// ratio of the averages, so one noisy pair does not dominate).
pub fn velocity_field_coefficient(reference: &[f64], cems: &[f64]) -> Result<f64, CemsError> {
    if reference.len() != cems.len() {
        return Err(CemsError::LengthMismatch {
            what: "reference and CEMS velocities",
            a: reference.len(),
            b: cems.len(),
        });
    }
    if reference.is_empty() {
        return Err(CemsError::Empty("velocity calibration pairs"));
    }
    let sum_cems: f64 = cems.iter().sum();
    check_range(
        "sum of CEMS velocities",
        sum_cems,
        sum_cems > 0.0,
        "(0, inf)",
    )?;
    Ok(reference.iter().sum::<f64>() / sum_cems)
}

/// \[30\] Actual (duct-condition, wet) flow, m3/h: `Q_sh = 3600 * F * V_s`, `F` the duct
/// cross-section in m2, `V_s` in m/s.
pub fn actual_flow_m3_h(area_m2: f64, velocity_m_s: f64) -> f64 {
    3_600.0 * area_m2 * velocity_m_s
}

/// \[31\] Dry standard flow, m3/h:
/// `Q_snh = Q_sh * 273/(273 + t_s) * (B_a + P_s)/101325 * (1 - X_sw)`.
pub fn dry_standard_flow_m3_h(
    q_actual_m3_h: f64,
    ts_c: f64,
    ba_pa: f64,
    ps_pa: f64,
    x_sw: f64,
) -> Result<f64, CemsError> {
    check_range(
        "flue gas temperature t_s (degC)",
        ts_c,
        ts_c > -FORMULA_T0_K,
        "(-273, inf)",
    )?;
    check_range(
        "absolute duct pressure B_a + P_s (Pa)",
        ba_pa + ps_pa,
        ba_pa + ps_pa > 0.0,
        "(0, inf)",
    )?;
    check_range(
        "moisture volume fraction X_sw",
        x_sw,
        (0.0..1.0).contains(&x_sw),
        "[0, 1)",
    )?;
    Ok(
        q_actual_m3_h * FORMULA_T0_K / (FORMULA_T0_K + ts_c) * (ba_pa + ps_pa)
            / STANDARD_PRESSURE_PA
            * (1.0 - x_sw),
    )
}
