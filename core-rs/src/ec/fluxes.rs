//! Flux formulae: sonic-temperature humidity correction, WPL density terms, Obukhov length.
//!
//! Units are SI throughout: heat in W m-2, gas fluxes in mol m-2 s-1, densities per the
//! [`AirProperties`] fields. The order of corrections is EddyPro's, which its published stage
//! outputs make checkable: (1) spectral factors multiply the raw covariances, (2) the sonic heat
//! flux is humidity-corrected with the *raw* water-vapour flux and then spectrally corrected,
//! (3) WPL uses the spectrally corrected raw fluxes and the *final* sensible heat.

use super::air::{AirProperties, GRAVITY, M_H2O, VON_KARMAN};

/// Kinematic temperature flux w'T' from the sonic w'Ts' (Schotanus et al. 1983 in the form of
/// van Dijk et al. 2004): Ts = T (1 + 0.51 q), so
/// `w'T' = (w'Ts' - 0.51 Ta w'rho_v'/rho_d) / (1 + 0.51 q)`. `e0_mol` is the uncorrected water
/// vapour flux (mol m-2 s-1); the vapour covariance per unit dry air is the mixing-ratio flux.
pub fn sonic_humidity_correction(cov_w_ts: f64, e0_mol: f64, air: &AirProperties) -> f64 {
    let wq = e0_mol * M_H2O / air.rho_d;
    (cov_w_ts - 0.51 * air.ta_k * wq) / (1.0 + 0.51 * air.q)
}

/// Webb, Pearman & Leuning (1980) water-vapour flux from the measured (spectrally corrected)
/// vapour-density flux `e1_mol` and the final sensible heat `h`.
pub fn wpl_water(e1_mol: f64, h: f64, air: &AirProperties) -> f64 {
    (1.0 + super::air::MU * air.sigma) * (e1_mol + air.rho_v_mol * h / (air.rho_cp * air.ta_k))
}

/// The density-equivalent vapour flux behind a true flux `e_mol` (inverse of [`wpl_water`]); the
/// WPL dilution term of a trace gas needs it when water vapour was measured as a mixing ratio.
pub fn density_vapour_flux(e_mol: f64, h: f64, air: &AirProperties) -> f64 {
    e_mol / (1.0 + super::air::MU * air.sigma) - air.rho_v_mol * h / (air.rho_cp * air.ta_k)
}

/// WPL for a trace gas measured as a density: `f1_mol` its spectrally corrected density flux,
/// `rho_c_mol` its mean molar density, `e1_mol` the density-based vapour flux.
pub fn wpl_trace(f1_mol: f64, rho_c_mol: f64, e1_mol: f64, h: f64, air: &AirProperties) -> f64 {
    f1_mol
        + rho_c_mol / air.rho_d_mol * e1_mol
        + (1.0 + super::air::MU * air.sigma) * rho_c_mol * h / (air.rho_cp * air.ta_k)
}

/// Friction velocity from the rotated momentum covariances.
pub fn friction_velocity(cov_uw: f64, cov_vw: f64) -> f64 {
    (cov_uw * cov_uw + cov_vw * cov_vw).sqrt().sqrt()
}

/// Obukhov length from u* and a kinematic temperature flux (K m s-1) at temperature `t_k`.
/// Infinite (neutral) when the heat flux is exactly zero.
pub fn obukhov_length(ustar: f64, cov_wt: f64, t_k: f64) -> f64 {
    -t_k * ustar.powi(3) / (VON_KARMAN * GRAVITY * cov_wt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec::air::{Humidity, air_properties};

    #[test]
    fn wpl_water_and_its_inverse_agree() {
        let air = air_properties(301.5, 100_200.0, Humidity::MolarDensity(0.53), None);
        let e = wpl_water(0.0095, 170.0, &air);
        assert!((density_vapour_flux(e, 170.0, &air) - 0.0095).abs() < 1e-15);
        assert!(obukhov_length(0.4, 0.15, 300.0) < 0.0);
    }
}
