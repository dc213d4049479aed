//! Thermodynamic state of the air during a period.
//!
//! Air temperature is derived from the sonic temperature when no slow thermometer is given:
//! the sonic measures (to a good approximation) Ts = Ta (1 + 0.51 q), and q itself depends on Ta
//! through the densities, so the pair is solved by fixed-point iteration (three rounds converge to
//! well below 1 mK). Densities follow the ideal-gas law for dry air and vapour separately.

/// Universal gas constant, J mol-1 K-1.
pub const R: f64 = 8.31451;
/// Molar masses, kg mol-1.
pub const M_DRY: f64 = 0.02897;
pub const M_H2O: f64 = 0.01802;
pub const M_CO2: f64 = 0.04401;
pub const M_CH4: f64 = 0.01604;
/// Ratio of molar masses of dry air and water vapour (WPL's mu).
pub const MU: f64 = M_DRY / M_H2O;
pub const VON_KARMAN: f64 = 0.41;
pub const GRAVITY: f64 = 9.81;

/// How the period tells us about water vapour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Humidity {
    /// Mean molar density of vapour in the open air, mol m-3 (open path).
    MolarDensity(f64),
    /// Mean mixing ratio, mol per mol of dry air (closed path).
    MixingRatio(f64),
    /// No water-vapour measurement: dry air is assumed (and flagged by the caller).
    Unknown,
}

/// Air properties of the period (SI units unless a name says otherwise).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AirProperties {
    pub ta_k: f64,
    pub pa: f64,
    /// Water-vapour partial pressure, Pa.
    pub e: f64,
    /// Saturation vapour pressure at Ta (Magnus form, WMO 2008), Pa.
    pub es: f64,
    pub rh_percent: f64,
    pub vpd: f64,
    pub tdew_k: f64,
    /// Specific humidity, kg kg-1.
    pub q: f64,
    /// Vapour, dry-air and moist-air densities, kg m-3.
    pub rho_v: f64,
    pub rho_d: f64,
    pub rho: f64,
    /// Molar densities, mol m-3.
    pub rho_v_mol: f64,
    pub rho_d_mol: f64,
    pub rho_mol: f64,
    /// Specific heat of moist air, J kg-1 K-1.
    pub cp: f64,
    pub rho_cp: f64,
    /// Latent heat of vaporisation, J kg-1.
    pub lambda: f64,
    /// Vapour to dry-air density ratio (WPL's sigma).
    pub sigma: f64,
    /// Molar volume of moist and of dry air, m3 mol-1.
    pub molar_volume: f64,
    pub molar_volume_dry: f64,
}

/// Standard-atmosphere pressure at `altitude_m`, Pa.
pub fn standard_pressure(altitude_m: f64) -> f64 {
    101_325.0 * (1.0 - 2.25577e-5 * altitude_m).powf(5.25588)
}

/// Saturation vapour pressure over water (Magnus, WMO 2008 coefficients), Pa.
pub fn saturation_vapour_pressure(t_k: f64) -> f64 {
    let t = t_k - 273.15;
    611.2 * (17.62 * t / (243.12 + t)).exp()
}

fn dew_point(e: f64) -> f64 {
    if e <= 0.0 {
        return f64::NAN;
    }
    let g = (e / 611.2).ln();
    273.15 + 243.12 * g / (17.62 - g)
}

/// Solves Ta and the densities. `measured_ta_k`: a slow air temperature, used instead of the sonic.
pub fn air_properties(
    ts_k: f64,
    pa: f64,
    humidity: Humidity,
    measured_ta_k: Option<f64>,
) -> AirProperties {
    let mut ta = measured_ta_k.unwrap_or(ts_k);
    let (mut e, mut rho_v_mol, mut rho_d, mut rho_v, mut q) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for _ in 0..4 {
        match humidity {
            Humidity::MolarDensity(n) => {
                rho_v_mol = n.max(0.0);
                e = rho_v_mol * R * ta;
            }
            Humidity::MixingRatio(chi) => {
                let chi = chi.max(0.0);
                e = chi / (1.0 + chi) * pa;
                rho_v_mol = e / (R * ta);
            }
            Humidity::Unknown => {
                e = 0.0;
                rho_v_mol = 0.0;
            }
        }
        rho_v = rho_v_mol * M_H2O;
        rho_d = (pa - e) * M_DRY / (R * ta);
        q = rho_v / (rho_d + rho_v);
        if measured_ta_k.is_none() {
            ta = ts_k / (1.0 + 0.51 * q);
        }
    }
    let rho = rho_d + rho_v;
    let t = ta - 273.15;
    let es = saturation_vapour_pressure(ta);
    let rh = 100.0 * e / es;
    let cp_dry = 1005.0 + (ta - 249.03).powi(2) / 3364.0;
    // Ideal-gas specific heat of vapour, a fit to tabulated values (1858 J kg-1 K-1 at 0 degC).
    let cp_vap = 1858.0 + 0.382 * t + 4.22e-4 * t * t;
    let cp = cp_dry * (1.0 - q) + cp_vap * q;
    let rho_mol = pa / (R * ta);
    AirProperties {
        ta_k: ta,
        pa,
        e,
        es,
        rh_percent: rh,
        vpd: es - e,
        tdew_k: dew_point(e),
        q,
        rho_v,
        rho_d,
        rho,
        rho_v_mol,
        rho_d_mol: (pa - e) / (R * ta),
        rho_mol,
        cp,
        rho_cp: rho * cp,
        lambda: (3147.5 - 2.37 * ta) * 1e3,
        sigma: rho_v / rho_d,
        molar_volume: 1.0 / rho_mol,
        molar_volume_dry: R * ta / (pa - e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonic_temperature_is_consistent_with_the_solved_humidity() {
        let a = air_properties(301.0, 100_000.0, Humidity::MolarDensity(0.55), None);
        assert!((a.ta_k * (1.0 + 0.51 * a.q) - 301.0).abs() < 1e-6);
        assert!((a.rho - (a.rho_d + a.rho_v)).abs() < 1e-12);
        let dry = air_properties(300.0, 100_000.0, Humidity::Unknown, None);
        assert_eq!(dry.ta_k, 300.0);
        assert!((standard_pressure(0.0) - 101_325.0).abs() < 1e-9);
    }
}
